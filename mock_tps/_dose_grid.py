"""Dose-grid geometry for the dose engine: validation of grids and cubes, the dose box.

A dose grid is a :class:`~mock_tps._phantom_data.GridSpec` of whole voxels; the engine
computes dose only on it, so a box of a few centimetres around the target (not the whole
CT) sets the matrix's row count.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from constraints.errors import InputError
from mock_tps._phantom_data import GridSpec

__all__ = ["check_grid", "check_cube", "grid_tuple", "grid_bounds_mm", "dose_box_grid"]


def check_grid(grid: Any, name: str) -> GridSpec:
    """``grid`` if it is a GridSpec with positive spacing and shape and a finite corner.

    Raises
    ------
    InputError
        Naming ``name`` and the bad field.
    """
    if not isinstance(grid, GridSpec):
        raise InputError(f"{name} must be a GridSpec, got {type(grid).__name__}")
    sp_mm = np.asarray(grid.spacing_xyz_mm, dtype=float)
    if sp_mm.shape != (3,) or not np.all(np.isfinite(sp_mm)) or np.any(sp_mm <= 0):
        raise InputError(f"{name}.spacing_xyz_mm must be three positive mm values, got {grid.spacing_xyz_mm}")
    if len(grid.shape_zyx) != 3 or any(int(n) < 1 for n in grid.shape_zyx):
        raise InputError(f"{name}.shape_zyx must be three positive ints (nz, ny, nx), got {grid.shape_zyx}")
    if len(grid.corner_mm) != 3 or not np.all(np.isfinite(grid.corner_mm)):
        raise InputError(f"{name}.corner_mm must be three finite mm values, got {grid.corner_mm}")
    return grid


def check_cube(arr: Any, grid: GridSpec, name: str) -> np.ndarray:
    """``arr`` as an array of ``grid``'s shape with finite values.

    Raises
    ------
    InputError
        Wrong shape or a non-finite value.
    """
    a = np.asarray(arr)
    if a.shape != tuple(grid.shape_zyx):
        raise InputError(f"{name} has shape {a.shape}, expected the CT grid shape {tuple(grid.shape_zyx)}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains non-finite values")
    return a


def grid_tuple(g: GridSpec) -> list:
    """``[corner_mm, spacing_xyz_mm, shape_zyx]`` as plain lists (for a cache key)."""
    return [list(map(float, g.corner_mm)), list(map(float, g.spacing_xyz_mm)), list(map(int, g.shape_zyx))]


def grid_bounds_mm(g: GridSpec) -> Tuple[np.ndarray, np.ndarray]:
    """Outer corners ``(lo, hi)`` of ``g``, (x, y, z) mm."""
    lo = np.asarray(g.corner_mm, dtype=float)
    return lo, lo + np.asarray(g.spacing_xyz_mm, dtype=float) * np.asarray(g.shape_zyx[::-1])


def dose_box_grid(
    ct_grid: GridSpec,
    mask: np.ndarray,
    spacing_mm: float,
    margin_mm: Tuple[float, float, float] = (30.0, 30.0, 20.0),
) -> GridSpec:
    """A dose grid that boxes ``mask`` plus a margin, clipped to the CT extent.

    Parameters
    ----------
    ct_grid : GridSpec
        Grid of ``mask``.
    mask : ndarray, shape ``ct_grid.shape_zyx``
        Region to cover (any voxel with value > 0 counts).
    spacing_mm : float
        Isotropic dose voxel size, mm.
    margin_mm : tuple of float, (x, y, z), mm
        Margin added on each side of the mask's bounding box.

    Returns
    -------
    GridSpec
        Dose grid of whole voxels covering the box (rounded outward) and lying
        inside the CT volume.
    """
    check_grid(ct_grid, "ct_grid")
    if not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise InputError(f"spacing_mm must be a positive number of mm, got {spacing_mm!r}")
    m = check_cube(mask, ct_grid, "mask") > 0
    if not m.any():
        raise InputError("mask is empty: nothing to box a dose grid around")
    xs, ys, zs = ct_grid.centres_mm()
    iz, iy, ix = np.nonzero(m)
    half = np.asarray(ct_grid.spacing_xyz_mm) / 2.0
    lo = np.array([xs[ix.min()], ys[iy.min()], zs[iz.min()]]) - half - np.asarray(margin_mm)
    hi = np.array([xs[ix.max()], ys[iy.max()], zs[iz.max()]]) + half + np.asarray(margin_mm)
    ct_lo, ct_hi = grid_bounds_mm(ct_grid)
    lo = np.maximum(lo, ct_lo)
    hi = np.minimum(hi, ct_hi)
    # whole voxels covering [lo, hi], centred on it, then kept inside the CT
    n = np.maximum(np.ceil((hi - lo) / spacing_mm - 1e-9).astype(int), 1)
    corner = lo - (n * spacing_mm - (hi - lo)) / 2.0
    corner = np.maximum(corner, ct_lo)
    n = np.minimum(n, np.floor((ct_hi - corner) / spacing_mm + 1e-9).astype(int))
    if np.any(n < 1):
        raise InputError(f"spacing_mm={spacing_mm!r} is larger than the CT volume")
    return GridSpec(
        corner_mm=tuple(float(c) for c in corner),
        spacing_xyz_mm=(float(spacing_mm),) * 3,
        shape_zyx=(int(n[2]), int(n[1]), int(n[0])),
    )
