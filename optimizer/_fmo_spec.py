"""The data of one FMO problem: regions, per-voxel bounds, volume caps (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

import numpy as np

from constraints.errors import InputError

__all__ = ["Region", "MaxBound", "VolumeCap", "FmoSpec"]


@dataclass(frozen=True, eq=False)
class Region:
    """Voxels of one structure on the dose grid.

    Attributes
    ----------
    name : str
    rows : ndarray of int, shape (n,)
        Flattened (z, y, x) dose-grid indices of voxels with coverage > 0.
    coverage : ndarray, shape (n,), in (0, 1]
    """

    name: str
    rows: np.ndarray
    coverage: np.ndarray


@dataclass(frozen=True, eq=False)
class MaxBound:
    """Hard per-voxel bound on the total SBRT dose of a region (Gy), per row of the region."""

    label: str
    region: str
    limit_gy: np.ndarray
    source_ids: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class VolumeCap:
    """Volume limit: voxels with ``d_v > limit_gy[v]`` must cover less than ``volume_cc``."""

    label: str
    region: str
    limit_gy: np.ndarray
    volume_cc: float
    source_ids: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class FmoSpec:
    """The data of one FMO problem.

    Attributes
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets)
        Gy **per fraction** per unit beamlet weight (dose-grid rows, flattened z, y, x).
    fractions : int
        Total dose = ``fractions · influence_gy @ weights``.
    voxel_volume_cc : float, cm³
    regions : mapping name → Region
    target : str
        Region of the coverage objective (PTVeval).
    prescription_gy : float, Gy total (24 Gy)
    target_max_gy : float or None, Gy total
        Hard bound on every target voxel (the D0.035cc hot-spot goal as a max).
    max_bounds, volume_caps : tuples of MaxBound, VolumeCap
    falloff : MaxBound or None
        Soft per-voxel limit of the fall-off ring (penalized, not enforced).
    """

    influence_gy: Any
    fractions: int
    voxel_volume_cc: float
    regions: Mapping[str, Region]
    target: str
    prescription_gy: float
    target_max_gy: Optional[float] = None
    max_bounds: Tuple[MaxBound, ...] = ()
    volume_caps: Tuple[VolumeCap, ...] = ()
    falloff: Optional[MaxBound] = None

    def __post_init__(self) -> None:
        n_vox = self.influence_gy.shape[0]
        if self.target not in self.regions:
            raise InputError(f"FmoSpec target {self.target!r} is not a region; regions: {sorted(self.regions)}")
        for item in self.max_bounds + self.volume_caps + ((self.falloff,) if self.falloff else ()):
            if item.region not in self.regions:
                raise InputError(f"{item.label!r} names region {item.region!r}; regions: {sorted(self.regions)}")
            if np.shape(item.limit_gy) != np.shape(self.regions[item.region].rows):
                raise InputError(f"{item.label!r}: limit_gy must have one value per region voxel")
        for r in self.regions.values():
            if r.rows.size == 0 or r.rows.max() >= n_vox or r.rows.min() < 0:
                raise InputError(f"region {r.name!r}: rows must be non-empty indices below {n_vox}")
            cov = np.asarray(r.coverage)
            if cov.shape != r.rows.shape or not ((cov > 0) & (cov <= 1)).all():
                raise InputError(f"region {r.name!r}: coverage must have one value in (0, 1] per row "
                                 f"(shape {cov.shape} for {r.rows.size} rows, min {cov.min(initial=np.inf)})")
