"""Reading RayStation objects: the current context, dose grids, doses and ROI coverages.

Units change here, once: cm → mm for geometry, cGy → Gy for dose, 0–255 → 0–1 for ROI
coverage (``GetRoiGeometryAsVoxels``).  Everything here only reads.  Runs on CPython 3.8
with numpy only.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from constraints.errors import InputError, TpsStateError
from constraints.grid import Grid

from .units import cgy_to_gy, cm_to_mm, mm_to_cm

__all__ = ["get_api", "TpsContext", "current_context", "dose_grid", "read_dose_gy", "roi_mask", "roi_coverage_on",
           "roi_bounding_box_mm", "array_digest"]


def get_api() -> Any:
    """The scripting module: ``raystation`` (RayStation 2025+) or ``connect`` (earlier)."""
    try:
        import raystation as api  # noqa: F401
    except ImportError:
        try:
            import connect as api  # noqa: F401
        except ImportError:
            raise TpsStateError("no RayStation scripting module: run this script from RayStation's script "
                                "console (or load a mock_tps phantom first)") from None
    return api


@dataclass(frozen=True)
class TpsContext:
    """The current objects of the planning system."""

    patient: Any
    case: Any
    plan: Any
    beam_set: Any
    examination: Any


def _current(api: Any, kind: str, hint: str) -> Any:
    try:
        return api.get_current(kind)
    except SystemError:
        raise TpsStateError(f"no {kind.lower()} is loaded: {hint}") from None


def current_context(api: Any) -> TpsContext:
    """Patient, case, plan, beam set and planning examination that are current.

    Raises
    ------
    constraints.errors.TpsStateError
        Nothing loaded, or no plan/beam set selected.
    """
    hint = "open the patient and the re-irradiation SBRT plan (with its beam set) before running the script"
    patient = _current(api, "Patient", hint)
    case = _current(api, "Case", hint)
    plan = _current(api, "Plan", hint)
    beam_set = _current(api, "BeamSet", hint)
    exam = beam_set.GetPlanningExamination()
    return TpsContext(patient, case, plan, beam_set, exam)


def dose_grid(dose_distribution: Any) -> Grid:
    """The dose grid of a dose distribution as a :class:`Grid` (cm → mm).

    ``InDoseGrid.Corner`` is the outer corner of the first voxel (research §3).
    """
    g = dose_distribution.InDoseGrid
    corner = (cm_to_mm(g.Corner.x), cm_to_mm(g.Corner.y), cm_to_mm(g.Corner.z))
    spacing = (cm_to_mm(g.VoxelSize.x), cm_to_mm(g.VoxelSize.y), cm_to_mm(g.VoxelSize.z))
    shape = (int(g.NrVoxels.z), int(g.NrVoxels.y), int(g.NrVoxels.x))
    return Grid(corner, spacing, shape)


def read_dose_gy(dose_distribution: Any, what: str, grid: Optional[Grid] = None, *,
                 allow_unknown: bool = False) -> np.ndarray:
    """``DoseValues.DoseData`` (cGy) as Gy, shaped (nz, ny, nx).

    With ``allow_unknown`` NaN is accepted and means "unknown" (a mapped prior dose
    outside its source grid); infinities and negative values are always refused.

    Raises
    ------
    constraints.errors.TpsStateError
        No dose computed (``DoseValues`` is None).
    constraints.errors.InputError
        Wrong size, NaN or negative values.
    """
    values = dose_distribution.DoseValues
    if values is None:
        raise TpsStateError(f"{what} has no dose: compute the dose first")
    grid = grid or dose_grid(dose_distribution)
    data = np.asarray(values.DoseData, dtype=np.float64)
    if data.size != grid.n_voxels:
        raise InputError(f"{what}: DoseData has {data.size} values, its dose grid {grid.shape_zyx} needs {grid.n_voxels}")
    data = data.reshape(grid.shape_zyx)
    finite = np.isfinite(data)
    bad = np.isinf(data) if allow_unknown else ~finite
    if bad.any():
        raise InputError(f"{what}: the dose contains {int(bad.sum())} non-finite value(s) (NaN/inf)")
    if np.nanmin(data) < 0 if finite.any() else False:
        raise InputError(f"{what}: the dose contains negative values (minimum {np.nanmin(data):g} cGy)")
    return cgy_to_gy(data)


def roi_mask(structure_set: Any, roi_name: str, dose_distribution: Any, grid: Grid) -> np.ndarray:
    """Fractional coverage (0–1) of an ROI on a dose grid, via ``GetRoiGeometryAsVoxels``
    (which returns 0–255 per voxel, x fastest)."""
    g = dose_distribution.InDoseGrid
    vox = structure_set.RoiGeometries[roi_name].GetRoiGeometryAsVoxels(
        Corner=g.Corner, VoxelSize=g.VoxelSize, NrVoxels=g.NrVoxels)
    return _coverage_of_voxels(vox, grid, f"ROI {roi_name!r}")


def roi_coverage_on(geometry: Any, grid: Grid, what: str, *, as_bytes: bool = False) -> np.ndarray:
    """Fractional coverage (0–1) of an ROI geometry on any grid (mm), via
    ``GetRoiGeometryAsVoxels`` (corner, voxel size in cm; 0–255 per voxel, x fastest).

    ``as_bytes``: the uint8 values as the planning system gives them (k means k / 255),
    shaped (nz, ny, nx), when it gives uint8 (RayStation and the mock do); floats otherwise.
    """
    nz, ny, nx = grid.shape_zyx
    vox = geometry.GetRoiGeometryAsVoxels(
        Corner={k: mm_to_cm(v) for k, v in zip("xyz", grid.corner_mm)},
        VoxelSize={k: mm_to_cm(v) for k, v in zip("xyz", grid.spacing_xyz_mm)},
        NrVoxels={"x": nx, "y": ny, "z": nz})
    if as_bytes:
        arr = np.asarray(vox)
        if arr.dtype == np.uint8:
            _check_voxel_count(arr, grid, what)
            return arr.reshape(grid.shape_zyx)
    return _coverage_of_voxels(vox, grid, what)


#: Coverage of each value of ``GetRoiGeometryAsVoxels`` (0–255 → 0–1): one table look-up per voxel.
_COVERAGE_OF_BYTE = np.arange(256, dtype=np.float64) / 255.0


def _coverage_of_voxels(vox: Any, grid: Grid, what: str) -> np.ndarray:
    """``GetRoiGeometryAsVoxels`` values (0–255, x fastest) as coverage in [0, 1], shaped (nz, ny, nx)."""
    arr = np.asarray(vox)
    _check_voxel_count(arr, grid, what)
    if arr.dtype == np.uint8:
        return _COVERAGE_OF_BYTE.take(arr.reshape(grid.shape_zyx))
    return np.clip(arr.astype(np.float64).reshape(grid.shape_zyx) / 255.0, 0.0, 1.0)


def _check_voxel_count(arr: np.ndarray, grid: Grid, what: str) -> None:
    if arr.size != grid.n_voxels:
        raise InputError(f"{what}: GetRoiGeometryAsVoxels gave {arr.size} values for {grid.n_voxels} voxels")


def roi_bounding_box_mm(geometry: Any) -> Tuple[Tuple[float, float, float], Tuple[float, float, float]]:
    """``GetBoundingBox()`` as ((x, y, z) min, (x, y, z) max) in mm."""
    lo, hi = geometry.GetBoundingBox()
    return ((cm_to_mm(lo.x), cm_to_mm(lo.y), cm_to_mm(lo.z)), (cm_to_mm(hi.x), cm_to_mm(hi.y), cm_to_mm(hi.z)))


def array_digest(values: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of an array's float64 bytes: identifies a dose in records."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]
