"""A structure (ROI) of the neutral model: a fractional mask on a grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .grid import Grid

__all__ = ["Structure", "STRUCTURE_KINDS"]

#: Kinds a structure can have; the adapter maps RayStation's OrganType onto them.
STRUCTURE_KINDS = ("target", "oar", "external", "other")


@dataclass(frozen=True, eq=False)
class Structure:
    """A region of interest as fractional voxel coverage.

    Parameters
    ----------
    name : str
        Name as in the planning system (e.g. ``"SpinalCord_PRV"``).
    kind : {'target', 'oar', 'external', 'other'}
    mask : ndarray, shape (nz, ny, nx), values in [0, 1]
        Fraction of each voxel inside the structure.  Partial voxels are weighted
        exactly by this fraction in every DVH metric.
    grid : Grid

    Notes
    -----
    The mask is copied to a read-only float64 array at construction, so a
    ``Structure`` never changes after it is made.
    """

    name: str
    kind: str
    mask: np.ndarray
    grid: Grid

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"Structure name must be a non-empty string, got {self.name!r}")
        if self.kind not in STRUCTURE_KINDS:
            raise InputError(f"Structure {self.name!r}: kind must be one of {STRUCTURE_KINDS}, got {self.kind!r}")
        if not isinstance(self.grid, Grid):
            raise InputError(f"Structure {self.name!r}: grid must be a constraints.Grid, got {type(self.grid).__name__}")
        try:
            mask = np.array(self.mask, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"Structure {self.name!r}: mask must be numeric") from None
        self.grid.require_array(mask, f"Structure {self.name!r} mask")
        if not np.isfinite(mask).all():
            raise InputError(f"Structure {self.name!r}: mask contains non-finite values")
        if mask.size and (mask.min() < 0.0 or mask.max() > 1.0):
            raise InputError(
                f"Structure {self.name!r}: mask values must be fractions in [0, 1], "
                f"got range [{mask.min():g}, {mask.max():g}]"
            )
        mask.setflags(write=False)
        object.__setattr__(self, "mask", mask)

    @property
    def volume_cc(self) -> float:
        """Σ coverage × voxel volume, cm³."""
        return float(self.mask.sum()) * self.grid.voxel_volume_cc

    @property
    def is_empty(self) -> bool:
        return not bool(np.any(self.mask > 0))
