"""Fuzzing the DICOM import: valid RTDOSE / RTSTRUCT files with tags removed, values
replaced (wrong type, wrong length, extreme), bytes truncated or flipped.

The only outcomes allowed: an import whose numbers are right, or a
:class:`~constraints.errors.ReirradError` (``DicomImportError``) naming the file.
Never a bare pydicom/numpy/KeyError/TypeError, never a hang.  "Right" for a successful
import: the plan dose is finite and ≥ 0, on a grid of the file's Rows × Columns ×
frames, and its maximum is the stored maximum × DoseGridScaling read independently with
pydicom (× the 2 fractions for a per-fraction DoseSummationType; a wrong scaling or unit
would show here), and its DoseType is PHYSICAL.

CI budget: ``REIRRAD_FUZZ_EXAMPLES`` (default 100).  Long run::

    REIRRAD_FUZZ_EXAMPLES=5000 python -m pytest -q -s tests/trust/test_fuzz_dicom.py tests/trust/test_fuzz_protocol.py
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

pydicom = pytest.importorskip("pydicom")

from _dicom_builders import Shape, write_case  # noqa: E402
from _trust import fuzz_examples, record_count  # noqa: E402
from constraints.errors import DicomImportError, ReirradError  # noqa: E402
from mock_tps._dicom_dose import PER_FRACTION_TYPES  # noqa: E402
from mock_tps.dicom_import import import_dicom  # noqa: E402

N = fuzz_examples(100)
RESULTS = {"imported": 0, "refused": 0, "refused_named": 0, "not_built": 0}
_BASE = {}


def _base():
    if not _BASE:
        d = Path(tempfile.mkdtemp(prefix="reirrad_fuzz_"))
        rs, rd = write_case(d, Shape("cylinder", (0.0, 0.0, 0.0), 6.0, 8.0), grid_mm=3.0, axis=0,
                            frame_uid="1.2.3.4.5.6")
        _BASE.update(dir=d, rs=rs, rd=rd, rs_bytes=rs.read_bytes(), rd_bytes=rd.read_bytes())
    return _BASE


values = st.one_of(
    st.integers(-2 ** 31, 2 ** 31 - 1), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0, -1, 1e30, -1e-30, "", "GY", "CGY", "RELATIVE", "PLAN", "FRACTION", "BEAM", "1.2.3.999",
                     "CLOSED_PLANAR", "OPEN_PLANAR", "POINT", "RTDOSE", "RTSTRUCT", "CT", "abc", "1\\2\\3",
                     b"\x00\x01", [], [1.0], [1, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0], [0.0, 0.0], [-1.0, 3.0],
                     [1e9, 1e9], ["a", "b"]]),
    st.lists(st.floats(-1e4, 1e4, width=32), min_size=0, max_size=8),
    st.text(max_size=16),
)

RTDOSE_TAGS = ("DoseUnits", "DoseType", "DoseSummationType", "DoseGridScaling", "GridFrameOffsetVector",
               "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns",
               "NumberOfFrames", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
               "SamplesPerPixel", "PhotometricInterpretation", "FrameOfReferenceUID", "Modality",
               "SOPClassUID", "PixelData", "SliceThickness", "FrameIncrementPointer")
RTSTRUCT_TAGS = ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence",
                 "ReferencedFrameOfReferenceSequence", "Modality", "FrameOfReferenceUID")
CONTOUR_TAGS = ("ContourData", "NumberOfContourPoints", "ContourGeometricType")
ROI_TAGS = ("ROIName", "ROINumber", "ReferencedFrameOfReferenceUID")


@st.composite
def mutation(draw):
    target = draw(st.sampled_from(["rd", "rd", "rs"]))
    kind = draw(st.sampled_from(["delete", "set", "set", "set", "truncate", "flip"]))
    if target == "rd":
        where = ("top", draw(st.sampled_from(RTDOSE_TAGS)))
    else:
        where = draw(st.one_of(st.tuples(st.just("top"), st.sampled_from(RTSTRUCT_TAGS)),
                               st.tuples(st.just("contour"), st.sampled_from(CONTOUR_TAGS)),
                               st.tuples(st.just("roi"), st.sampled_from(ROI_TAGS))))
    return target, kind, where, draw(values), draw(st.integers(0, 10 ** 6)), draw(st.integers(1, 255))


def _apply(path, original, kind, where, value, pos, byte):
    if kind == "truncate":
        path.write_bytes(original[:pos % len(original)])
        return
    if kind == "flip":
        data = bytearray(original)
        i = 132 + pos % (len(data) - 132)        # keep the preamble: a non-DICOM file is a catalog case
        data[i] ^= byte
        path.write_bytes(bytes(data))
        return
    ds = pydicom.dcmread(str(path))
    node = ds
    if where[0] == "contour":
        node = ds.ROIContourSequence[0].ContourSequence[0]
    elif where[0] == "roi":
        node = ds.StructureSetROISequence[0] if where[1] != "ReferencedFrameOfReferenceUID" else \
            ds.StructureSetROISequence[0]
    tag = where[1]
    if kind == "delete":
        if tag in node:
            delattr(node, tag)
    else:
        setattr(node, tag, value)
    ds.save_as(str(path))


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(muts=st.lists(mutation(), min_size=1, max_size=2))
# found by this test: a per-fraction dose (imported × the fractions) and a DoseType-less one
@example(muts=[("rd", "set", ("top", "DoseSummationType"), "FRACTION", 0, 1)])
@example(muts=[("rd", "delete", ("top", "DoseType"), 0, 0, 1),
               ("rd", "set", ("top", "DoseSummationType"), "FRACTION", 0, 1)])
def test_fuzzed_dicom_imports_correctly_or_is_refused(muts):
    base = _base()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rs, rd = tmp / "RS.dcm", tmp / "RD.dcm"
        rs.write_bytes(base["rs_bytes"])
        rd.write_bytes(base["rd_bytes"])
        for target, kind, where, value, pos, byte in muts:
            path = rd if target == "rd" else rs
            try:
                _apply(path, path.read_bytes(), kind, where, value, pos, byte)
            except Exception:    # pydicom refused to build or write such a file: nothing to import
                RESULTS["not_built"] += 1
                assume(False)
        try:
            imported = import_dicom(rtstruct=rs, plan_dose=rd, fractions=2, load=False)
        except ReirradError as exc:
            msg = str(exc)
            assert isinstance(exc, DicomImportError), (type(exc).__name__, msg)
            assert ("RD.dcm" in msg) or ("RS.dcm" in msg), msg
            # the message class a user can act on: it names a damaged tag, or says what is wrong with the file
            tags = [w[1] for _, kind, w, *_ in muts if kind in ("delete", "set")]
            if any(t in msg for t in tags) or re.search(r"truncat|not a DICOM|cannot be read|invalid|corrupt", msg,
                                                        re.IGNORECASE):
                RESULTS["refused_named"] += 1
            RESULTS["refused"] += 1
            return
        RESULTS["imported"] += 1
        dose = imported.data.plan_dose_gy
        assert np.isfinite(dose).all() and (dose >= 0).all()
        ds = pydicom.dcmread(str(rd))
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        assert dose.shape == (frames, int(ds.Rows), int(ds.Columns))
        stored = ds.pixel_array.astype(np.float64).reshape(dose.shape)
        expected_max = float(stored.max()) * float(ds.DoseGridScaling)
        # the plan's per-course dose is stored: a whole-course summation type is the file's dose, a
        # per-fraction one (FRACTION, ...) that dose times the 2 fractions
        if str(ds.DoseSummationType).upper() in PER_FRACTION_TYPES:
            expected_max *= 2
        assert str(ds.DoseType).upper() == "PHYSICAL"      # any other DoseType is refused
        assert float(dose.max()) == pytest.approx(expected_max, rel=1e-6, abs=1e-9)


def test_unmutated_files_import(tmp_path):
    base = _base()
    imp = import_dicom(rtstruct=base["rs"], plan_dose=base["rd"], fractions=2, load=False)
    assert imp.roi_names == ("Shape",) and float(imp.data.plan_dose_gy.max()) > 0


def test_zz_dicom_fuzz_reaches_its_checks():
    """Counts of the fuzz above: every built file reached a check (an import checked number by number or a
    DicomImportError naming the file); most refusals also name the damaged tag or the file's defect."""
    n = RESULTS["imported"] + RESULTS["refused"]
    print(f"\nDICOM fuzz: {n} examples ({RESULTS['refused']} refused with DicomImportError, "
          f"{RESULTS['refused_named']} naming the damaged tag or defect; {RESULTS['imported']} imported and checked; "
          f"{RESULTS['not_built']} mutations pydicom could not write)")
    record_count("fuzz examples (DICOM)", n)
    if _BASE:
        shutil.rmtree(str(_BASE["dir"]), ignore_errors=True)
    assert n >= 1
    assert RESULTS["refused_named"] >= 0.5 * RESULTS["refused"]
