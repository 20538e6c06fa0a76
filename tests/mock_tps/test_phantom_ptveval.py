"""PTVeval = PTV − SpinalCord_PRV on the ROIs the mock TPS holds: the two never share volume.

The TPS's ROIs are contour stacks voxelized by the RTSTRUCT rule; the geometry check of the
assessment reads them on 0.5 mm sub-voxels and reports their sure overlap Σ max(0, a + b − 1).
Disjoint contours give a + b <= 1 on any grid (both are area fractions of the same sample
lines), so the sure overlap is exactly zero.
"""
from __future__ import annotations

import numpy as np
import pytest

from constraints.geometry_checks import overlap_cc
from mock_tps._dicom_voxelize import voxelize_planes
from mock_tps._phantom_anatomy import PTVEVAL_PRV_CLEARANCE_MM, build_anatomy
from mock_tps._phantom_data import GridSpec
from mock_tps._phantom_masks import push_out_of_stadium
from mock_tps._phantom_regions import PRV_MARGIN_MM, REGIONS

NAMES = tuple(REGIONS)


def _stadium_distance_mm(xy: np.ndarray, name: str) -> np.ndarray:
    """Signed distance (mm, > 0 outside) of points to the analytic cord PRV of phantom ``name``."""
    a = REGIONS[name]
    half = a.cord_ax - a.cord_ay
    x, y = xy[:, 0], xy[:, 1] - a.canal_y
    return np.hypot(x - np.clip(x, -half, half), y) - (a.cord_ay + PRV_MARGIN_MM)


def _edge_points(c: np.ndarray, step_mm: float = 0.02) -> np.ndarray:
    """The closed contour ``c`` sampled every ``step_mm`` along its edges (vertices included)."""
    nxt = np.roll(c, -1, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(*(nxt - c).T) / step_mm)).astype(int)
    s = np.concatenate([np.arange(k) / k for k in n])
    i = np.repeat(np.arange(len(c)), n)
    return c[i] + s[:, None] * (nxt[i] - c[i])


def _check(name: str, grid_mm: float) -> None:
    anat = build_anatomy(name, grid_mm=grid_mm)
    g = anat.ct_grid
    # 1. every point of every PTVeval contour edge keeps the clearance from the analytic PRV
    pts = np.concatenate([_edge_points(np.asarray(c)) for _, cs in anat.planes["PTVeval"] for c in cs])
    assert float(_stadium_distance_mm(pts, name).min()) >= PTVEVAL_PRV_CLEARANCE_MM - 1e-3
    # 2. the voxelized ROIs on 0.25 mm sub-voxels over the PRV's box: a + b <= 1, sure overlap 0
    a = REGIONS[name]
    r = a.cord_ay + PRV_MARGIN_MM
    x0, y0, h = -(a.cord_ax - a.cord_ay) - r - 2.0, a.canal_y - r - 2.0, 0.25
    n_xy = int(np.ceil(2 * (r + 2.0) / h))
    fine = GridSpec((x0, y0, g.corner_mm[2]), (h, h, g.spacing_xyz_mm[2]),
                    (g.shape_zyx[0], n_xy, n_xy + int(np.ceil(2 * (a.cord_ax - a.cord_ay) / h))))
    dz = g.spacing_xyz_mm[2]
    ptv = voxelize_planes(anat.planes["PTVeval"], fine, nominal_spacing_mm=dz).astype(np.float64)
    prv = voxelize_planes(anat.planes["SpinalCord_PRV"], fine, nominal_spacing_mm=dz).astype(np.float64)
    assert prv.sum() > 0 and ptv.sum() > 0               # the box holds the PRV and the PTVeval beside it
    assert float((ptv + prv).max()) <= 1.0 + 1e-6
    assert overlap_cc(ptv, prv, h * h * dz / 1000.0)[0] == 0.0
    # 3. the same on the CT grid, as the TPS stores the two ROIs
    both = anat.roi_coverage("PTVeval").astype(np.float64) + anat.roi_coverage("SpinalCord_PRV")
    assert float(both.max()) <= 1.0 + 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_ptveval_and_cord_prv_are_disjoint_coarse(name):
    _check(name, 4.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ptveval_and_cord_prv_are_disjoint_default_size(name):
    _check(name, 2.0)


def test_push_out_of_stadium_by_hand():
    # a line y = 0.5 across a unit circle (a stadium of zero length): its points within |x| < √0.75 = 0.866
    # move radially onto the circle, e.g. (0, 0.5) -> (0, 1); the rest stays where it was
    c = np.array([[-2.0, 0.5], [2.0, 0.5], [2.0, 3.0], [-2.0, 3.0]])
    (z, (out,)), = push_out_of_stadium(((0.0, (c,)),), (0.0, 0.0), (0.0, 0.0), 1.0, max_edge_mm=0.01)
    r = np.hypot(out[:, 0], out[:, 1])
    assert z == 0.0 and r.min() >= 1.0 - 1e-12
    assert np.any(np.all(np.isclose(out, [0.0, 1.0]), axis=1))          # the edge's midpoint, moved
    for v in c:                                                          # the vertices, unmoved
        assert np.any(np.all(out == v, axis=1))
    moved = np.isclose(r, 1.0)
    assert np.all(np.abs(out[moved, 0]) <= np.sqrt(0.75) + 0.01)
    # a contour that keeps clear of the stadium comes back unchanged
    far = np.array([[5.0, 5.0], [6.0, 5.0], [6.0, 6.0]])
    assert push_out_of_stadium(((1.0, (far,)),), (0.0, 0.0), (1.0, 0.0), 1.0)[0][1][0] is far
