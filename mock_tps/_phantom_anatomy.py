"""A phantom's CT and ROIs, without dose: :func:`build_anatomy`.

The analytic solids of a region (:mod:`mock_tps._phantom_regions`) become fractional
masks on the CT grid (:mod:`mock_tps._phantom_masks`); PTV = CTV + 2 mm and PTVeval =
PTV − SpinalCord_PRV.  These masks make the CT numbers, the dose grid and the beamlets.
The ROIs the mock TPS holds are contours, as in RayStation: each solid's cross-section at
every CT slice centre, contoured, voxelized by the RTSTRUCT rule
(:mod:`mock_tps._dicom_voxelize`), so an exported RTSTRUCT re-imports to the same
coverage.  Measured ROI volume against the analytic masks: within ±1.5 % at 2 mm
(T4–T5, C7–T1); at 4 mm up to −6 % for the 2.4 cc GTV and −4 % for the lung apices,
whose cross-sections change within a slice.

HU: air −1000, soft tissue 30, fat-free organs 40, lung −800, bone 700, disc 80.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict

import numpy as np

from constraints.errors import InputError
from mock_tps._contours import Planes
from mock_tps._dicom_voxelize import voxelize_planes
from mock_tps._phantom_data import GridSpec
from mock_tps._phantom_masks import (CONTOUR_SAMPLE_MM, dilated_fractions, fractional_mask, push_out_of_stadium,
                                     shape_planes, subsample_for)
from mock_tps._phantom_regions import REGIONS, Shapes, SpineRegion

__all__ = ["Anatomy", "build_anatomy", "PTV_MARGIN_MM", "PTVEVAL_PRV_CLEARANCE_MM", "check_number", "check_int"]

#: PTV = CTV + this margin, mm.
PTV_MARGIN_MM = 2.0
#: Gap between the PTVeval and cord PRV contours, mm: the PRV's contour lies within half a
#: contour sample of its analytic surface, so PTVeval's contours keep that much + 0.025 mm away.
PTVEVAL_PRV_CLEARANCE_MM = 0.5 * CONTOUR_SAMPLE_MM + 0.025

HU_AIR, HU_SOFT, HU_ORGAN, HU_LUNG, HU_BONE, HU_DISC = -1000.0, 30.0, 40.0, -800.0, 700.0, 80.0


def check_number(name: str, value: Any, lo: float, hi: float) -> float:
    """``value`` as a finite float in [lo, hi]; :class:`InputError` naming ``name`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi] (not a bool); :class:`InputError` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return int(value)


def _ct_grid(a: SpineRegion, grid_mm: float) -> GridSpec:
    """The CT grid: the body ellipse + 6 mm in x and y, the region's length in z."""
    nx = int(math.ceil(2 * (a.body_ax + 6.0) / grid_mm))
    ny = int(math.ceil(2 * (a.body_ay + 6.0) / grid_mm))
    nz = int(math.ceil(2 * a.z_half / grid_mm))
    # a CT grid is not aligned with the anatomy: an odd sub-voxel shift avoids
    # sub-points falling exactly on analytic surfaces (biased volumes)
    shift = np.array([0.137, 0.291, 0.073]) * grid_mm
    return GridSpec(
        corner_mm=(
            -nx * grid_mm / 2.0 + float(shift[0]),
            -ny * grid_mm / 2.0 + float(shift[1]),
            -nz * grid_mm / 2.0 + float(shift[2]),
        ),
        spacing_xyz_mm=(grid_mm, grid_mm, grid_mm),
        shape_zyx=(nz, ny, nx),
    )


def _paint(hu: np.ndarray, frac: np.ndarray, value: float) -> None:
    """Partial-volume paint: hu ← hu·(1 − f) + value·f (in place)."""
    hu *= 1.0 - frac
    hu += value * frac



@dataclass(frozen=True)
class Anatomy:
    """CT and fractional ROI masks of a phantom, without any dose.

    Attributes
    ----------
    name : str
    ct_grid : GridSpec
    ct_hu : ndarray, shape ``ct_grid.shape_zyx``, float32, HU
    masks : dict of str to ndarray (float32 in [0, 1], shape ``ct_grid.shape_zyx``)
        Analytic coverages (they make the CT numbers, dose grid and beamlets).
    shapes : Shapes
        The analytic solids (:class:`mock_tps._phantom_regions.Shapes`).
    planes : dict of str to Planes
        Each ROI's contours on the CT slices (:func:`shape_planes`); the mock TPS's
        ROI coverage is voxelized from these (:func:`roi_coverage`).
    """

    name: str
    ct_grid: GridSpec
    ct_hu: np.ndarray
    masks: Dict[str, np.ndarray]
    shapes: Shapes
    planes: Dict[str, Planes] = field(default_factory=dict)

    def roi_coverage(self, name: str) -> np.ndarray:
        """Coverage of ROI ``name`` voxelized from its contours (the RTSTRUCT rule)."""
        return voxelize_planes(self.planes[name], self.ct_grid, nominal_spacing_mm=self.ct_grid.spacing_xyz_mm[2])


def build_anatomy(name: str, *, grid_mm: float = 2.0, esophagus_gap_mm: float = 0.0, seed: int = 0) -> Anatomy:
    """CT numbers and ROI masks of phantom ``name`` (no dose engine; fast).

    Parameters
    ----------
    name : str
        A key of :data:`mock_tps._phantom_regions.REGIONS` (the phantom names).
    grid_mm : float, default 2.0
        Isotropic CT voxel size, mm, in [1, 4].
    esophagus_gap_mm : float, default 0.0
        Gap between esophagus and vertebral-body surfaces, mm, in [0, 20].
    seed : int, default 0
        Seed of the CT noise (Gaussian, sigma 5 HU, inside the body).

    Returns
    -------
    Anatomy
    """
    if name not in REGIONS:
        raise InputError(f"unknown phantom name {name!r}; expected one of {sorted(REGIONS)}")
    grid_mm = check_number("grid_mm", grid_mm, 1.0, 4.0)
    esophagus_gap_mm = check_number("esophagus_gap_mm", esophagus_gap_mm, 0.0, 20.0)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    a = REGIONS[name]
    ss = subsample_for(grid_mm)
    shp = Shapes(a, esophagus_gap_mm)
    ct_grid = _ct_grid(a, grid_mm)

    # --- masks on the CT grid
    fm = lambda s: fractional_mask(ct_grid, s, ss)  # noqa: E731
    analytic = {"Body": shp.body, "Vertebra": shp.vertebra, "SpinalCord": shp.cord, "SpinalCord_PRV": shp.prv,
                "Esophagus": shp.esophagus, "Trachea": shp.trachea, "Lungs": shp.lungs, "Aorta": shp.aorta,
                "GTV": shp.gtv, "CTV": shp.ctv}
    masks: Dict[str, np.ndarray] = {}
    planes: Dict[str, Planes] = {}
    for roi, shape in analytic.items():
        if shape is not None:
            masks[roi] = fm(shape)
            planes[roi] = shape_planes(ct_grid, shape)
    masks["PTV"], masks["PTVeval"], planes["PTV"], planes["PTVeval"] = dilated_fractions(
        ct_grid, shp.ctv, PTV_MARGIN_MM, shp.prv, ss)
    # PTVeval = PTV − PRV: its contours keep clear of the PRV's, which lie within half a
    # contour sample of the analytic PRV (measured <= 0.166 mm at 1-4 mm grids)
    planes["PTVeval"] = push_out_of_stadium(planes["PTVeval"], *shp.prv_segment,
                                            shp.prv_radius_mm + PTVEVAL_PRV_CLEARANCE_MM)

    # --- CT numbers (partial-volume painting, back to front)
    hu = np.full(ct_grid.shape_zyx, HU_AIR, dtype=np.float32)
    _paint(hu, masks["Body"], HU_SOFT)
    if "Lungs" in masks:
        _paint(hu, masks["Lungs"], HU_LUNG)
    _paint(hu, fm(shp.discs), HU_DISC)
    _paint(hu, fm(shp.bone), HU_BONE)
    _paint(hu, fm(shp.canal), HU_SOFT)
    _paint(hu, masks["Esophagus"], HU_ORGAN)
    if "Aorta" in masks:
        _paint(hu, masks["Aorta"], HU_ORGAN)
    if shp.trachea is not None:
        _paint(hu, masks["Trachea"], HU_ORGAN)
        _paint(hu, fm(shp.trachea_lumen), HU_AIR)
    rng = np.random.default_rng(seed)
    hu += (rng.standard_normal(hu.shape).astype(np.float32) * 5.0) * masks["Body"]
    hu = np.round(hu).astype(np.float32)

    return Anatomy(name, ct_grid, hu, masks, shp, planes)

