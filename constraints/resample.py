"""Trilinear resampling between axis-aligned grids of one frame of reference (numpy only).

Used to bring a prior course's dose (an evaluation dose on the planning CT, possibly
on its own grid) onto the SBRT dose grid.  Points outside the source grid get NaN
("unknown"), never zero (DESIGN §5).  Between the outermost voxel centres and the
grid's outer faces (half a voxel) the value of the outermost centre is used.

Interpolation bound: trilinear interpolation returns a convex combination of the 8
surrounding voxel values, so the resampled maximum never exceeds the source maximum,
and it falls below it by at most the source's variation across one voxel:
``max(src) − max(resampled) ≤ max over neighbouring voxels |Δd|`` (the largest
difference between adjacent voxels, in any axis combination of the 8-voxel cell).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .grid import Grid

__all__ = ["resample_to_grid", "max_cell_variation"]


def _axis_weights(src_origin: float, src_step: float, n_src: int, src_corner: float,
                  dst_points: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis lower index, upper index, weight of the upper index, inside flag."""
    extent_hi = src_corner + n_src * src_step
    tol = 1e-6 * src_step
    inside = (dst_points >= src_corner - tol) & (dst_points <= extent_hi + tol)
    f = (dst_points - src_origin) / src_step
    f = np.clip(f, 0.0, n_src - 1.0)
    i0 = np.floor(f).astype(np.intp)
    i0 = np.minimum(i0, max(n_src - 2, 0))
    i1 = np.minimum(i0 + 1, n_src - 1)
    t = f - i0
    return i0, i1, t, inside


def resample_to_grid(values: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Trilinear resampling of ``values`` (on ``source``) onto ``target``.

    Parameters
    ----------
    values : ndarray, shape source.shape_zyx
    source, target : Grid
        Both axis-aligned in the same frame of reference (mm).

    Returns
    -------
    ndarray, shape target.shape_zyx, float64
        NaN where a target voxel centre lies outside the source grid.
    """
    source.require_array(values, "values")
    v = np.asarray(values, dtype=np.float64)
    if source.same_as(target):
        return v.copy()
    tx, ty, tz = target.axes_mm()
    sx0, sy0, sz0 = source.origin_mm
    (dx, dy, dz), (cx, cy, cz) = source.spacing_xyz_mm, source.corner_mm
    nz, ny, nx = source.shape_zyx
    x0, x1, wx, inx = _axis_weights(sx0, dx, nx, cx, tx)
    y0, y1, wy, iny = _axis_weights(sy0, dy, ny, cy, ty)
    z0, z1, wz, inz = _axis_weights(sz0, dz, nz, cz, tz)
    out = np.zeros(target.shape_zyx)
    for zi, zw in ((z0, 1 - wz), (z1, wz)):
        for yi, yw in ((y0, 1 - wy), (y1, wy)):
            for xi, xw in ((x0, 1 - wx), (x1, wx)):
                out += v[np.ix_(zi, yi, xi)] * (zw[:, None, None] * yw[None, :, None] * xw[None, None, :])
    inside = inz[:, None, None] & iny[None, :, None] & inx[None, None, :]
    out[~inside] = np.nan
    return out


def max_cell_variation(values: np.ndarray) -> float:
    """Largest absolute difference between any two voxels of one 2×2×2 cell of ``values``:
    the bound by which trilinear resampling can lower a maximum (see module notes)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return 0.0
    # pad every axis by one (edge copy): a singleton axis then contributes no variation
    # (padding it by 0 made the eight corner views differ in shape: a bare numpy ValueError)
    p = np.pad(v, [(0, 1)] * v.ndim, mode="edge")
    nz, ny, nx = v.shape
    corners = [p[a:a + nz, b:b + ny, c:c + nx] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    stack = np.stack(corners)
    return float(np.nanmax(stack.max(axis=0) - stack.min(axis=0)))
