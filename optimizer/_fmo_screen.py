"""Screening (row generation) and CVaR evaluation of FMO solutions (private; numpy only).

A constraint voxel enters the problem when it is screened in at the start or when
the full-matrix dose of a solution — or, with ``SCHUR_IPM``, of a round's iterate halfway
(:attr:`optimizer.fmo.FmoOptions.screen_check_gap`) — violates its constraint; with it enter the voxels
within a band below their limits (they would be the next violators).

References
----------
.. [1] Rockafellar RT, Uryasev S. Optimization of conditional value-at-risk.
   J Risk 2000;2(3):21-41.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

__all__ = ["weighted_cvar", "initial_active", "add_violators"]


def weighted_cvar(s: np.ndarray, volume_weight_cc: np.ndarray, volume_cc: float) -> float:
    """CVaR of ``s`` over the hottest ``volume_cc`` (exact for weighted voxels), same unit as ``s``.

    ``CVaR = min_ζ ζ + (1/V) Σ w_v [s_v − ζ]₊`` (Rockafellar & Uryasev 2000); the
    minimum is at ζ = the value where the sorted cumulative volume reaches ``V``.
    """
    order = np.argsort(-s)
    ss, ww = s[order], volume_weight_cc[order]
    cum = np.cumsum(ww)
    j = min(int(np.searchsorted(cum, volume_cc - 1e-12)), ss.size - 1)
    zeta = ss[j]
    return float(zeta + (ww * np.maximum(ss - zeta, 0.0)).sum() / volume_cc)


def initial_active(spec: Any, items: Sequence[Any], probe_gy: np.ndarray, fraction: float) -> Dict[str, np.ndarray]:
    """Voxels whose probe dose reaches ``fraction`` of their limit, per constraint region.

    ``fraction = inf`` starts every region empty (the first round holds the objective only).
    """
    active: Dict[str, np.ndarray] = {}
    for it in items:
        rows = spec.regions[it.region].rows
        sel = probe_gy[rows] >= fraction * it.limit_gy if np.isfinite(fraction) else np.zeros(rows.size, bool)
        active[it.region] = active.get(it.region, np.zeros(rows.size, bool)) | sel
    return active


def add_violators(spec: Any, items: Sequence[Any], dose_gy: np.ndarray, active: Dict[str, np.ndarray], *,
                  backoff_gy: float, tol_gy: float, band_fraction: float) -> int:
    """Add the constraint voxels a full-matrix dose violates; return how many violate.

    A per-voxel bound is violated at an inactive voxel with ``d − L > −ε + tol``; a
    CVaR cap when the CVaR of ``d − L`` over all its voxels exceeds ``−ε + tol`` (its
    hottest ``2 V`` enter).  When anything is violated, every inactive voxel with
    ``d > (L − ε)(1 − band_fraction)`` enters too.  ``active`` is updated in place
    (it is the caller's private working set).
    """
    violated = 0
    band: Dict[str, np.ndarray] = {}
    for it in items:
        r = spec.regions[it.region]
        act = active[it.region]
        s = dose_gy[r.rows] - it.limit_gy
        if it.volume_cc is None:
            new = (s > -backoff_gy + tol_gy) & ~act
        else:
            new = np.zeros(s.size, bool)
            w = r.coverage * spec.voxel_volume_cc
            if weighted_cvar(s, w, it.volume_cc) > -backoff_gy + tol_gy:
                order = np.argsort(-s)
                cum = np.cumsum(w[order])
                new[order[: int(np.searchsorted(cum, 2.0 * it.volume_cc)) + 1]] = True
                new &= ~act
        violated += int(new.sum())
        active[it.region] = act | new
        near = dose_gy[r.rows] > (it.limit_gy - backoff_gy) * (1.0 - band_fraction)
        band[it.region] = band.get(it.region, np.zeros(s.size, bool)) | near
    if violated and band_fraction > 0:
        for region, near in band.items():
            active[region] = active[region] | near
    return violated
