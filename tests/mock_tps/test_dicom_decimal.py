"""ContourData as decimal strings: the vectorized conversion gives the doubles numpy's
one-by-one conversion gives, bit for bit, and fails where it fails."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mock_tps._dicom_decimal import parse_decimal_strings

DATA = Path(os.environ.get("REIRRAD_SHARED_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")


def _reference(text: bytes) -> np.ndarray:
    return np.array(text.split(b"\\"), dtype=np.float64)


def _same(text: bytes) -> None:
    got, want = parse_decimal_strings(text), _reference(text)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), text[:200]


@pytest.mark.parametrize("text", [
    b"17.72\\-336.73\\-122.44", b"0", b"-0", b"-0.0", b"0.5", b".5", b"-.5", b"5.", b"-5.",
    b"123456789012345", b"-12345678.9012345", b"0.000000000000001", b"9.99999999999999",
    b"1234567890123456", b"0.1234567890123456789", b"12345678901234567890",   # > 15 digits: numpy's path
    b"5.4e-1", b"-1E+3", b"+2.5", b" 3.25", b"3.25 ", b"1e308", b"1e-320", b"nan", b"-inf",
    b"0.1\\0.2\\0.3\\5.4e-1\\-7\\+8\\0.30000000000000004",
])
def test_same_doubles_as_numpy(text):
    _same(text)


def test_random_decimals_same_doubles_as_numpy():
    """100 000 random decimals of 1-17 digits (dot anywhere, sign, leading zeros), 1 % with
    an exponent (numpy's path, as are those of more than 15 digits)."""
    rng = np.random.default_rng(24)
    m = 100_000
    n_digits = rng.integers(1, 18, m)
    mantissa = (rng.random(m) * 10.0 ** n_digits).astype(np.int64)
    dot = (rng.random(m) * (n_digits + 1)).astype(int)
    values = []
    exponent = np.where(rng.random(m) < 0.01, rng.integers(-30, 30, m), 99)       # 99: none
    for n, v, d, has_dot, neg, exp in zip(n_digits.tolist(), mantissa.tolist(), dot.tolist(),
                                          (rng.random(m) < 0.8).tolist(), (rng.random(m) < 0.4).tolist(),
                                          exponent.tolist()):
        s = str(v).zfill(n)
        s = ("-" if neg else "") + (s[:d] + "." + s[d:] if has_dot else s)
        values.append(s if exp == 99 else f"{s}e{exp}")
    _same("\\".join(values).encode())


@pytest.mark.parametrize("text", [b"", b"1\\\\2", b"1\\", b"abc", b"1.2.3", b"1-2", b"--1", b"-", b".", b"1\\x"])
def test_not_a_number_raises_as_numpy(text):
    with pytest.raises(ValueError):
        _reference(text)
    with pytest.raises(ValueError):
        parse_decimal_strings(text)


def test_long_text_in_pieces_same_doubles_and_errors():
    """A text longer than two pieces (a body's contours: ~1 MB) is converted piece by piece, cut at
    backslashes: the same doubles; a bad value, an empty one or a trailing backslash in the last
    piece raises as numpy does."""
    from mock_tps import _dicom_decimal

    rng = np.random.default_rng(7)
    n = 3 * _dicom_decimal._PIECE_BYTES // 9 + 1000             # 8-11 bytes a value: 3+ pieces
    text = "\\".join(f"{v:.6f}" for v in rng.uniform(-300.0, 300.0, n)).encode()
    assert len(text) > 3 * _dicom_decimal._PIECE_BYTES
    _same(text)
    for bad in (text + b"\\x5", text + b"\\", text[:-5] + b"\\\\" + text[-4:]):
        with pytest.raises(ValueError):
            _reference(bad)
        with pytest.raises(ValueError):
            parse_decimal_strings(bad)


def _square_rtstruct(path, first_kind):
    """RTSTRUCT of one ROI: two squares, the first of ``first_kind``, the second with the value
    ``x5`` (written as bytes: pydicom refuses to set it)."""
    import pydicom
    from mock_tps import _dicom_write as w

    sq = np.array([[0, 0], [5, 0], [5, 5], [0, 5]], float)
    w.write_rtstruct(path, [("Bad", "Organ", [(0.0, [sq]), (2.0, [sq])])], frame_uid="1.2.3",
                     study_uid="1.2", patient={"PatientName": "A^B", "PatientID": "1"})
    ds = pydicom.dcmread(str(path))
    items = ds.ROIContourSequence[0].ContourSequence
    items[0].ContourGeometricType = first_kind
    items[1].ContourData = ["0", "0", "2", "5", "0", "2", "55", "5", "2", "0", "5", "2"]
    ds.save_as(str(path))
    raw = path.read_bytes()
    assert raw.count(b"\\55\\") == 1
    path.write_bytes(raw.replace(b"\\55\\", b"\\x5\\"))      # same length
    return path


def test_malformed_value_reported_in_file_order(tmp_path):
    """A value that is not a number makes the RTSTRUCT reader convert contour by contour, so
    the first problem in file order is the one reported, as before."""
    pytest.importorskip("pydicom")
    from constraints.errors import DicomImportError
    from mock_tps._dicom_struct import read_rtstruct

    with pytest.raises(DicomImportError, match=r"'Bad' contour 1 is OPEN_PLANAR"):
        read_rtstruct(_square_rtstruct(tmp_path / "RS1.dcm", "OPEN_PLANAR"))
    with pytest.raises(ValueError, match="x5"):
        read_rtstruct(_square_rtstruct(tmp_path / "RS2.dcm", "CLOSED_PLANAR"))


def _rtstructs():
    files = [DATA / "dicompyler_example" / "rtss.dcm"] + sorted((DATA / "nelms_dvh_analytical" / "structures").glob("*.dcm"))
    return [f for f in files if f.is_file()]


@pytest.mark.skipif(not _rtstructs(), reason="shared DICOM data absent")
def test_every_contour_of_the_public_rtstructs():
    """dicompyler-core's example (264 474 values, 1 934 with an exponent) and the 50 Nelms
    structure files: each contour's and all contours' values, bit for bit."""
    pydicom = pytest.importorskip("pydicom")
    n = 0
    for f in _rtstructs():
        ds = pydicom.dcmread(str(f))
        texts = [bytes(c.get_item(0x30060050).value).strip(b" \x00") for rc in ds.ROIContourSequence
                 for c in rc.get("ContourSequence", None) or []]
        for t in texts:
            _same(t)
        _same(b"\\".join(texts))
        n += len(texts)
    assert n > 441


def _planes_by_the_loop(monkeypatch, path):
    from mock_tps import _dicom_struct as st
    with monkeypatch.context() as m:
        m.setattr(st, "_planes_at_once", lambda *a: None)
        return st.read_rtstruct(path)


@pytest.mark.skipif(not _rtstructs(), reason="shared DICOM data absent")
def test_planes_checked_at_once_equal_the_contour_loops(monkeypatch):
    """Every ROI of the public RTSTRUCTs: the same planes (z, contours, each contour's vertices
    bit for bit) whether the checks run on all contours at once or contour by contour."""
    from mock_tps._dicom_struct import read_rtstruct
    n_contours = 0
    for f in _rtstructs():
        fast, slow = read_rtstruct(f), _planes_by_the_loop(monkeypatch, f)
        assert [r.name for r in fast.rois] == [r.name for r in slow.rois]
        for a, b in zip(fast.rois, slow.rois):
            assert [z for z, _ in a.planes] == [z for z, _ in b.planes], (f, a.name)
            for (_, ca), (_, cb) in zip(a.planes, b.planes):
                assert len(ca) == len(cb)
                for u, v in zip(ca, cb):
                    assert u.dtype == v.dtype and u.shape == v.shape and u.flags.c_contiguous
                    assert u.tobytes() == v.tobytes()
                n_contours += len(ca)
    assert n_contours > 441


def _struct_with(tmp_path, contours, edit=None):
    """RTSTRUCT of one ROI 'Bad' with ``contours`` [(z, (n, 2) array)], each its own plane entry;
    ``edit(items)`` changes the contour items before writing."""
    import pydicom
    from mock_tps import _dicom_write as w

    path = w.write_rtstruct(tmp_path / "RS.dcm", [("Bad", "Organ", [(z, [c]) for z, c in contours])],
                            frame_uid="1.2.3", study_uid="1.2", patient={"PatientName": "A^B", "PatientID": "1"})
    if edit is not None:
        ds = pydicom.dcmread(str(path))
        edit(ds.ROIContourSequence[0].ContourSequence)
        ds.save_as(str(path))
    return path


SQ = np.array([[0, 0], [5, 0], [5, 5], [0, 5]], float)


def test_first_problem_in_file_order_is_reported(tmp_path):
    """Contour 2 is not planar and contour 3 degenerate: contour 2 is named; a contour of
    0.5 mm² (checked exactly, below the at-once bound) is not degenerate."""
    pytest.importorskip("pydicom")
    from constraints.errors import DicomImportError
    from mock_tps._dicom_struct import read_rtstruct

    line = np.array([[0, 0], [5, 0], [10, 0]], float)
    tiny = np.array([[0, 0], [1, 0], [1, 0.5]], float) * np.array([1.0, 2.0])     # 1 × 1 triangle: 0.5 mm²

    def tilt(items):
        data = [float(v) for v in items[1].ContourData]
        data[2] += 0.5                                               # first vertex 0.5 mm off the plane
        items[1].ContourData = [f"{v:g}" for v in data]

    path = _struct_with(tmp_path, [(0.0, SQ), (2.0, SQ), (4.0, line)], tilt)
    with pytest.raises(DicomImportError, match=r"'Bad' contour 2 is not planar"):
        read_rtstruct(path)
    ok = read_rtstruct(_struct_with(tmp_path, [(0.0, SQ), (2.0, tiny)]))
    assert [z for z, _ in ok.rois[0].planes] == [0.0, 2.0]
    with pytest.raises(DicomImportError, match=r"'Bad' contour 1 at z = 0 mm is degenerate"):
        read_rtstruct(_struct_with(tmp_path, [(0.0, tiny * 1e-4), (2.0, SQ)]))


def test_declared_point_count_is_checked(tmp_path):
    pytest.importorskip("pydicom")
    from constraints.errors import DicomImportError
    from mock_tps._dicom_struct import read_rtstruct

    def miscount(items):
        items[1].NumberOfContourPoints = 5

    with pytest.raises(DicomImportError, match=r"'Bad' contour 2 has 12 coordinates for 5 points"):
        read_rtstruct(_struct_with(tmp_path, [(0.0, SQ), (2.0, SQ)], miscount))
