"""A tiny synthetic PhantomData for the object-model tests (hand-checkable geometry).

CT grid: 2 mm voxels, corner (−40, −40, −30) mm, shape (nz, ny, nx) = (30, 40, 40).
Dose grid: 4 mm voxels, same corner, shape (15, 20, 20).
ROIs (mm, DICOM patient coordinates):

- ``External``: cylinder r = 38 along z.
- ``PTVeval``: box x ∈ [−12, 12], y ∈ [−6, 14], z ∈ [−10, 10] (24 × 20 × 20 mm = 9.6 cc).
- ``SpinalCord_PRV``: cylinder r = 6.5 centred (0, 22).
- ``Esophagus``: cylinder r = 6 centred (0, −20).
- ``Cube3cm``: box [−15, 15]³ (not voxel-aligned; 27 cc).
- ``Cube2cm``: box [−10, 10]³ (voxel-aligned; 8 cc).

Prior course "Prior EBRT 10Gy/5fx": uniform 10 Gy on the dose grid.
Influence: Gaussian beamlets (σ 6 mm) on a 8 mm lattice inside the body, plus
sparse random non-negative noise; about 0.5 Gy per fraction per unit weight at
the centre of a beamlet.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import scipy.sparse

from mock_tps._phantom_data import BeamSpec, GridSpec, PhantomData, PriorCourseSpec, RoiSpec

CT_GRID = GridSpec(corner_mm=(-40.0, -40.0, -30.0), spacing_xyz_mm=(2.0, 2.0, 2.0), shape_zyx=(30, 40, 40))
DOSE_GRID = GridSpec(corner_mm=(-40.0, -40.0, -30.0), spacing_xyz_mm=(4.0, 4.0, 4.0), shape_zyx=(15, 20, 20))


def _interval_overlap(corner: float, step: float, n: int, lo: float, hi: float) -> np.ndarray:
    a = corner + step * np.arange(n)
    return np.clip(np.minimum(a + step, hi) - np.maximum(a, lo), 0, None) / step


def box_mask(grid: GridSpec, lo: Tuple[float, float, float], hi: Tuple[float, float, float]) -> np.ndarray:
    """Exact fractional coverage of an axis-aligned box (mm)."""
    nz, ny, nx = grid.shape_zyx
    fx = _interval_overlap(grid.corner_mm[0], grid.spacing_xyz_mm[0], nx, lo[0], hi[0])
    fy = _interval_overlap(grid.corner_mm[1], grid.spacing_xyz_mm[1], ny, lo[1], hi[1])
    fz = _interval_overlap(grid.corner_mm[2], grid.spacing_xyz_mm[2], nz, lo[2], hi[2])
    return (fz[:, None, None] * fy[None, :, None] * fx[None, None, :]).astype(np.float32)


def cylinder_mask(grid: GridSpec, cx: float, cy: float, r: float, sub: int = 4) -> np.ndarray:
    """Fractional coverage (in-plane supersampling) of an infinite cylinder along z."""
    nz, ny, nx = grid.shape_zyx
    off = (np.arange(sub) + 0.5) / sub
    x = grid.corner_mm[0] + (np.arange(nx)[:, None] + off[None, :]).ravel() * grid.spacing_xyz_mm[0]
    y = grid.corner_mm[1] + (np.arange(ny)[:, None] + off[None, :]).ravel() * grid.spacing_xyz_mm[1]
    inside = ((x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2) <= r * r
    frac = inside.reshape(ny, sub, nx, sub).mean(axis=(1, 3))
    return np.broadcast_to(frac, (nz, ny, nx)).astype(np.float32).copy()


def _influence(seed: int = 0) -> Tuple[scipy.sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y, z = DOSE_GRID.centres_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    lat = np.arange(-32.0, 33.0, 8.0)
    cz = np.arange(-24.0, 25.0, 8.0)
    centres = np.array([(a, b, c) for c in cz for b in lat for a in lat if a * a + b * b <= 34.0 ** 2])
    d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    dense = 0.5 * np.exp(-d2 / (2 * 6.0 ** 2))
    dense[dense < 1e-3] = 0.0
    noise = scipy.sparse.random(pts.shape[0], centres.shape[0], density=0.01, random_state=rng) * 0.01
    m = (scipy.sparse.csr_matrix(dense) + noise).tocsr()
    return m, np.arange(centres.shape[0]) % 3


@functools.lru_cache(maxsize=1)
def make_phantom_data() -> PhantomData:
    """The synthetic phantom described in the module docstring (cached: it is immutable)."""
    g = CT_GRID
    big = 1e3
    rois = (
        RoiSpec("External", "External", "Other", cylinder_mask(g, 0, 0, 38.0), "Green"),
        RoiSpec("PTVeval", "Ptv", "Target", box_mask(g, (-12, -6, -10), (12, 14, 10)), "Red"),
        RoiSpec("SpinalCord_PRV", "Avoidance", "OrganAtRisk", cylinder_mask(g, 0, 22, 6.5), "Yellow"),
        RoiSpec("Esophagus", "Organ", "OrganAtRisk", cylinder_mask(g, 0, -20, 6.0), "Brown"),
        RoiSpec("Cube3cm", "Control", "Other", box_mask(g, (-15, -15, -15), (15, 15, 15)), "Blue"),
        RoiSpec("Cube2cm", "Control", "Other", box_mask(g, (-10, -10, -10), (10, 10, 10)), "Blue"),
    )
    hu = np.where(rois[0].mask > 0.5, 0.0, -1000.0)
    hu[box_mask(g, (-12, -6, -big), (12, 14, big)) > 0.5] = 700.0
    influence, beam_index = _influence()
    prior = PriorCourseSpec("Prior EBRT 10Gy/5fx", np.full(DOSE_GRID.shape_zyx, 10.0), DOSE_GRID, 5, "2023-01-01")
    beams = tuple(BeamSpec(f"B{i + 1}", gantry_deg=g_deg, couch_deg=0.0, collimator_deg=0.0,
                           isocenter_mm=(0.0, 4.0, 0.0)) for i, g_deg in enumerate((150.0, 180.0, 210.0)))
    return PhantomData(name="synthetic", params={}, ct_grid=g, ct_hu=hu, rois=rois, dose_grid=DOSE_GRID,
                       beams=beams, influence_gy=influence, beamlet_beam_index=beam_index,
                       prior_courses=(prior,))
