"""The bad-input catalog: every malformed input reirrad meets, in one table.

Each row names the input, the exact error class and the words the user sees
(``pytest.raises(cls, match=...)``), and the test checks that nothing was written:

* ``dicom``    — :func:`mock_tps.dicom_import.import_dicom` on files broken one way;
                 no patient is loaded afterwards and no file appeared.
* ``protocol`` — :func:`constraints.protocol.load_protocol` on a mutated ``koide2024.toml``.
* ``config``   — :func:`tps_scripts.config.load_config` on a broken configuration file.
* ``cli``      — the ``reirrad`` command: the handler raises the class, ``main`` prints one
                 line on stderr and exits 2; the output folder stays empty.
* ``tps``      — the RayStation scripts (assessment, optimization) on a mock patient in a
                 bad state: ``mock_tps.snapshot`` before == after, no record written.

``test_catalog_size`` prints ``catalog: N cases``.  The DICOM rows reuse the builders of
``tests/mock_tps/_dicom_builders.py``; some repeat, in table form, refusals that
``tests/mock_tps/test_dicom_errors.py`` also checks one test each.
"""
from __future__ import annotations

import dataclasses
import os
from collections import namedtuple

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import mock_tps  # noqa: E402
from _dicom_builders import PATIENT, Shape, edit_dataset, edited_copy, write_case  # noqa: E402
from _mock_synthetic import DOSE_GRID, make_phantom_data  # noqa: E402
from _trust import files_under, record_count  # noqa: E402
from constraints.errors import (DicomImportError, InputError, ProtocolError,  # noqa: E402
                                TpsStateError)
from constraints.protocol import PROTOCOL_DIR  # noqa: E402
from mock_tps import _dicom_write as w  # noqa: E402
from mock_tps._phantom_data import PriorCourseSpec  # noqa: E402
from tps_scripts.writeback import WriteStepError  # noqa: E402

Case = namedtuple("Case", "id kind setup cls match")
CASES = []


def case(kind, cid, cls, match):
    def deco(fn):
        CASES.append(Case(f"{kind}-{cid}", kind, fn, cls, match))
        return fn
    return deco


# ------------------------------------------------------------------ DICOM
SPHERE = Shape("sphere", (0.0, 0.0, 0.0), 8.0)
FRAME = "1.2.3.4.5.6"


def _files(tmp, **kw):
    return write_case(tmp, SPHERE, grid_mm=2.0, axis=0, frame_uid=FRAME, **kw)




def _dose_edit(**attrs):
    def setup(tmp):
        rs, rd = _files(tmp)
        edit_dataset(rd, **attrs)
        return dict(rtstruct=rs, plan_dose=rd)
    return setup


def _prior_copy(tmp, rd, **attrs):
    return edited_copy(rd, tmp / "prior.dcm", **attrs)


def _ct(tmp, frame=FRAME):
    d = tmp / "CT"
    w.write_ct_slices(d, np.zeros((6, 8, 8)), (-8, -8, -6), (2, 2, 2), frame_uid=frame, study_uid="1.2",
                      patient=PATIENT)
    return d


def _bad_struct(tmp, planes, geometric_type="CLOSED_PLANAR"):
    return w.write_rtstruct(tmp / "RS_bad.dcm", [("Bad", "Organ", planes)], frame_uid=FRAME, study_uid="1.2.3",
                            patient=PATIENT, geometric_type=geometric_type)


case("dicom", "relative-units", DicomImportError, r"RD\.dcm.*DoseUnits RELATIVE")(
    lambda tmp: dict(zip(("rtstruct", "plan_dose"), _files(tmp, units="RELATIVE"))))
case("dicom", "cgy-units", DicomImportError, r"RD\.dcm.*DoseUnits 'CGY'; expected 'GY'")(_dose_edit(DoseUnits="CGY"))
case("dicom", "units-missing", DicomImportError, r"DoseUnits '\(missing\)'")(_dose_edit(DoseUnits=None))
case("dicom", "scaling-missing", DicomImportError, r"RD\.dcm.*DoseGridScaling is missing")(
    _dose_edit(DoseGridScaling=None))
case("dicom", "scaling-zero", DicomImportError, r"DoseGridScaling .*must be a positive number")(
    _dose_edit(DoseGridScaling=0.0))
case("dicom", "scaling-negative", DicomImportError, r"DoseGridScaling .*must be a positive number")(
    _dose_edit(DoseGridScaling=-0.001))
case("dicom", "summation-unknown", DicomImportError, r"DoseSummationType 'CONTROL_POINT' is not supported")(
    _dose_edit(DoseSummationType="CONTROL_POINT"))
case("dicom", "dose-type-effective", DicomImportError, r"plan RTDOSE .*RD\.dcm.*DoseType 'EFFECTIVE' is a biologically weighted")(
    _dose_edit(DoseType="EFFECTIVE"))
case("dicom", "dose-type-error", DicomImportError, r"RD\.dcm.*DoseType 'ERROR' is a dose-uncertainty map")(
    _dose_edit(DoseType="ERROR"))
case("dicom", "dose-type-missing", DicomImportError, r"RD\.dcm.*DoseType '\(missing\)' is missing")(
    _dose_edit(DoseType=None))


@case("dicom", "prior-dose-type-effective", DicomImportError, r"prior RTDOSE .*prior\.dcm.*DoseType 'EFFECTIVE'")
def _prior_effective(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(_prior_copy(tmp, rd, DoseType="EFFECTIVE"), 25)])


case("dicom", "dose-frame-mismatch", DicomImportError, r"plan RTDOSE .*RD\.dcm.*frame of reference 1\.2\.3\.999")(
    _dose_edit(FrameOfReferenceUID="1.2.3.999"))
case("dicom", "dose-frame-missing", DicomImportError, r"RD\.dcm.*FrameOfReferenceUID is missing")(
    _dose_edit(FrameOfReferenceUID=None))
case("dicom", "orientation-oblique", DicomImportError, r"RD\.dcm.*oblique or not axial")(
    lambda tmp: dict(zip(("rtstruct", "plan_dose"),
                         _files(tmp, orientation=(np.cos(.2), np.sin(.2), 0, -np.sin(.2), np.cos(.2), 0)))))
case("dicom", "orientation-sagittal", DicomImportError, r"oblique or not axial")(
    _dose_edit(ImageOrientationPatient=[0, 1, 0, 0, 0, -1]))
case("dicom", "orientation-5-values", DicomImportError, r"ImageOrientationPatient must have 6 values, got 5")(
    _dose_edit(ImageOrientationPatient=[1, 0, 0, 0, 1]))
case("dicom", "pixel-spacing-negative", DicomImportError, r"PixelSpacing .* must be two positive numbers")(
    _dose_edit(PixelSpacing=[-2.0, 2.0]))
case("dicom", "frame-offsets-wrong-length", DicomImportError, r"GridFrameOffsetVector has 2 values for \d+ frames")(
    _dose_edit(GridFrameOffsetVector=[0.0, 2.0]))
case("dicom", "frame-offsets-missing", DicomImportError, r"GridFrameOffsetVector is missing")(
    _dose_edit(GridFrameOffsetVector=None))


@case("dicom", "struct-frame-differs-from-ct", DicomImportError, r"RTSTRUCT .*export the structure set drawn on this CT")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, ct_dir=_ct(tmp, frame="1.2.3.777"))


@case("dicom", "prior-other-frame-no-registration", DicomImportError, r"prior RTDOSE .*prior\.dcm.*give a registration")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(_prior_copy(tmp, rd, FrameOfReferenceUID="1.2.3.999"), 30)])


@case("dicom", "registration-not-rigid", DicomImportError, r"registration matrix: the 3x3 part is not a rotation")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(_prior_copy(tmp, rd, FrameOfReferenceUID="1.2.3.999"), 30)],
                registration=np.diag([2.0, 1, 1, 1]))


@case("dicom", "registration-last-row", DicomImportError, r"last row .* must be \(0, 0, 0, 1\)")
def _(tmp):
    rs, rd = _files(tmp)
    m = np.eye(4)
    m[3, 0] = 1.0
    return dict(rtstruct=rs, plan_dose=rd, priors=[(_prior_copy(tmp, rd, FrameOfReferenceUID="1.2.3.999"), 30)],
                registration=m)


@case("dicom", "registration-not-4x4", DicomImportError, r"expected a finite 4x4 matrix, got shape \(3, 3\)")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(_prior_copy(tmp, rd, FrameOfReferenceUID="1.2.3.999"), 30)],
                registration=np.eye(3))


@case("dicom", "contour-open", DicomImportError, r"RS_bad\.dcm.*'Bad' contour 1 is OPEN_PLANAR")
def _(tmp):
    _, rd = _files(tmp)
    sq = np.array([[0, 0], [5, 0], [5, 5], [0, 5]], float)
    return dict(rtstruct=_bad_struct(tmp, [(0.0, [sq])], "OPEN_PLANAR"), plan_dose=rd)


@case("dicom", "contour-degenerate", DicomImportError, r"'Bad' contour 1 at z = 0 mm is degenerate")
def _(tmp):
    _, rd = _files(tmp)
    return dict(rtstruct=_bad_struct(tmp, [(0.0, [np.array([[0, 0], [5, 0], [10, 0]], float)])]), plan_dose=rd)


@case("dicom", "contour-extreme-coordinates", DicomImportError,
      r"RS_bad\.dcm.*would need a synthetic examination of .* voxels")
def _(tmp):
    _, rd = _files(tmp)
    huge = np.array([[-2e4, -2e4], [2e4, -2e4], [2e4, 2e4], [-2e4, 2e4]], float)
    return dict(rtstruct=_bad_struct(tmp, [(0.0, [huge])]), plan_dose=rd)


@case("dicom", "ct-missing-slice", DicomImportError, r"CT series .*not equally spaced.*missing or duplicate slices")
def _(tmp):
    rs, rd = _files(tmp)
    ct = _ct(tmp)
    (ct / "CT.0003.dcm").unlink()
    return dict(rtstruct=rs, plan_dose=rd, ct_dir=ct)


@case("dicom", "ct-dir-empty", DicomImportError, r"CT directory .* holds no CT images")
def _(tmp):
    rs, rd = _files(tmp)
    (tmp / "emptyct").mkdir()
    return dict(rtstruct=rs, plan_dose=rd, ct_dir=tmp / "emptyct")


@case("dicom", "ct-dir-missing", DicomImportError, r"CT directory .*: no such directory")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, ct_dir=tmp / "nope")


@case("dicom", "file-truncated", DicomImportError, r"RD\.dcm.*is truncated")
def _(tmp):
    rs, rd = _files(tmp)
    rd.write_bytes(rd.read_bytes()[:-100])
    return dict(rtstruct=rs, plan_dose=rd)


@case("dicom", "file-not-dicom", DicomImportError, r"RTSTRUCT .*notes\.txt.*is not a DICOM file")
def _(tmp):
    _, rd = _files(tmp)
    (tmp / "notes.txt").write_text("not a dicom file\n" * 20)
    return dict(rtstruct=tmp / "notes.txt", plan_dose=rd)


@case("dicom", "file-missing", DicomImportError, r"plan RTDOSE .*absent\.dcm.*no such file")
def _(tmp):
    rs, _ = _files(tmp)
    return dict(rtstruct=rs, plan_dose=tmp / "absent.dcm")


@case("dicom", "modality-wrong", DicomImportError, r"RTSTRUCT .*RD\.dcm.*has Modality 'RTDOSE'; expected 'RTSTRUCT'")
def _(tmp):
    _, rd = _files(tmp)
    return dict(rtstruct=rd, plan_dose=rd)


@case("dicom", "modality-dose-is-struct", DicomImportError, r"RS\.dcm.*has Modality 'RTSTRUCT'; expected 'RTDOSE'")
def _(tmp):
    rs, _ = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rs)


@case("dicom", "per-fraction-dose-no-count", DicomImportError, r"RD\.dcm.*FRACTION.*fraction count is unknown")
def _(tmp):
    rs, rd = _files(tmp, summation="FRACTION")
    return dict(rtstruct=rs, plan_dose=rd)


@case("dicom", "fractions-zero", DicomImportError, r"fractions must be an integer >= 1, got 0")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, fractions=0)


@case("dicom", "fractions-disagree-with-rtplan", DicomImportError, r"fractions=5 disagrees with RTPLAN .*2 fractions")
def _(tmp):
    rs, rd = _files(tmp)
    rp, _ = w.write_rtplan(tmp / "RP.dcm", fractions=2, prescription_gy=24.0, frame_uid=FRAME, study_uid="1.2",
                           patient=PATIENT)
    return dict(rtstruct=rs, plan_dose=rd, plan=rp, fractions=5)


@case("dicom", "prior-item-malformed", DicomImportError, r"priors\[0\] must be \(path, fractions")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[str(rd)])


@case("dicom", "prior-recovery-out-of-range", DicomImportError, r"priors\[0\] recovery must be in \[0, 1\), got 1\.5")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(rd, 30, 1.5)])


@case("dicom", "prior-names-duplicate", DicomImportError, r"prior evaluation dose names .* are not unique")
def _(tmp):
    rs, rd = _files(tmp)
    return dict(rtstruct=rs, plan_dose=rd, priors=[(rd, 30, 0.0, "P"), (rd, 25, 0.0, "P")])


# ------------------------------------------------------------------ protocols
def _koide_text():
    with open(os.path.join(PROTOCOL_DIR, "koide2024.toml"), encoding="utf-8") as fh:
        return fh.read()


def _mutated(old, new, count=1):
    def setup(tmp):
        text = _koide_text()
        assert old in text, old
        p = tmp / "mutated.toml"
        p.write_text(text.replace(old, new, count), encoding="utf-8")
        return str(p)
    return setup


ESO_CONSTRAINT = 'id = "esophagus_cum_dmax"\norgan = "esophagus"\nmetric = "Dmax"'
case("protocol", "unknown-name", ProtocolError, r"unknown protocol 'koide2099'; built-in protocols: koide2024")(
    lambda tmp: "koide2099")
case("protocol", "unknown-organ", ProtocolError, r"'esophagus_cum_dmax'.*names unknown organ 'oesophagus'")(
    _mutated(ESO_CONSTRAINT, ESO_CONSTRAINT.replace('organ = "esophagus"', 'organ = "oesophagus"')))
case("protocol", "unknown-metric", ProtocolError, r"'esophagus_cum_dmax'.*field 'metric'")(
    _mutated(ESO_CONSTRAINT, ESO_CONSTRAINT.replace('"Dmax"', '"Dhottest"')))
case("protocol", "unknown-domain", ProtocolError, r"field 'domain' must be one of .*got 'cumulative_physical'")(
    _mutated('domain = "cumulative_bed"', 'domain = "cumulative_physical"'))
case("protocol", "unit-wrong-for-domain", ProtocolError, r"unit 'Gy' does not match domain 'cumulative_bed'")(
    _mutated('unit = "Gy BED"', 'unit = "Gy"'))
case("protocol", "limit-in-wrong-domain", ProtocolError, r"unit 'Gy BED' does not match domain 'cumulative_eqd2'")(
    _mutated('domain = "cumulative_bed"\ncomparison', 'domain = "cumulative_eqd2"\ncomparison'))
case("protocol", "alpha-beta-negative", ProtocolError, r"\[organs\.esophagus\]: field 'alpha_beta_gy' must be > 0")(
    _mutated('kind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"',
             'kind = "oar"\nalpha_beta_gy = -3.0\naliases = ["Esophagus"'))
case("protocol", "alpha-beta-missing", ProtocolError, r"\[organs\.esophagus\]: field 'alpha_beta_gy' is missing")(
    _mutated('kind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"', 'kind = "oar"\naliases = ["Esophagus"'))
case("protocol", "alpha-beta-string", ProtocolError, r"field 'alpha_beta_gy' must be a number, got '3'")(
    _mutated('kind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"',
             'kind = "oar"\nalpha_beta_gy = "3"\naliases = ["Esophagus"'))
case("protocol", "alpha-beta-nan", ProtocolError, r"field 'alpha_beta_gy' must be finite")(
    _mutated('kind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"',
             'kind = "oar"\nalpha_beta_gy = nan\naliases = ["Esophagus"'))
case("protocol", "limit-negative", ProtocolError, r"field 'limit' must be > 0")(
    _mutated("limit = 203", "limit = -203"))
case("protocol", "limit-and-table", ProtocolError, r"give exactly one of 'limit' or 'limit_table'")(
    _mutated('limit_table = "cord_prv_d0035cc"', 'limit_table = "cord_prv_d0035cc"\nlimit = 12.0'))
case("protocol", "format-unsupported", ProtocolError, r"format 2 is not supported")(
    _mutated("format = 1", "format = 2"))
case("protocol", "toml-syntax", ProtocolError, r"is not valid TOML")(_mutated("format = 1", "format = = 1"))
case("protocol", "unknown-field", ProtocolError, r"unknown field\(s\) \['colour'\]")(
    _mutated('kind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"',
             'colour = "red"\nkind = "oar"\nalpha_beta_gy = 3.0\naliases = ["Esophagus"'))
case("protocol", "table-rows-not-increasing", ProtocolError, r"row bounds must increase strictly")(
    _mutated("[90.0, 12.2], [91.0, 12.1]", "[91.0, 12.2], [90.0, 12.1]"))
case("protocol", "alias-shared", ProtocolError, r"\[organs\.trachea\]: alias 'Trachea' is also an alias of organ 'larynx'")(
    _mutated('aliases = ["Larynx"]', 'aliases = ["Larynx", "Trachea"]'))
case("protocol", "prescription-fractions-zero", ProtocolError, r"\[prescription\]: field 'fractions' must be >= 1")(
    _mutated("dose_gy = 24.0\nfractions = 2", "dose_gy = 24.0\nfractions = 0"))


# ------------------------------------------------------------------ configuration
def _config(text, suffix=".toml"):
    def setup(tmp):
        p = tmp / ("config" + suffix)
        p.write_text(text, encoding="utf-8")
        return str(p)
    return setup


case("config", "file-missing", InputError, r"configuration .*absent\.toml' cannot be read")(
    lambda tmp: str(tmp / "absent.toml"))
case("config", "syntax", InputError, r"cannot be parsed")(_config("protocol = \n"))
case("config", "unknown-field", InputError, r"unknown field\(s\) \['protocoll'\]")(_config('protocoll = "x"\n'))
case("config", "unknown-prior-policy", InputError, r"field 'unknown_prior': must be one of \['refuse', 'organ_max'\]")(
    _config('unknown_prior = "zero"\n'))
case("config", "max-optimizations-zero", InputError, r"field 'max_optimizations': must be an integer 1-20, got 0")(
    _config("max_optimizations = 0\n"))
case("config", "prior-fractions-missing", InputError, r"field 'prior\[0\]\.fractions': must be an integer >= 1")(
    _config('[[prior]]\nname = "EBRT"\n'))
case("config", "prior-recovery-negative", InputError, r"prior\[0\]\.recovery': must be in \[0, 1\), got -0\.1")(
    _config('[[prior]]\nname = "EBRT"\nfractions = 30\nrecovery = -0.1\n'))
case("config", "prior-uncertainty-too-large", InputError,
     r"prior\[0\]\.uncertainty_mm': must be a radius in mm, 0-20, got 25")(
    _config('[[prior]]\nname = "P"\nfractions = 5\nuncertainty_mm = 25\n'))
case("config", "prior-total-negative", InputError, r"prior\[0\]\.total_gy': must be the course's total dose")(
    _config('[[prior]]\nname = "P"\nfractions = 5\ntotal_gy = -60\n'))
case("config", "prior-listed-twice", InputError, r"field 'prior': evaluation dose\(s\) \['P'\] listed more than once")(
    _config('[[prior]]\nname = "P"\nfractions = 5\n[[prior]]\nname = "P"\nfractions = 30\n'))
case("config", "exclude-doses-not-a-list", InputError, r"field 'exclude_doses': must be a list of evaluation dose names")(
    _config('exclude_doses = "Sum"\n'))
case("config", "dose-both-prior-and-excluded", InputError,
     r"field 'exclude_doses': \['P'\] also listed as prior course\(s\)")(
    _config('exclude_doses = ["P"]\n[[prior]]\nname = "P"\nfractions = 5\n'))
case("config", "prior-date-bad", InputError, r"prior\[0\]\.date': must be an ISO date")(
    _config('{"prior": [{"name": "EBRT", "fractions": 30, "date": "14.03.2025"}]}', ".json"))


# ------------------------------------------------------------------ CLI
case("cli", "bio-negative-dose", InputError, r"dose_gy must be >= 0 Gy, found a minimum of -5")(
    lambda tmp: ["bio", "--dose", "-5", "--fractions", "2", "--alpha-beta", "3"])
case("cli", "bio-nan-dose", InputError, r"dose_gy contains 1 non-finite value")(
    lambda tmp: ["bio", "--dose", "nan", "--fractions", "2", "--alpha-beta", "3"])
case("cli", "bio-zero-fractions", InputError, r"fractions must be an integer >= 1, got 0")(
    lambda tmp: ["bio", "--dose", "10", "--fractions", "0", "--alpha-beta", "3"])
case("cli", "bio-alpha-beta-zero", InputError, r"alpha_beta_gy must be a finite number > 0 Gy, got 0\.0")(
    lambda tmp: ["bio", "--dose", "10", "--fractions", "2", "--alpha-beta", "0"])
case("cli", "limit-prior-format", InputError, r"--prior '60x30' must look like DOSE/FRACTIONS")(
    lambda tmp: ["limit", "--prior", "60x30", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2"])
case("cli", "limit-recovery-1.5", InputError, r"--prior '60/30@1\.5': recovery must be in \[0, 1\)")(
    lambda tmp: ["limit", "--prior", "60/30@1.5", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2"])
case("cli", "limit-negative-limit", InputError, r"cumulative_limit_bed_gy must be a finite number > 0")(
    lambda tmp: ["limit", "--prior", "60/30", "--alpha-beta", "3", "--limit-bed", "-1", "--fractions", "2"])
case("cli", "cord-limit-negative-bed", InputError, r"table 'cord_prv_d0035cc': input must be a finite number >= 0")(
    lambda tmp: ["protocol", "cord-limit", "--prior-bed", "-3"])
case("cli", "protocol-unknown", ProtocolError, r"unknown protocol 'nosuch'")(
    lambda tmp: ["protocol", "show", "nosuch"])
case("cli", "dvh-missing-file", InputError, r"--rtstruct 'nope\.dcm': no such file")(
    lambda tmp: ["dvh", "--rtstruct", "nope.dcm", "--dose", "nope.dcm"])
case("cli", "unknown-command", SystemExit, r"invalid choice: 'frobnicate'")(lambda tmp: ["frobnicate"])
case("cli", "bio-dose-and-bed", SystemExit, r"argument --dose: not allowed with argument --bed")(
    lambda tmp: ["bio", "--bed", "127", "--dose", "3", "--fractions", "2", "--alpha-beta", "3"])
case("cli", "assess-file-missing", InputError, r"--rtstruct 'nope\.dcm' does not exist")(
    lambda tmp: ["assess", "--rtstruct", "nope.dcm", "--plan-dose", "x", "--out", str(tmp / "out")])
case("cli", "assess-prior-zero-fractions", InputError, r"fractions must be >= 1 and recovery in \[0, 1\)")(
    lambda tmp: ["assess", "--rtstruct", __file__, "--plan-dose", __file__, "--prior", f"{__file__}:0",
                 "--out", str(tmp / "out")])
case("cli", "assess-registration-text", InputError, r"--registration 'a,b' is neither a file nor 16")(
    lambda tmp: ["assess", "--rtstruct", __file__, "--plan-dose", __file__, "--registration", "a,b",
                 "--out", str(tmp / "out")])


@case("cli", "assess-relative-dose", DicomImportError, r"RD\.dcm.*DoseUnits RELATIVE")
def _(tmp):
    rs, rd = _files(tmp, units="RELATIVE")
    return ["assess", "--rtstruct", str(rs), "--plan-dose", str(rd), "--fractions", "2", "--out", str(tmp / "out")]


# ------------------------------------------------------------------ TPS states
def _dose_only(**changes):
    """The synthetic patient with an imported-style dose (no beam model): loads in milliseconds."""
    d = make_phantom_data()
    base = dict(influence_gy=None, beams=(), beamlet_beam_index=np.zeros(0, dtype=int),
                plan_dose_gy=np.full(DOSE_GRID.shape_zyx, 10.0))
    base.update(changes)
    return dataclasses.replace(d, **base)


def _rois(replace=None, add=()):
    out = []
    for r in make_phantom_data().rois:
        out.append(replace(r) if replace else r)
    return tuple(out) + tuple(add)


def _prior(dose, name="Prior EBRT 10Gy/5fx"):
    return (PriorCourseSpec(name, dose, DOSE_GRID, 5, "2023-01-01"),)


ESO = [r for r in make_phantom_data().rois if r.name == "Esophagus"][0]


def _assess(config=None):
    from mock_tps import connect
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    run_assessment(api=connect, config=config or PluginConfig())


def _optimize(config=None):
    from mock_tps import connect
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization
    run_optimization(api=connect, config=config or PluginConfig())


def _tps(data, run, before=None):
    def setup(tmp):
        if data is None:
            mock_tps.unload()
        else:
            mock_tps.load_patient_data(data() if callable(data) else data, initial_plan="none")
            if before is not None:
                before()
        return run
    return setup


def _approve_plan():
    import connect
    mock_tps.approve(connect.get_current("Plan"))


def _approve_structure_set():
    import connect
    mock_tps.approve(connect.get_current("Case").PatientModel.StructureSets["CT 1"])


case("tps", "nothing-loaded-assess", TpsStateError, r"no patient is loaded: open the patient")(_tps(None, _assess))
case("tps", "nothing-loaded-optimize", TpsStateError, r"no patient is loaded")(_tps(None, _optimize))
case("tps", "no-dose-assess", TpsStateError, r"beam set 'SBRT' \(fraction dose\) has no dose: compute the dose first")(
    _tps(make_phantom_data, _assess))
case("tps", "approved-plan", TpsStateError, r"plan 'SBRT' is approved: reirrad does not write into approved plans")(
    _tps(make_phantom_data, _optimize, _approve_plan))
case("tps", "locked-structure-set", TpsStateError, r"structure set of examination 'CT 1' is approved")(
    _tps(make_phantom_data, _optimize, _approve_structure_set))
case("tps", "roi-missing", TpsStateError, r"required organ\(s\) missing: Esophagus \(no ROI named like")(
    _tps(lambda: _dose_only(rois=_rois(lambda r: dataclasses.replace(r, name="Oeso_x") if r is ESO else r)),
         _assess))
case("tps", "roi-duplicate", InputError, r"ROIs \['Esophagus', 'Esoph'\] all match organ 'esophagus'")(
    _tps(lambda: _dose_only(rois=_rois(add=[dataclasses.replace(ESO, name="Esoph")])), _assess))
case("tps", "roi-without-contours", TpsStateError, r"Esophagus \(ROI 'Esophagus' has no contours on 'CT 1'")(
    _tps(lambda: _dose_only(rois=_rois(lambda r: dataclasses.replace(r, mask=np.zeros_like(r.mask))
                                       if r is ESO else r)), _assess))
case("tps", "prior-does-not-cover-oar", TpsStateError,
     r"prior course 'Prior EBRT 10Gy/5fx' does not cover ROI 'External': 1470 of its voxels lie outside the prior "
     r"dose grid.*never zero")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.where(np.arange(20)[None, :, None] < 7, np.nan,
                                                          np.full(DOSE_GRID.shape_zyx, 10.0)))), _assess))
case("tps", "prior-fractions-unknown", TpsStateError, r"fraction count of evaluation dose 'Prior EBRT' is unknown")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.full(DOSE_GRID.shape_zyx, 10.0), name="Prior EBRT")), _assess))
case("tps", "prior-infinite", InputError, r"prior course 'Prior EBRT 10Gy/5fx': the dose contains 1 non-finite value")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.where(np.arange(6000).reshape(DOSE_GRID.shape_zyx) == 5, np.inf,
                                                          10.0))), _assess))
case("tps", "nan-in-plan-dose", InputError, r"beam set 'SBRT' \(fraction dose\): the dose contains 1 non-finite")(
    _tps(lambda: _dose_only(plan_dose_gy=np.where(np.arange(6000).reshape(DOSE_GRID.shape_zyx) == 77, np.nan, 10.0)),
         _assess))
case("tps", "negative-plan-dose", InputError, r"the dose contains negative values")(
    _tps(lambda: _dose_only(plan_dose_gy=np.where(np.arange(6000).reshape(DOSE_GRID.shape_zyx) == 77, -1.0, 10.0)),
         _assess))


def _cfg(**kw):
    def run():
        from tps_scripts.config import PluginConfig, PriorConfig
        if "priors" in kw:
            kw["priors"] = tuple(PriorConfig(*p) for p in kw["priors"])
        _assess(PluginConfig(**kw))
    return run


case("tps", "configured-prior-absent", TpsStateError, r"configured prior course 'EBRT 2019' is not among")(
    _tps(_dose_only, _cfg(priors=[("EBRT 2019", 30)])))
case("tps", "override-unknown-roi", InputError, r"ROI override for 'esophagus' names ROI 'Eso9'")(
    _tps(_dose_only, _cfg(roi_overrides={"esophagus": "Eso9"})))
case("tps", "organ-max-prior-misses-organ", TpsStateError, r"does not reach ROI 'Esophagus' at all")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.where(np.arange(20)[None, :, None] < 10, np.nan,
                                                          np.full(DOSE_GRID.shape_zyx, 10.0)))),
         _cfg(unknown_prior="organ_max")))
case("tps", "prior-unnamed", InputError, r"1 evaluation dose\(s\) on examination 'CT 1' have no name")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.full(DOSE_GRID.shape_zyx, 10.0))
                            + _prior(np.full(DOSE_GRID.shape_zyx, 10.0), name="")), _assess))
case("tps", "prior-not-listed", InputError,
     r"evaluation dose\(s\) \['Prior EBRT 2 20Gy/5fx'\] on examination 'CT 1' are neither configured prior")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.full(DOSE_GRID.shape_zyx, 10.0))
                            + _prior(np.full(DOSE_GRID.shape_zyx, 20.0), name="Prior EBRT 2 20Gy/5fx")),
         _cfg(priors=[("Prior EBRT 10Gy/5fx", 5)])))
case("tps", "prior-per-fraction-map", InputError, r"it looks like one fraction of 5")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.full(DOSE_GRID.shape_zyx, 2.0))), _assess))
case("tps", "prior-total-unknown", InputError, r"prior course 'Old': its total dose is not stated")(
    _tps(lambda: _dose_only(prior_courses=_prior(np.full(DOSE_GRID.shape_zyx, 10.0), name="Old")),
         _cfg(priors=[("Old", 5)])))
case("tps", "excluded-dose-absent", InputError, r"exclude_doses names \['Sum'\], not among the evaluation doses")(
    _tps(_dose_only, _cfg(exclude_doses=("Sum",))))
case("tps", "optimize-plan-without-beam-model", WriteStepError, r"write step 'RunOptimization 1' failed")(
    _tps(_dose_only, _optimize))


# ------------------------------------------------------------------ the test
def _no_patient():
    from mock_tps import connect
    with pytest.raises(SystemError):
        connect.get_current("Patient")


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c, tmp_path, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "records"
    monkeypatch.setenv("REIRRAD_OUTPUT_DIR", str(out))
    monkeypatch.delenv("REIRRAD_CONFIG", raising=False)
    try:
        if c.kind == "dicom":
            from mock_tps.dicom_import import import_dicom
            kwargs = c.setup(inputs)
            mock_tps.unload()
            files = files_under(tmp_path)
            with pytest.raises(c.cls, match=c.match):
                import_dicom(**kwargs)
            _no_patient()
            assert files_under(tmp_path) == files
        elif c.kind == "protocol":
            from constraints.protocol import load_protocol
            arg = c.setup(inputs)
            files = files_under(tmp_path)
            with pytest.raises(c.cls, match=c.match):
                load_protocol(arg)
            assert files_under(tmp_path) == files
        elif c.kind == "config":
            from tps_scripts.config import load_config
            arg = c.setup(inputs)
            files = files_under(tmp_path)
            with pytest.raises(c.cls, match=c.match):
                load_config(arg)
            assert files_under(tmp_path) == files
        elif c.kind == "cli":
            _check_cli(c, inputs, tmp_path)
        elif c.kind == "tps":
            run = c.setup(inputs)
            before = _snapshot_or_none()
            with pytest.raises(c.cls, match=c.match):
                run()
            assert _snapshot_or_none() == before
            assert files_under(tmp_path) == files_under(inputs) and not out.exists()
        else:  # pragma: no cover
            raise AssertionError(c.kind)
    finally:
        mock_tps.unload()


def _snapshot_or_none():
    from mock_tps import connect
    try:
        return mock_tps.snapshot(connect.get_current("Patient"))
    except SystemError:
        return None


def _check_cli(c, inputs, tmp_path, capsys=None):
    import io
    import re
    import sys
    from optimizer.cli.main import build_parser, main
    argv = c.setup(inputs)
    files = files_under(tmp_path)
    err = io.StringIO()
    real_err = sys.stderr
    sys.stderr = err
    try:
        code = main(argv)
    finally:
        sys.stderr = real_err
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(c.match, lines[0]), (code, lines)
    assert files_under(tmp_path) == files
    if c.cls is SystemExit:
        return
    mock_tps.unload()
    args = build_parser().parse_args(argv)
    with pytest.raises(c.cls, match=c.match):
        args.handler(args)
    assert files_under(tmp_path) == files
    _no_patient()


def test_catalog_size():
    kinds = {}
    for c in CASES:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) >= 40
    print(f"\ncatalog: {len(CASES)} cases ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    record_count("catalog cases", len(CASES))
