"""Numpy-only binary morphology on anisotropic grids (runs inside RayStation, no scipy).

Used to derive protocol structures such as "External − (PTV + 5 mm)".
"""
from __future__ import annotations

import numpy as np

from ._validate import nonnegative_number
from .grid import Grid

__all__ = ["dilate_mm"]


def dilate_mm(mask: np.ndarray, grid: Grid, margin_mm: float) -> np.ndarray:
    """Dilate a boolean mask by a sphere of radius ``margin_mm`` (anisotropic voxels).

    Every voxel whose centre lies within ``margin_mm`` of a centre of a voxel in
    ``mask`` is set.  Implemented as a union of shifted copies over the ellipsoidal
    structuring element's offsets (a loop over offsets, not voxels).

    Parameters
    ----------
    mask : ndarray of bool, shape grid.shape
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
    dx, dy, dz = grid.spacing_mm
    rx, ry, rz = (int(np.floor(margin / s + 1e-9)) for s in (dx, dy, dz))
    out = src.copy()
    nz, ny, nx = src.shape
    for kz in range(-rz, rz + 1):
        for ky in range(-ry, ry + 1):
            for kx in range(-rx, rx + 1):
                if (kx * dx) ** 2 + (ky * dy) ** 2 + (kz * dz) ** 2 > margin ** 2 + 1e-9 or (kx, ky, kz) == (0, 0, 0):
                    continue
                out[max(kz, 0):nz + min(kz, 0), max(ky, 0):ny + min(ky, 0), max(kx, 0):nx + min(kx, 0)] |= \
                    src[max(-kz, 0):nz + min(-kz, 0), max(-ky, 0):ny + min(-ky, 0), max(-kx, 0):nx + min(-kx, 0)]
    return out
