"""The voxel grid every array of the neutral model lives on.

Coordinates are DICOM patient coordinates in mm.  Arrays are shaped ``(nz, ny, nx)``
with x varying fastest (RayStation's ``DoseData`` order); a flat index is
``ix + nx * (iy + ny * iz)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .errors import GridMismatchError, InputError

__all__ = ["Grid"]

#: Two grids are "equal" when corners and spacings agree to this many mm.
GRID_TOLERANCE_MM = 1e-4


@dataclass(frozen=True)
class Grid:
    """A regular axis-aligned voxel grid.

    Parameters
    ----------
    corner_mm : tuple of 3 float, (x, y, z), mm
        Outer corner of voxel (0, 0, 0): its centre minus half a voxel.  This is
        RayStation's ``InDoseGrid.Corner`` (given there in cm); a DICOM
        ``ImagePositionPatient`` (a voxel *centre*) converts with
        :meth:`from_first_centre`.
    spacing_xyz_mm : tuple of 3 float, (dx, dy, dz), mm
        Voxel size, each > 0, in x, y, z order (as ``corner_mm``).
    shape_zyx : tuple of 3 int, (nz, ny, nx)
        Voxel counts, each ≥ 1, in array order (z slowest); the names carry the
        axis order because the two differ.

    Examples
    --------
    >>> g = Grid((0.0, 0.0, 0.0), (2.5, 2.5, 2.0), (10, 20, 30))
    >>> round(g.voxel_volume_cc, 6)
    0.0125
    >>> g.origin_mm
    (1.25, 1.25, 1.0)
    """

    corner_mm: Tuple[float, float, float]
    spacing_xyz_mm: Tuple[float, float, float]
    shape_zyx: Tuple[int, int, int]

    def __post_init__(self) -> None:
        corner = _three(self.corner_mm, "corner_mm", float)
        spacing = _three(self.spacing_xyz_mm, "spacing_xyz_mm", float)
        shape = _three(self.shape_zyx, "shape_zyx", int)
        if not all(np.isfinite(corner)):
            raise InputError(f"Grid corner_mm must be finite, got {corner}")
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"Grid spacing_xyz_mm must be finite and > 0 mm, got {spacing}")
        if not all(n >= 1 for n in shape):
            raise InputError(f"Grid shape_zyx (nz, ny, nx) must be >= 1 in each axis, got {shape}")
        object.__setattr__(self, "corner_mm", corner)
        object.__setattr__(self, "spacing_xyz_mm", spacing)
        object.__setattr__(self, "shape_zyx", shape)

    @classmethod
    def from_first_centre(cls, first_centre_mm, spacing_xyz_mm, shape_zyx) -> "Grid":
        """Build a grid from the centre of voxel (0, 0, 0), as DICOM stores it."""
        c = _three(first_centre_mm, "first_centre_mm", float)
        s = _three(spacing_xyz_mm, "spacing_xyz_mm", float)
        return cls(tuple(ci - si / 2.0 for ci, si in zip(c, s)), s, shape_zyx)

    @property
    def origin_mm(self) -> Tuple[float, float, float]:
        """Centre of voxel (0, 0, 0), (x, y, z) in mm."""
        return tuple(c + s / 2.0 for c, s in zip(self.corner_mm, self.spacing_xyz_mm))

    @property
    def n_voxels(self) -> int:
        nz, ny, nx = self.shape_zyx
        return nz * ny * nx

    @property
    def voxel_volume_cc(self) -> float:
        """Volume of one voxel in cm³ (= spacing product in mm³ / 1000)."""
        dx, dy, dz = self.spacing_xyz_mm
        return dx * dy * dz / 1000.0

    def axes_mm(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along each axis, returned as ``(x, y, z)`` in mm."""
        nz, ny, nx = self.shape_zyx
        ox, oy, oz = self.origin_mm
        dx, dy, dz = self.spacing_xyz_mm
        return ox + dx * np.arange(nx), oy + dy * np.arange(ny), oz + dz * np.arange(nz)

    def centres_mm(self) -> np.ndarray:
        """All voxel centres, shape ``(nz, ny, nx, 3)``, last axis (x, y, z) in mm."""
        x, y, z = self.axes_mm()
        zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
        return np.stack([xx, yy, zz], axis=-1)

    def same_as(self, other: "Grid", tolerance_mm: float = GRID_TOLERANCE_MM) -> bool:
        """True when both grids have equal shapes, corners and spacings (within tolerance)."""
        return (
            self.shape_zyx == other.shape_zyx
            and np.allclose(self.corner_mm, other.corner_mm, rtol=0, atol=tolerance_mm)
            and np.allclose(self.spacing_xyz_mm, other.spacing_xyz_mm, rtol=0, atol=tolerance_mm)
        )

    def require_same(self, other: "Grid", what: str) -> None:
        """Raise :class:`GridMismatchError` naming ``what`` unless ``other`` equals this grid."""
        if not self.same_as(other):
            raise GridMismatchError(
                f"{what} is on a different grid: expected corner {self.corner_mm} mm, spacing "
                f"{self.spacing_xyz_mm} mm, shape {self.shape_zyx}; got corner {other.corner_mm} mm, spacing "
                f"{other.spacing_xyz_mm} mm, shape {other.shape_zyx}. Resample it onto the plan's dose grid first."
            )

    def require_array(self, array: np.ndarray, name: str) -> None:
        """Raise :class:`GridMismatchError` unless ``array.shape`` equals ``shape_zyx``."""
        if tuple(np.shape(array)) != self.shape_zyx:
            raise GridMismatchError(
                f"{name} has shape {tuple(np.shape(array))}, but its grid has shape (nz, ny, nx) = {self.shape_zyx}"
            )


def _three(value, name, kind):
    try:
        items = tuple(value)
    except TypeError:
        raise InputError(f"Grid {name} must be a sequence of 3 numbers, got {value!r}") from None
    if len(items) != 3:
        raise InputError(f"Grid {name} must have 3 entries, got {len(items)}: {items!r}")
    try:
        if kind is int:
            out = []
            for v in items:
                if isinstance(v, bool) or float(v) != int(v):
                    raise ValueError
                out.append(int(v))
            return tuple(out)
        return tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise InputError(f"Grid {name} must hold 3 {'integers' if kind is int else 'numbers'}, got {items!r}") from None
