"""The sub-voxel DVH rule beside the dose-grid voxel rule in the assessment's verdict.

The assessment reads Dmax and D_V of every organ by two rules: the dose-grid voxel
rule (:mod:`constraints.dvh`, each dose voxel carries its centre dose) and the
sub-voxel rule of ``reirrad dvh`` (:mod:`constraints.dvh_subvoxel`: the ROI voxelized
on a refined grid, the dose interpolated and spread over each element).  In a steep
gradient they differ by up to the gradient × the grid step: on the 2.5 mm grid the
T4–T5 cord PRV Dmax is 10.81 Gy by the first and 11.62 Gy by the second.  A pass needs both (a verdict must not depend on which rule one reads).

The sub-voxel rule runs on the voxel map of the constraint's domain (physical dose,
or BED/EQD2 of the organ's α/β, cumulative or SBRT-only): that map is the "dose"
interpolated and spread.  Unknown (NaN) values of the map are taken as its highest
known value (conservative: never zero).

numpy only (CPython 3.8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .dvh_subvoxel import SubvoxelDvh, compute_subvoxel_dvh
from .errors import InputError
from .grid import Grid
from .structure import Structure
from .subvoxel_sampling import (DEFAULT_MAX_SUBVOXELS, DEFAULT_TARGET_MM, DoseField, subvoxel_elements,
                                subvoxel_factors)

__all__ = ["FineCoverage", "fine_box", "FieldCache", "subvoxel_dvh", "SUBVOXEL_METRIC_KINDS"]

#: Metric kinds read by both rules (Dmax and every D_V).
SUBVOXEL_METRIC_KINDS = ("max", "d_cc", "d_percent")


@dataclass(frozen=True, eq=False)
class FineCoverage:
    """An ROI's coverage on the refined box of dose voxels it touches.

    Attributes
    ----------
    coverage : ndarray, shape (nz·fz, ny·fy, nx·fx), in [0, 1]
    box_lo : (k0, j0, i0)
        First dose voxel of the box.
    factors : (fz, fy, fx)
        Refinement factors per axis.
    """

    coverage: np.ndarray
    box_lo: Tuple[int, int, int]
    factors: Tuple[int, int, int]

    @classmethod
    def on_dose_grid(cls, structure: Structure) -> "FineCoverage":
        """The structure's own dose-grid coverage (factors 1) over its bounding box."""
        lo, shape = _mask_box(structure.mask)
        sl = tuple(slice(a, a + n) for a, n in zip(lo, shape))
        return cls(np.asarray(structure.mask[sl], dtype=np.float32), lo, (1, 1, 1))


def _mask_box(mask: np.ndarray) -> Tuple[Tuple[int, int, int], Tuple[int, int, int]]:
    idx = np.nonzero(np.asarray(mask) > 0)
    if idx[0].size == 0:
        raise InputError("an empty structure has no box of dose voxels")
    lo = tuple(int(i.min()) for i in idx)
    hi = tuple(int(i.max()) + 1 for i in idx)
    return lo, tuple(b - a for a, b in zip(lo, hi))


def fine_box(mask: np.ndarray, grid: Grid, *, target_mm: float = DEFAULT_TARGET_MM,
             max_subvoxels: int = DEFAULT_MAX_SUBVOXELS) -> Tuple[Tuple[int, int, int], Tuple[int, int, int], Grid]:
    """The refined grid over the box of dose voxels a dose-grid mask touches.

    Returns
    -------
    box_lo : (k0, j0, i0)
    factors : (fz, fy, fx)
        From :func:`constraints.subvoxel_sampling.subvoxel_factors` (sub-voxels of
        ``target_mm``, coarser while the box would exceed ``max_subvoxels``).
    fine : Grid
        The refined grid (voxelize the ROI on it for :class:`FineCoverage`).
    """
    lo, shape = _mask_box(mask)
    fz, fy, fx = subvoxel_factors(shape, grid.spacing_xyz_mm, target_mm=target_mm, max_subvoxels=max_subvoxels)
    (cx, cy, cz), (dx, dy, dz) = grid.corner_mm, grid.spacing_xyz_mm
    k0, j0, i0 = lo
    fine = Grid((cx + i0 * dx, cy + j0 * dy, cz + k0 * dz), (dx / fx, dy / fy, dz / fz),
                (shape[0] * fz, shape[1] * fy, shape[2] * fx))
    return lo, (fz, fy, fx), fine


class FieldCache:
    """Prepared :class:`DoseField` per voxel map (keyed by the caller), NaN filled with the map's highest value."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self._fields: Dict[object, DoseField] = {}

    def get(self, key: object, values: Callable[[], np.ndarray]) -> DoseField:
        """The field of ``key``, made from ``values()`` (Gy or Gy BED) the first time."""
        if key not in self._fields:
            v = np.asarray(values(), dtype=np.float64)
            if np.isnan(v).any():
                known = v[np.isfinite(v)]
                v = np.where(np.isnan(v), float(known.max()) if known.size else 0.0, v)
            self._fields[key] = DoseField.from_grid(np.maximum(v, 0.0), self.grid.spacing_xyz_mm)
        return self._fields[key]


def subvoxel_dvh(name: str, field: DoseField, fine: FineCoverage) -> SubvoxelDvh:
    """Sub-voxel DVH of one ROI on one prepared voxel map (rules of :mod:`constraints.dvh_subvoxel`)."""
    d, h, w = subvoxel_elements(np.asarray(fine.coverage, dtype=np.float32), field, fine.box_lo, fine.factors)
    keep = w > 0
    return compute_subvoxel_dvh(name, d[keep], h[keep], w[keep], dose_max_gy=field.max_gy)


def subvoxel_value(metric, dvh: SubvoxelDvh) -> Optional[float]:
    """A Dmax or D_V metric on a sub-voxel DVH; None for the other kinds (mean, Dmin, V_D)."""
    if metric.kind not in SUBVOXEL_METRIC_KINDS:
        return None
    return float(metric.evaluate(dvh))
