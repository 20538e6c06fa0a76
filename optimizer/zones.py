"""Limit zones: per-voxel SBRT limits turned into what a TPS optimizer accepts.

A TPS takes a maximum-dose function per ROI, not a per-voxel bound.  An organ is cut
into *zones* (bands of the prior dose, where the limit changes little), and each zone
gets one MaxDose level: the **lowest exact limit among the zone's voxels, minus a
margin**.  Whatever the zones' shapes, a dose that meets every zone level meets every
voxel's own limit, so zone-quantized limits are never looser than the exact ones
(property-tested).

With one prior course the limit is a decreasing function of that course's dose, so
zones are thresholds of the prior dose (``CreateRoiGeometryFromDose`` on the mapped
prior dose, intersected with the organ).  With several courses the summed physical
dose is used as the banding variable; the zone levels still come from the exact
per-voxel limits, so safety does not depend on how well the bands follow the limit.

Volume limits on cumulative dose (``D1cc < 167 Gy3``) are made conservative the same
way — every voxel below its own 167-limit — except in an optional *hot region* of
volume below the metric's volume (voxels nearest the target), where the next looser
limit (``D0.035cc < 187``) applies instead: at most that volume then exceeds the
stricter limit, which is exactly the volume constraint.

Numpy only (runs inside RayStation, CPython 3.8).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from constraints._validate import nonnegative_number, positive_number
from constraints.errors import InputError, NotEvaluableError
from constraints.grid import Grid
from constraints.morphology import dilate_mm

__all__ = ["band_thresholds", "zone_level_gy", "excess_gy", "hot_region_margin_mm", "ZONE_PREFIX"]

#: Every object reirrad creates in the patient carries this prefix (DESIGN §5).
ZONE_PREFIX = "rr_"


def band_thresholds(threshold_gy: np.ndarray, limit_gy: np.ndarray, coverage: np.ndarray, *,
                    band_width_gy: float = 1.0, max_bands: int = 6) -> Tuple[float, ...]:
    """Cut values of the banding dose so that each band's limits span about ``band_width_gy``.

    Parameters
    ----------
    threshold_gy : ndarray, Gy
        The banding variable per voxel (the prior dose, or the summed prior dose).
    limit_gy : ndarray, Gy
        Exact per-voxel SBRT limits of the organ.
    coverage : ndarray in [0, 1]
        The organ's fractional mask; voxels with coverage 0 are ignored.
    band_width_gy : float
        Target spread of the limits within one band.
    max_bands : int
        At most this many bands (the width grows when more would be needed).

    Returns
    -------
    tuple of float, increasing
        Thresholds t_1 < t_2 < ...; band 0 is ``threshold < t_1``, band k is
        ``t_k ≤ threshold < t_{k+1}``, the last band ``≥ t_last``.  Empty when one
        band suffices.

    Examples
    --------
    >>> t = np.array([0., 10, 20, 30, 40, 50, 60])
    >>> band_thresholds(t, 22 - t / 10, np.ones(7), band_width_gy=2.0)
    (20.0, 40.0)
    """
    width = positive_number(band_width_gy, "band_width_gy", "Gy")
    if isinstance(max_bands, bool) or not isinstance(max_bands, int) or max_bands < 1:
        raise InputError(f"max_bands must be an integer >= 1, got {max_bands!r}")
    inside = np.asarray(coverage) > 0
    if not inside.any():
        raise NotEvaluableError("band_thresholds: the organ has no voxel on this grid")
    t = np.asarray(threshold_gy, dtype=np.float64)[inside]
    lim = np.asarray(limit_gy, dtype=np.float64)[inside]
    spread = float(lim.max() - lim.min())
    if spread <= width:
        return ()
    n_bands = min(max_bands, int(np.ceil(spread / width)))
    width = spread / n_bands
    # level index by limit, 0 = loosest; cut at the lowest banding value reaching each level
    level = np.minimum(((lim.max() - lim) / width).astype(int), n_bands - 1)
    cuts = []
    for k in range(1, n_bands):
        sel = t[level >= k]
        if sel.size:
            cuts.append(float(sel.min()))
    return tuple(sorted(set(c for c in cuts if c > t.min())))


def zone_level_gy(limit_gy: np.ndarray, zone_coverage: np.ndarray, margin_gy: float) -> float:
    """MaxDose level of a zone: lowest exact limit among its voxels minus ``margin_gy`` (≥ 0).

    Raises
    ------
    constraints.errors.NotEvaluableError
        The zone has no voxel on the grid.
    """
    margin = nonnegative_number(margin_gy, "margin_gy", "Gy")
    inside = np.asarray(zone_coverage) > 0
    if not inside.any():
        raise NotEvaluableError("zone_level_gy: the zone has no voxel on this grid")
    return max(float(np.asarray(limit_gy)[inside].min()) - margin, 0.0)


def excess_gy(dose_gy: np.ndarray, limit_gy: np.ndarray, coverage: np.ndarray) -> float:
    """Largest ``dose − limit`` over the voxels of a region (negative = slack), Gy."""
    inside = np.asarray(coverage) > 0
    if not inside.any():
        raise NotEvaluableError("excess_gy: the region has no voxel on this grid")
    return float((np.asarray(dose_gy) - np.asarray(limit_gy))[inside].max())


def hot_region_margin_mm(organ: np.ndarray, target: np.ndarray, grid: Grid, budget_cc: float,
                         candidates_mm: Sequence[float] = (10.0, 7.0, 5.0, 3.0, 2.0)) -> Optional[float]:
    """The largest expansion of the target whose overlap with the organ stays within ``budget_cc``.

    The hot region is ``organ ∩ (target + margin)``: the organ voxels nearest the
    target, where a volume constraint may be exempted from its strict per-voxel limit.

    Returns
    -------
    float or None
        The margin in mm, or None when even the smallest candidate exceeds the budget
        or the overlap is empty.
    """
    budget = positive_number(budget_cc, "budget_cc", "cc")
    organ_m = np.asarray(organ) > 0
    tgt = np.asarray(target) >= 0.5
    for margin in sorted(candidates_mm, reverse=True):
        region = organ_m & dilate_mm(tgt, grid, margin)
        vol = float(np.asarray(organ)[region].sum()) * grid.voxel_volume_cc
        if 0 < vol <= budget:
            return float(margin)
    return None
