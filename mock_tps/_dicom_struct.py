"""RTSTRUCT reading for the mock's DICOM import: ROIs as planar contours.

Offline-only module (pydicom through :mod:`mock_tps._dicom_files`).

What is read
------------
- ROI number and name from ``StructureSetROISequence``; the ROI type from
  ``RTROIObservationsSequence.RTROIInterpretedType`` (mapped to RayStation's
  ``Type`` and ``OrganData.OrganType`` by :data:`ROI_TYPE_FROM_DICOM`); the
  colour from ``ROIContourSequence.ROIDisplayColor``.
- ``CLOSED_PLANAR`` contours, grouped into planes by their z (rounded to 1 µm).
  Several contours per plane are kept as they are; the voxelizer combines them by
  the even-odd (XOR) rule, so a contour inside another is a hole.
- ``POINT`` contours (markers) are ignored: such an ROI is imported without
  geometry.  ``OPEN_PLANAR``/``OPEN_NONPLANAR`` contours, non-planar
  ``CLOSED_PLANAR`` contours and degenerate ones (fewer than 3 distinct points or
  zero area) are refused, naming the ROI and the plane.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from constraints.errors import DicomImportError

from ._dicom_decimal import parse_decimal_strings
from ._dicom_files import read_dataset
from ._dicom_voxelize import polygon_area_mm2

__all__ = ["RoiContours", "StructureSetFile", "read_rtstruct", "ROI_TYPE_FROM_DICOM", "organ_type_for"]

#: DICOM RTROIInterpretedType → RayStation ROI ``Type``.
ROI_TYPE_FROM_DICOM = {
    "EXTERNAL": "External", "PTV": "Ptv", "CTV": "Ctv", "GTV": "Gtv", "ORGAN": "Organ",
    "AVOIDANCE": "Avoidance", "MARKER": "Marker", "BOLUS": "Bolus", "SUPPORT": "Support",
    "FIXATION": "Fixation", "CONTROL": "Control", "CAVITY": "Cavity", "CONTRAST_AGENT": "ContrastAgent",
    "REGISTRATION": "Registration", "ISOCENTER": "Isocenter", "DOSE_REGION": "DoseRegion",
    "TREATED_VOLUME": "TreatedVolume", "IRRAD_VOLUME": "IrradiatedVolume",
}
#: Contour points of one plane may differ in z by this much (mm) and still be planar.
PLANAR_TOLERANCE_MM = 0.01
_Z_DECIMALS = 3


def organ_type_for(roi_type: str) -> str:
    """RayStation ``OrganType`` for a ROI ``Type``: targets 'Target', organs 'OrganAtRisk', else 'Other'."""
    if roi_type in ("Ptv", "Ctv", "Gtv"):
        return "Target"
    if roi_type == "Organ":
        return "OrganAtRisk"
    return "Other"


@dataclass(frozen=True, eq=False)
class RoiContours:
    """One ROI of an RTSTRUCT.

    Attributes
    ----------
    number : int
        ROINumber.
    name : str
    roi_type : str
        RayStation ``Type`` ('Organ', 'Ptv', ..., 'Undefined').
    color : str
        ``"#FFRRGGBB"`` or ``"Yellow"`` when not given.
    planes : tuple of (z_mm, tuple of ndarray (n, 2))
        Sorted by z; each contour's (x, y) vertices in mm, closed implicitly.
    """

    number: int
    name: str
    roi_type: str
    color: str
    planes: Tuple[Tuple[float, Tuple[np.ndarray, ...]], ...]

    @property
    def is_empty(self) -> bool:
        return not self.planes

    @property
    def z_planes_mm(self) -> np.ndarray:
        return np.array([z for z, _ in self.planes])


@dataclass(frozen=True, eq=False)
class StructureSetFile:
    """An RTSTRUCT as read: its frame of reference and ROIs (in file order)."""

    path: str
    frame_of_reference_uid: str
    rois: Tuple[RoiContours, ...]
    patient_name: str
    patient_id: str

    def nominal_plane_spacing_mm(self) -> Optional[float]:
        """Most frequent gap between consecutive contour planes over all ROIs (mm), or None."""
        gaps: List[float] = []
        for r in self.rois:
            z = r.z_planes_mm
            if z.size > 1:
                gaps.extend(np.round(np.diff(z), 2).tolist())
        if not gaps:
            return None
        values, counts = np.unique(np.asarray(gaps), return_counts=True)
        return float(values[np.argmax(counts)])


def _contour_points(item: Any) -> np.ndarray:
    """ContourData as an (n, 3) float array, parsed from the raw bytes when possible (fast)."""
    raw = item.get_item(0x30060050)
    if raw is None:
        return np.zeros((0, 3))
    value = getattr(raw, "value", None)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).strip(b" \x00")
        flat = np.array(text.split(b"\\"), dtype=np.float64) if text else np.zeros(0)
    else:
        flat = np.asarray([float(v) for v in item.ContourData], dtype=np.float64)
    return flat


def _raw_text(item: Any, tag: int) -> Optional[str]:
    """A short text element (CS, IS) of ``item``, read from its raw bytes when it has not been
    converted yet (pydicom's conversion dominates the parse of large structure sets)."""
    elem = item.get_item(tag)
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "replace").strip(" \x00")
    return None if value is None else str(value).strip()


def _color(rc: Any) -> str:
    c = rc.get("ROIDisplayColor", None)
    try:
        r, g, b = (int(v) for v in c)
        return f"#FF{r:02X}{g:02X}{b:02X}"
    except (TypeError, ValueError):
        return "Yellow"


def _closed_contour_points(items: List[Any], kinds: List[str]) -> Tuple[List[Optional[np.ndarray]], np.ndarray]:
    """ContourData of each CLOSED_PLANAR item given as raw bytes, all converted in one call of
    :func:`parse_decimal_strings` (None for the other items, and for all when a value is not a
    number: :func:`_contour_points` then converts them one by one and fails where it did); and
    the array they are consecutive slices of."""
    out: List[Optional[np.ndarray]] = [None] * len(items)
    texts, where = [], []
    for k, (c, kind) in enumerate(zip(items, kinds)):
        raw = c.get_item(0x30060050) if kind == "CLOSED_PLANAR" else None
        value = getattr(raw, "value", None)
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).strip(b" \x00")
            if text:
                texts.append(text)
                where.append(k)
    if not texts:
        return out, np.zeros(0)
    try:
        flat = parse_decimal_strings(b"\\".join(texts))
    except Exception:  # noqa: BLE001 - a malformed value: the contour-by-contour road reports it
        return out, np.zeros(0)
    end = 0
    for k, text in zip(where, texts):
        start, end = end, end + text.count(b"\\") + 1
        out[k] = flat[start:end]
    return out, flat


#: A contour whose shoelace sum, in any order, gives at least this area (mm²) is not degenerate
#: (the sums' rounding is below 1e-4 mm² for 10 000 points within ±1 m); smaller ones are
#: checked with :func:`polygon_area_mm2` itself.
_SURE_AREA_MM2 = 1.0


def _planes_at_once(items: List[Any], kinds: List[str], points: List[Optional[np.ndarray]],
                    flat: np.ndarray) -> Optional[Tuple[Tuple[float, Tuple[np.ndarray, ...]], ...]]:
    """The planes :func:`_parse_contours` makes, its checks made on all contours of the ROI at once
    (the same planes, bit for bit); None when a contour is other than CLOSED_PLANAR or POINT or
    fails a check: the contour-by-contour loop then reports the first problem in file order."""
    closed = [k for k, kind in enumerate(kinds) if kind == "CLOSED_PLANAR"]
    if not closed or any(kind not in ("CLOSED_PLANAR", "POINT") for kind in kinds):
        return None
    if any(points[k] is None for k in closed):
        return None                                      # then ``flat`` holds exactly these, in order
    counts = []
    for k in closed:
        size = points[k].size
        n_text = _raw_text(items[k], 0x30060046)          # NumberOfContourPoints
        try:
            n_declared = int(n_text) if n_text else None
        except ValueError:
            return None
        if size % 3 or size < 9 or (n_declared is not None and n_declared * 3 != size):
            return None
        counts.append(size // 3)
    if not np.isfinite(flat).all():
        return None
    pts = flat.reshape(-1, 3)
    starts = np.zeros(len(counts), dtype=np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    z = pts[:, 2]
    if np.any(np.maximum.reduceat(z, starts) - np.minimum.reduceat(z, starts) > PLANAR_TOLERANCE_MM):
        return None
    x, y = pts[:, 0], pts[:, 1]
    succ = np.arange(1, pts.shape[0] + 1)
    succ[starts + np.asarray(counts) - 1] = starts
    twice = np.abs(np.add.reduceat(x * y.take(succ) - y * x.take(succ), starts))
    for j in np.flatnonzero(~(0.5 * twice >= _SURE_AREA_MM2)).tolist():       # small (or NaN)
        s = int(starts[j])
        if polygon_area_mm2(pts[s:s + counts[j], :2]) <= 1e-6:
            return None
    xy = np.ascontiguousarray(pts[:, :2])
    # each contour's mean z as np.mean makes it (its pairwise sum / n), rounded at once as np.round does
    add = np.add.reduce
    means = np.array([float(add(z[s:s + n])) / n for s, n in zip(starts.tolist(), counts)])
    by_z: Dict[float, List[np.ndarray]] = {}
    for s, n, zc in zip(starts.tolist(), counts, np.round(means, _Z_DECIMALS).tolist()):
        by_z.setdefault(zc, []).append(xy[s:s + n])
    return tuple((zc, tuple(by_z[zc])) for zc in sorted(by_z))


def _parse_contours(rc: Any, name: str, path: str) -> Tuple[Tuple[float, Tuple[np.ndarray, ...]], ...]:
    items = list(rc.get("ContourSequence", None) or [])
    kinds = [(_raw_text(c, 0x30060042) or "").upper() for c in items]     # ContourGeometricType
    points, flat = _closed_contour_points(items, kinds)
    planes = _planes_at_once(items, kinds, points, flat)
    if planes is not None:
        return planes
    by_z: Dict[float, List[np.ndarray]] = {}
    for k, (c, kind) in enumerate(zip(items, kinds)):
        if kind == "POINT":
            continue
        if kind != "CLOSED_PLANAR":
            raise DicomImportError(
                f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} is {kind or '(no type)'}; only CLOSED_PLANAR "
                "contours describe a volume. Close the contour in the planning system and export again")
        flat = points[k] if points[k] is not None else _contour_points(c)
        n_text = _raw_text(c, 0x30060046)                                # NumberOfContourPoints
        try:
            n_declared = int(n_text) if n_text else None
        except ValueError:
            raise DicomImportError(f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} has NumberOfContourPoints "
                                   f"{n_text!r}, not a number") from None
        if flat.size % 3 or (n_declared is not None and n_declared * 3 != flat.size):
            raise DicomImportError(
                f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} has {flat.size} coordinates for "
                f"{n_declared} points (the file may be truncated)")
        pts = flat.reshape(-1, 3)
        if not np.all(np.isfinite(pts)):
            raise DicomImportError(f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} has non-finite coordinates")
        z = pts[:, 2]
        zc = float(np.round(np.mean(z), _Z_DECIMALS)) if z.size else float("nan")
        if z.size and float(z.max() - z.min()) > PLANAR_TOLERANCE_MM:
            raise DicomImportError(
                f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} is not planar (z from {z.min():g} to "
                f"{z.max():g} mm); only axial CLOSED_PLANAR contours are supported")
        xy = pts[:, :2]
        area = polygon_area_mm2(xy) if xy.shape[0] >= 3 else 0.0
        if xy.shape[0] < 3 or area <= 1e-6:
            raise DicomImportError(
                f"RTSTRUCT {path!r}: ROI {name!r} contour {k + 1} at z = {zc:g} mm is degenerate "
                f"({xy.shape[0]} points, area {area:.3g} mm²): a closed contour needs 3 or more points "
                "enclosing an area")
        by_z.setdefault(zc, []).append(np.ascontiguousarray(xy))
    return tuple((z, tuple(by_z[z])) for z in sorted(by_z))


def read_rtstruct(path: Any) -> StructureSetFile:
    """Read an RTSTRUCT file.

    Raises
    ------
    constraints.errors.DicomImportError
        Not an RTSTRUCT, truncated, no frame of reference, ROIs on several frames
        of reference, open, non-planar or degenerate contours.
    """
    ds = read_dataset(path, "RTSTRUCT", "RTSTRUCT")
    p = str(path)
    rois_seq = ds.get("StructureSetROISequence", None) or []
    contours = {int(rc.ReferencedROINumber): rc for rc in (ds.get("ROIContourSequence", None) or [])
                if "ReferencedROINumber" in rc}
    types = {}
    for ob in ds.get("RTROIObservationsSequence", None) or []:
        if "ReferencedROINumber" in ob:
            types[int(ob.ReferencedROINumber)] = str(ob.get("RTROIInterpretedType", "") or "").upper()
    frames = set()
    out = []
    for item in rois_seq:
        number = int(item.ROINumber)
        name = str(item.get("ROIName", "") or f"ROI {number}").strip()
        rc = contours.get(number)
        planes = _parse_contours(rc, name, p) if rc is not None else ()
        if planes:
            uid = str(item.get("ReferencedFrameOfReferenceUID", "") or "")
            if uid:
                frames.add(uid)
        roi_type = ROI_TYPE_FROM_DICOM.get(types.get(number, ""), "Undefined")
        out.append(RoiContours(number, name, roi_type, _color(rc) if rc is not None else "Yellow", planes))
    if len(contours) > len(rois_seq):
        raise DicomImportError(f"RTSTRUCT {p!r}: ROIContourSequence has {len(contours)} items for "
                               f"{len(rois_seq)} ROIs in StructureSetROISequence")
    if not frames:
        for ref in ds.get("ReferencedFrameOfReferenceSequence", None) or []:
            if ref.get("FrameOfReferenceUID", None):
                frames.add(str(ref.FrameOfReferenceUID))
                break
    if len(frames) > 1:
        raise DicomImportError(f"RTSTRUCT {p!r}: its ROIs lie on {len(frames)} frames of reference "
                               f"{sorted(frames)}; expected one")
    if not frames:
        raise DicomImportError(f"RTSTRUCT {p!r}: no FrameOfReferenceUID (ReferencedFrameOfReferenceSequence "
                               "or ReferencedFrameOfReferenceUID) is given")
    names = [r.name for r in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DicomImportError(f"RTSTRUCT {p!r}: ROI names {dup} occur more than once; ROI names must be unique")
    return StructureSetFile(p, frames.pop(), tuple(out), str(ds.get("PatientName", "") or ""),
                            str(ds.get("PatientID", "") or ""))
