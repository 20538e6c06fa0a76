"""RTDOSE, RTPLAN and spatial registration (REG) reading for the mock's DICOM import.

Offline-only module (pydicom through :mod:`mock_tps._dicom_files`, scipy inside
:func:`resample_dose_rigid`).

RTDOSE conventions
------------------
- Dose (Gy) = stored value × ``DoseGridScaling`` (required: a file without it is
  refused, never read as scale 1).  ``DoseUnits`` must be ``GY``; ``RELATIVE``
  (percent of an unknown reference) is refused.
- ``DoseSummationType``: ``PLAN``, ``MULTI_PLAN`` and ``BEAM`` are whole-course
  doses; ``FRACTION``, ``FRACTION_SESSION`` and ``BEAM_SESSION`` are read as the
  dose of **one fraction**, multiplied by the course's fraction count (from the
  RTPLAN or the caller).  (DICOM's own definition of FRACTION is "one fraction
  group"; exporters differ, and reirrad follows the per-fraction reading because
  it is the one that can only err towards a larger, i.e. conservative, total.)
  Other values are refused.
- ``DoseType``: a course's dose (the plan's, a prior's) must be ``PHYSICAL``
  (:func:`require_physical`): reirrad weights each course by its own fractionation,
  so an ``EFFECTIVE`` (BED/EQD2) map would be weighted twice, an ``ERROR`` map is an
  uncertainty, not a dose, and without the attribute (Type 1) neither can be ruled out.
- ``GridFrameOffsetVector``: relative to the first frame when its first value is
  0 (frame z = IPP z + offset × slice normal), else absolute z (mm).  Frames are
  sorted to increasing z and must be equally spaced.
- Orientation: see :mod:`mock_tps._dicom_files` (axial only, flips handled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from constraints.errors import DicomImportError

from ._dicom_files import axial_orientation, in_plane_geometry, orient_frames, read_dataset, require
from ._phantom_data import GridSpec

__all__ = ["DoseFile", "PlanFile", "read_rtdose", "read_rtplan", "read_registration", "rigid_matrix",
           "resample_dose_rigid", "require_physical", "PER_FRACTION_TYPES", "WHOLE_COURSE_TYPES"]

PER_FRACTION_TYPES = ("FRACTION", "FRACTION_SESSION", "BEAM_SESSION")
WHOLE_COURSE_TYPES = ("PLAN", "MULTI_PLAN", "BEAM")
_SPACING_RTOL = 1e-3


@dataclass(frozen=True, eq=False)
class DoseFile:
    """An RTDOSE as read.

    Attributes
    ----------
    path : str
    grid : GridSpec
    dose_gy : ndarray, shape grid.shape_zyx, Gy
        The stored dose × DoseGridScaling (per fraction when ``per_fraction``).
    per_fraction : bool
        DoseSummationType says one fraction (see module doc).
    summation_type, dose_type : str
    frame_of_reference_uid : str
    scaling_gy : float
        DoseGridScaling: the quantization step of the stored dose, Gy.
    referenced_plan_uid : str or None
    """

    path: str
    grid: GridSpec
    dose_gy: np.ndarray
    per_fraction: bool
    summation_type: str
    dose_type: str
    frame_of_reference_uid: str
    scaling_gy: float
    referenced_plan_uid: Optional[str]
    series_description: str = ""


@dataclass(frozen=True)
class PlanFile:
    """What the import takes from an RTPLAN: fraction count and prescription."""

    path: str
    fractions: int
    prescription_gy: Optional[float]
    label: str
    sop_instance_uid: str
    frame_of_reference_uid: str


def _frame_z(ds: Any, n_frames: int, ipp_z: float, normal_z: float, path: str) -> np.ndarray:
    offsets = ds.get("GridFrameOffsetVector", None)
    if n_frames == 1 and offsets is None:
        return np.array([ipp_z])
    if offsets is None:
        raise DicomImportError(f"RTDOSE {path!r}: GridFrameOffsetVector is missing for {n_frames} frames")
    off = np.asarray([float(v) for v in offsets], dtype=np.float64)
    if off.size != n_frames:
        raise DicomImportError(f"RTDOSE {path!r}: GridFrameOffsetVector has {off.size} values for {n_frames} frames")
    if abs(off[0]) < 1e-6:
        return ipp_z + off * normal_z          # relative to the first frame
    if abs(off[0] - ipp_z) > 1e-3:
        raise DicomImportError(
            f"RTDOSE {path!r}: GridFrameOffsetVector starts at {off[0]:g}, neither 0 (relative offsets) nor the "
            f"first frame's z {ipp_z:g} mm (absolute z)")
    return off                                   # absolute z


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array (NaN when one value is NaN), without its import of ``numpy.ma``."""
    s = np.sort(values)
    n = s.size
    if n == 0 or np.isnan(s[-1]):
        return float("nan")
    return float(s[n // 2]) if n % 2 else float((s[n // 2 - 1] + s[n // 2]) / 2.0)


def _uniform_step(z_sorted: np.ndarray, path: str, what: str) -> float:
    if z_sorted.size == 1:
        return 0.0
    steps = np.diff(z_sorted)
    step = _median(steps)
    if step <= 0 or np.max(np.abs(steps - step)) > _SPACING_RTOL * step + 1e-4:
        bad = int(np.argmax(np.abs(steps - step)))
        raise DicomImportError(
            f"{what} {path!r}: slices are not equally spaced (step {step:g} mm, but {steps[bad]:g} mm between "
            f"z = {z_sorted[bad]:g} and {z_sorted[bad + 1]:g} mm): missing or duplicate slices")
    return step


def read_rtdose(path: Any, what: str = "RTDOSE") -> DoseFile:
    """Read an RTDOSE file (conventions in the module doc).

    Raises
    ------
    constraints.errors.DicomImportError
        Not an RTDOSE, truncated, DoseUnits not GY, DoseGridScaling missing,
        unsupported DoseSummationType, non-axial orientation, unequal frame spacing,
        negative or non-finite dose.
    """
    ds = read_dataset(path, what, "RTDOSE")
    p = str(path)
    units = str(ds.get("DoseUnits", "") or "").upper()
    if units == "RELATIVE":
        raise DicomImportError(f"{what} {p!r}: DoseUnits RELATIVE (percent of an unknown reference dose) cannot "
                               "be imported; export the dose in absolute units (GY)")
    if units != "GY":
        raise DicomImportError(f"{what} {p!r}: DoseUnits {units or '(missing)'!r}; expected 'GY'")
    if ds.get("DoseGridScaling", None) in (None, ""):
        raise DicomImportError(f"{what} {p!r}: DoseGridScaling is missing, so the stored values have no known "
                               "dose scale; export the dose again from the planning system")
    scaling = float(ds.DoseGridScaling)
    if not np.isfinite(scaling) or scaling <= 0:
        raise DicomImportError(f"{what} {p!r}: DoseGridScaling {scaling!r} must be a positive number")
    summation = str(ds.get("DoseSummationType", "") or "").upper()
    if summation not in PER_FRACTION_TYPES + WHOLE_COURSE_TYPES:
        raise DicomImportError(f"{what} {p!r}: DoseSummationType {summation or '(missing)'!r} is not supported; "
                               f"expected one of {WHOLE_COURSE_TYPES + PER_FRACTION_TYPES}")
    orient = axial_orientation(require(ds, "ImageOrientationPatient", p, what), p, what)
    x0, y0, dx, dy = in_plane_geometry(ds, orient, p, what)
    rows, cols = int(ds.Rows), int(ds.Columns)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        stored = ds.pixel_array
        pixels = np.asarray(stored, dtype=np.float64)
    except Exception as exc:  # pydicom raises many types for bad pixel data
        raise DicomImportError(f"{what} {p!r}: the pixel data cannot be decoded ({type(exc).__name__}: {exc})") from None
    pixels = pixels.reshape(n_frames, rows, cols)
    ipp_z = float(ds.ImagePositionPatient[2])
    z = _frame_z(ds, n_frames, ipp_z, orient.normal_z, p)
    order = np.argsort(z, kind="stable")
    z = z[order]
    dz = _uniform_step(z, p, what)
    if dz == 0.0:
        dz = float(ds.get("SliceThickness", 0) or 0) or min(dx, dy)
    if np.any(order != np.arange(n_frames)):
        pixels = pixels[order]
    dose = orient_frames(pixels, orient)
    if not np.may_share_memory(dose, stored):
        dose *= scaling                          # a copy of the stored values: scaled in place
    else:
        dose = dose * scaling
    if not np.all(np.isfinite(dose)) or dose.min() < 0:
        raise DicomImportError(f"{what} {p!r}: the dose contains negative or non-finite values")
    grid = GridSpec(corner_mm=(x0 - dx / 2, y0 - dy / 2, float(z[0]) - dz / 2), spacing_xyz_mm=(dx, dy, dz),
                    shape_zyx=(n_frames, rows, cols))
    frame = str(ds.get("FrameOfReferenceUID", "") or "")
    if not frame:
        raise DicomImportError(f"{what} {p!r}: FrameOfReferenceUID is missing")
    ref_plan = None
    for item in ds.get("ReferencedRTPlanSequence", None) or []:
        ref_plan = str(item.get("ReferencedSOPInstanceUID", "") or "") or None
        break
    return DoseFile(p, grid, dose, summation in PER_FRACTION_TYPES, summation,
                    str(ds.get("DoseType", "") or ""), frame, scaling, ref_plan,
                    str(ds.get("SeriesDescription", "") or ""))


def read_rtplan(path: Any) -> PlanFile:
    """Fraction count (first fraction group) and prescription (Gy) from an RTPLAN.

    The prescription is the largest ``TargetPrescriptionDose`` of the
    ``DoseReferenceSequence`` (None when no item has one).

    Raises
    ------
    constraints.errors.DicomImportError
        Not an RTPLAN, or no ``NumberOfFractionsPlanned``.
    """
    ds = read_dataset(path, "RTPLAN", "RTPLAN")
    p = str(path)
    groups = ds.get("FractionGroupSequence", None) or []
    fractions = None
    for g in groups:
        if g.get("NumberOfFractionsPlanned", None) not in (None, ""):
            fractions = int(g.NumberOfFractionsPlanned)
            break
    if fractions is None or fractions < 1:
        raise DicomImportError(f"RTPLAN {p!r}: no FractionGroupSequence with NumberOfFractionsPlanned >= 1")
    rx = [float(item.TargetPrescriptionDose) for item in ds.get("DoseReferenceSequence", None) or []
          if item.get("TargetPrescriptionDose", None) not in (None, "")]
    return PlanFile(p, fractions, max(rx) if rx else None, str(ds.get("RTPlanLabel", "") or ""),
                    str(ds.get("SOPInstanceUID", "") or ""), str(ds.get("FrameOfReferenceUID", "") or ""))


def rigid_matrix(matrix: Any, what: str) -> np.ndarray:
    """A 4×4 homogeneous matrix as float64, checked to be rigid (rotation + translation).

    Raises
    ------
    constraints.errors.DicomImportError
        Not 4×4, non-finite, last row not (0, 0, 0, 1), or the 3×3 part not a rotation
        (orthonormal with determinant +1 within 1e-4).
    """
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise DicomImportError(f"{what}: expected a 4x4 matrix of numbers, got {matrix!r}") from None
    if m.size == 16:
        m = m.reshape(4, 4)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise DicomImportError(f"{what}: expected a finite 4x4 matrix, got shape {m.shape}")
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise DicomImportError(f"{what}: last row {m[3].tolist()} must be (0, 0, 0, 1)")
    r = m[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or abs(np.linalg.det(r) - 1) > 1e-4:
        raise DicomImportError(f"{what}: the 3x3 part is not a rotation (only rigid registrations are supported)")
    return m


def read_registration(path: Any, from_frame_uid: str, to_frame_uid: str) -> np.ndarray:
    """The rigid 4×4 matrix mapping ``from_frame_uid`` coordinates to ``to_frame_uid`` coordinates.

    A REG object holds, per frame of reference, a matrix that maps that frame's
    coordinates into the registration's own (reference) frame; the answer is
    ``inv(M_to) @ M_from`` (a frame that is the REG's own frame has the identity).

    Raises
    ------
    constraints.errors.DicomImportError
        Not a REG, or it does not relate the two frames, or a matrix is not rigid.
    """
    ds = read_dataset(path, "registration", "REG")
    p = str(path)
    own = str(ds.get("FrameOfReferenceUID", "") or "")
    mats = {own: np.eye(4)} if own else {}
    for item in ds.get("RegistrationSequence", None) or []:
        uid = str(item.get("FrameOfReferenceUID", "") or "")
        for mr in item.get("MatrixRegistrationSequence", None) or []:
            for ms in mr.get("MatrixSequence", None) or []:
                kind = str(ms.get("FrameOfReferenceTransformationMatrixType", "RIGID") or "RIGID").upper()
                if kind not in ("RIGID",):
                    raise DicomImportError(f"registration {p!r}: matrix type {kind!r} for frame {uid}; only RIGID "
                                           "registrations are supported")
                m = rigid_matrix([float(v) for v in ms.FrameOfReferenceTransformationMatrix],
                                 f"registration {p!r} (frame {uid})")
                mats[uid] = mats.get(uid, np.eye(4)) @ m if uid != own else m
    missing = [u for u in (from_frame_uid, to_frame_uid) if u not in mats]
    if missing:
        raise DicomImportError(f"registration {p!r} does not relate frame(s) {missing}; it holds {sorted(mats)}")
    return np.linalg.inv(mats[to_frame_uid]) @ mats[from_frame_uid]


def resample_dose_rigid(dose_gy: np.ndarray, src: GridSpec, dst: GridSpec,
                        prior_to_planning: np.ndarray) -> np.ndarray:
    """Trilinear resampling of a dose through a rigid transform; NaN outside the source grid.

    Parameters
    ----------
    dose_gy : ndarray, shape src.shape_zyx, Gy
    src : GridSpec
        Grid of ``dose_gy`` in its own (prior) frame, mm.
    dst : GridSpec
        Planning dose grid, mm.
    prior_to_planning : ndarray (4, 4)
        Maps prior-frame coordinates (mm, column vectors) to planning-frame ones.

    Returns
    -------
    ndarray, shape dst.shape_zyx, Gy; NaN where the point falls outside the source grid's
    voxel centres (by more than 1e-6 voxel), i.e. where the prior dose is unknown.
    """
    from scipy.ndimage import map_coordinates

    inv = np.linalg.inv(prior_to_planning)
    x, y, z = dst.centres_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel(), np.ones(xx.size)])
    q = inv @ pts
    idx = []
    inside = np.ones(xx.size, dtype=bool)
    for k, ax in ((2, 0), (1, 1), (0, 2)):   # z, y, x rows of idx
        f = (q[k] - (src.corner_mm[k] + 0.5 * src.spacing_xyz_mm[k])) / src.spacing_xyz_mm[k]
        n = src.shape_zyx[ax]
        inside &= (f >= -1e-6) & (f <= n - 1 + 1e-6)
        idx.append(np.clip(f, 0, n - 1))
    out = map_coordinates(np.asarray(dose_gy, dtype=np.float64), np.array(idx), order=1, mode="nearest")
    out[~inside] = np.nan
    return out.reshape(dst.shape_zyx)


def require_physical(dose: DoseFile, what: str) -> None:
    """Refuse an RTDOSE whose ``DoseType`` is not ``PHYSICAL`` (rule in the module doc).

    Raises
    ------
    constraints.errors.DicomImportError
        DoseType EFFECTIVE, ERROR, another value, or missing; the message names the file.
    """
    kind = dose.dose_type.strip().upper()
    if kind == "PHYSICAL":
        return
    if kind == "EFFECTIVE":
        why = ("is a biologically weighted dose (e.g. BED or EQD2); reirrad converts each course's physical "
               "dose with that course's own fractionation, so a weighted map would be weighted twice")
    elif kind == "ERROR":
        why = "is a dose-uncertainty map, not a dose"
    elif not kind:
        why = ("is missing (a required attribute), so the file may hold a biologically weighted dose or an "
               "uncertainty map")
    else:
        why = "is not a DICOM DoseType (PHYSICAL, EFFECTIVE or ERROR)"
    raise DicomImportError(f"{what} {dose.path!r}: DoseType {kind or '(missing)'!r} {why}; export the course's "
                           "physical dose (DoseType PHYSICAL) from the planning system")


def dose_total_gy(dose: DoseFile, fractions: Optional[int], what: str) -> Tuple[np.ndarray, str]:
    """Whole-course dose (Gy) of an RTDOSE, and a note on how it was obtained.

    Raises
    ------
    constraints.errors.DicomImportError
        A per-fraction dose and no fraction count.
    """
    if not dose.per_fraction:
        return dose.dose_gy, f"DoseSummationType {dose.summation_type}: whole-course dose"
    if fractions is None:
        raise DicomImportError(
            f"{what} {dose.path!r} has DoseSummationType {dose.summation_type} (dose of one fraction) and the "
            "fraction count is unknown: give the RTPLAN or the number of fractions")
    return dose.dose_gy * int(fractions), (f"DoseSummationType {dose.summation_type}: per-fraction dose "
                                          f"× {int(fractions)} fractions")
