"""Screening, metrics and CVaR evaluation of FMO solutions (private; numpy only).

References
----------
.. [1] Rockafellar RT, Uryasev S. Optimization of conditional value-at-risk.
   J Risk 2000;2(3):21-41.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

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


def initial_active(spec, probe_gy: np.ndarray, fraction: float) -> Dict[str, np.ndarray]:
    active: Dict[str, np.ndarray] = {}
    for item in spec.max_bounds + spec.volume_caps:
        rows = spec.regions[item.region].rows
        sel = probe_gy[rows] >= fraction * item.limit_gy
        active[item.region] = active.get(item.region, np.zeros(rows.size, bool)) | sel
    return active


def add_violators(spec, dose_gy: np.ndarray, active: Dict[str, np.ndarray], tol_gy: float) -> int:
    """Add constraint voxels the full-matrix dose violates (or the CVaR tail); return how many."""
    added = 0
    for item in spec.max_bounds + spec.volume_caps:
        r = spec.regions[item.region]
        s = dose_gy[r.rows] - item.limit_gy
        if not hasattr(item, 'volume_cc'):
            new = (s > -tol_gy) & ~active[item.region]
        else:
            w = r.coverage * spec.voxel_volume_cc
            if weighted_cvar(s, w, item.volume_cc) <= -tol_gy:
                continue
            order = np.argsort(-s)
            cum = np.cumsum(w[order])
            tail = order[: int(np.searchsorted(cum, 2.0 * item.volume_cc)) + 1]
            new = np.zeros(s.size, bool)
            new[tail] = True
            new &= ~active[item.region]
        added += int(new.sum())
        active[item.region] = active[item.region] | new
    return added
