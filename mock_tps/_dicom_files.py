"""Reading DICOM files for the mock's import: one place that turns pydicom's
failures into :class:`~constraints.errors.DicomImportError` naming the file.

Offline-only module: imports pydicom inside its functions.

Orientation rule (shared by CT and RTDOSE)
------------------------------------------
The mock's grids are axis-aligned with positive spacings (x along columns, y along
rows, z along slices).  An image whose ``ImageOrientationPatient`` has its row
direction along ±x and its column direction along ±y (HFS ``[1,0,0,0,1,0]``, FFS
``[-1,0,0,0,1,0]``, HFP ``[-1,0,0,0,-1,0]``, FFP ``[1,0,0,0,-1,0]``, within
1e-3) is accepted and flipped into that order; anything else (oblique, sagittal,
coronal, rows along y) is refused with the orientation in the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Tuple

import numpy as np

from constraints.errors import DicomImportError

__all__ = ["read_dataset", "AxialOrientation", "axial_orientation", "require", "as_path"]

_IOP_TOLERANCE = 1e-3


def as_path(path: Any, what: str) -> Path:
    """``path`` as a :class:`Path` that exists and is a file."""
    try:
        p = Path(path)
    except TypeError:
        raise DicomImportError(f"{what}: expected a file path, got {path!r}") from None
    if not p.is_file():
        raise DicomImportError(f"{what} {str(p)!r}: no such file")
    return p


def read_dataset(path: Any, what: str, modality: str) -> Any:
    """Read one DICOM file completely and check its Modality.

    Parameters
    ----------
    path : path-like
    what : str
        How the caller names the input (``"RTSTRUCT"``, ``"prior RTDOSE"``), used in messages.
    modality : str
        Expected ``Modality`` (``"CT"``, ``"RTSTRUCT"``, ``"RTDOSE"``, ``"RTPLAN"``, ``"REG"``).

    Raises
    ------
    constraints.errors.DicomImportError
        Not a DICOM file, truncated, or of another modality.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = as_path(path, what)
    try:
        ds = pydicom.dcmread(str(p), force=False)
        short = _truncated_elements(ds)
    except InvalidDicomError:
        raise DicomImportError(f"{what} {str(p)!r} is not a DICOM file (no 'DICM' preamble); "
                               "export it from the planning system as DICOM") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DicomImportError(f"{what} {str(p)!r} cannot be read (truncated or corrupt DICOM: "
                               f"{type(exc).__name__}: {exc})") from None
    if short:
        tag, declared, got = short[0]
        raise DicomImportError(f"{what} {str(p)!r} is truncated: element {tag} declares {declared} bytes but the "
                               f"file holds only {got}; copy or export the file again")
    found = str(ds.get("Modality", "")).upper()
    if found != modality:
        raise DicomImportError(f"{what} {str(p)!r} has Modality {found or '(none)'!r}; expected {modality!r}")
    return ds


def _truncated_elements(ds: Any) -> list:
    """Top-level elements whose declared length exceeds the bytes read (pydicom reads a
    truncated file without complaint and returns what it found)."""
    short = []
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if isinstance(value, (bytes, bytearray)) and length not in (None, 0xFFFFFFFF) and len(value) < length:
            short.append((str(tag), int(length), len(value)))
    return short


def require(ds: Any, keyword: str, path: Any, what: str) -> Any:
    """``ds.<keyword>``, or DicomImportError naming the missing attribute."""
    value = ds.get(keyword, None)
    if value is None or (isinstance(value, (str, bytes)) and not value):
        raise DicomImportError(f"{what} {str(path)!r}: required attribute {keyword} is missing")
    return value


@dataclass(frozen=True)
class AxialOrientation:
    """How to bring an axial image into x-along-columns, y-along-rows order.

    Attributes
    ----------
    flip_x : bool
        Row direction is −x: reverse the column axis.
    flip_y : bool
        Column direction is −y: reverse the row axis.
    normal_z : float
        z component of row × column (+1 or −1): the direction in which slice
        offsets run.
    """

    flip_x: bool
    flip_y: bool
    normal_z: float


def axial_orientation(iop: Sequence[float], path: Any, what: str) -> AxialOrientation:
    """Classify an ``ImageOrientationPatient``; refuse non-axial ones (see module doc).

    Raises
    ------
    constraints.errors.DicomImportError
        Missing, malformed, oblique or non-axial orientation.
    """
    try:
        v = np.asarray([float(x) for x in iop], dtype=np.float64)
    except (TypeError, ValueError):
        raise DicomImportError(f"{what} {str(path)!r}: ImageOrientationPatient {iop!r} is not 6 numbers") from None
    if v.size != 6:
        raise DicomImportError(f"{what} {str(path)!r}: ImageOrientationPatient must have 6 values, got {v.size}")
    row, col = v[:3], v[3:]
    ok_row = abs(abs(row[0]) - 1) < _IOP_TOLERANCE and np.all(np.abs(row[1:]) < _IOP_TOLERANCE)
    ok_col = abs(abs(col[1]) - 1) < _IOP_TOLERANCE and abs(col[0]) < _IOP_TOLERANCE and abs(col[2]) < _IOP_TOLERANCE
    if not (ok_row and ok_col):
        raise DicomImportError(
            f"{what} {str(path)!r}: ImageOrientationPatient {[round(float(x), 4) for x in v]} is oblique or not "
            "axial; only axial images (rows along ±x, columns along ±y: HFS, FFS, HFP, FFP) can be imported. "
            "Reconstruct the series axially in the planning system and export again")
    normal = np.cross(row, col)
    return AxialOrientation(bool(row[0] < 0), bool(col[1] < 0), float(np.sign(normal[2])))


def orient_frames(frames: np.ndarray, orientation: AxialOrientation) -> np.ndarray:
    """Flip ``(..., rows, columns)`` so columns run along +x and rows along +y."""
    out = frames
    if orientation.flip_x:
        out = out[..., ::-1]
    if orientation.flip_y:
        out = out[..., ::-1, :]
    return np.ascontiguousarray(out)


def in_plane_geometry(ds: Any, orientation: AxialOrientation, path: Any,
                      what: str) -> Tuple[float, float, float, float]:
    """(x of first column centre, y of first row centre, dx, dy) in mm after flipping.

    ``PixelSpacing`` is (row spacing = distance between rows = dy, column spacing = dx).
    """
    ipp = [float(x) for x in require(ds, "ImagePositionPatient", path, what)]
    ps = [float(x) for x in require(ds, "PixelSpacing", path, what)]
    if len(ps) != 2 or min(ps) <= 0 or not np.all(np.isfinite(ps)):
        raise DicomImportError(f"{what} {str(path)!r}: PixelSpacing {ps!r} must be two positive numbers (mm)")
    dy, dx = ps
    rows, cols = int(require(ds, "Rows", path, what)), int(require(ds, "Columns", path, what))
    x0 = ipp[0] - (cols - 1) * dx if orientation.flip_x else ipp[0]
    y0 = ipp[1] - (rows - 1) * dy if orientation.flip_y else ipp[1]
    return x0, y0, dx, dy
