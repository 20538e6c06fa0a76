"""Numpy-only binary morphology on anisotropic grids (runs inside RayStation, no scipy).

Used to derive protocol structures such as "External − (PTV + 5 mm)".
"""
from __future__ import annotations

import numpy as np

from ._validate import nonnegative_number
from .grid import Grid

__all__ = ["dilate_mm", "max_over_sphere", "sphere_offsets"]


def dilate_mm(mask: np.ndarray, grid: Grid, margin_mm: float, *, from_voxel_boxes: bool = False) -> np.ndarray:
    """Dilate a boolean mask by a sphere of radius ``margin_mm`` (anisotropic voxels).

    Every voxel whose centre lies within ``margin_mm`` of a centre of a voxel in
    ``mask`` is set; with ``from_voxel_boxes`` within ``margin_mm`` of *any point* of
    a mask voxel's box (use it when a mask voxel only says "the structure is
    somewhere in here": the result then holds every voxel whose centre may lie within
    the margin of the structure).  Implemented as a union of shifted copies over the
    structuring element's offsets (a loop over offsets, not voxels).

    Parameters
    ----------
    mask : ndarray of bool, shape grid.shape_zyx
    grid : Grid
    margin_mm : float, mm, ≥ 0

    Returns
    -------
    ndarray of bool
    """
    margin = nonnegative_number(margin_mm, "margin_mm", "mm")
    grid.require_array(mask, "mask")
    src = np.asarray(mask, dtype=bool)
    if margin == 0 or not src.any():
        return src.copy()
    dx, dy, dz = grid.spacing_xyz_mm
    extra = 0.5 if from_voxel_boxes else 0.0
    rx, ry, rz = (int(np.floor(margin / s + extra + 1e-9)) for s in (dx, dy, dz))
    out = src.copy()
    nz, ny, nx = src.shape
    for kz in range(-rz, rz + 1):
        for ky in range(-ry, ry + 1):
            for kx in range(-rx, rx + 1):
                if (kx, ky, kz) == (0, 0, 0) or _offset_mm(kx, dx, from_voxel_boxes) ** 2 + \
                        _offset_mm(ky, dy, from_voxel_boxes) ** 2 + _offset_mm(kz, dz, from_voxel_boxes) ** 2 \
                        > margin ** 2 + 1e-9:
                    continue
                out[max(kz, 0):nz + min(kz, 0), max(ky, 0):ny + min(ky, 0), max(kx, 0):nx + min(kx, 0)] |= \
                    src[max(-kz, 0):nz + min(-kz, 0), max(-ky, 0):ny + min(-ky, 0), max(-kx, 0):nx + min(-kx, 0)]
    return out


def _offset_mm(k: int, step_mm: float, from_boxes: bool) -> float:
    """Distance along one axis from a voxel centre to the centre (or nearest face) of a voxel k steps away."""
    if not from_boxes:
        return k * step_mm
    return max(abs(k) - 0.5, 0.0) * step_mm


def sphere_offsets(grid: Grid, radius_mm: float) -> np.ndarray:
    """Voxel offsets (kz, ky, kx) whose centre-to-centre distance is ≤ ``radius_mm`` (anisotropic grid).

    Returns an (m, 3) int array, the origin included.
    """
    r = nonnegative_number(radius_mm, "radius_mm", "mm")
    dx, dy, dz = grid.spacing_xyz_mm
    rx, ry, rz = (int(np.floor(r / s + 1e-9)) for s in (dx, dy, dz))
    kz, ky, kx = np.meshgrid(np.arange(-rz, rz + 1), np.arange(-ry, ry + 1), np.arange(-rx, rx + 1), indexing="ij")
    inside = (kx * dx) ** 2 + (ky * dy) ** 2 + (kz * dz) ** 2 <= r * r + 1e-9
    return np.stack([kz[inside], ky[inside], kx[inside]], axis=1)


def max_over_sphere(values: np.ndarray, grid: Grid, radius_mm: float) -> np.ndarray:
    """Grey dilation: each voxel's value replaced by the maximum over the voxels whose
    centres lie within ``radius_mm`` of its centre (a sphere on the anisotropic grid).

    The result bounds the value a voxel can take when the map is shifted rigidly by up
    to ``radius_mm`` (to the grid's resolution: a shift between voxel centres is
    bounded by the interpolation of bounded neighbours).  NaN (unknown) is ignored
    where a known value is in reach (``fmax``) and stays NaN where none is; edges use
    only the voxels inside the grid.  One vectorized maximum per offset.

    Parameters
    ----------
    values : ndarray, shape grid.shape_zyx
    grid : Grid
    radius_mm : float, mm, ≥ 0

    Returns
    -------
    ndarray, float64, shape grid.shape_zyx
    """
    grid.require_array(values, "values")
    src = np.asarray(values, dtype=np.float64)
    out = src.copy()
    nz, ny, nx = src.shape
    for kz, ky, kx in sphere_offsets(grid, radius_mm):
        if kz == 0 and ky == 0 and kx == 0:
            continue
        dst = out[max(kz, 0):nz + min(kz, 0), max(ky, 0):ny + min(ky, 0), max(kx, 0):nx + min(kx, 0)]
        np.fmax(dst, src[max(-kz, 0):nz + min(-kz, 0), max(-ky, 0):ny + min(-ky, 0), max(-kx, 0):nx + min(-kx, 0)],
                out=dst)
    return out
