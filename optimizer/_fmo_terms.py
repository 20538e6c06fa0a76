"""cvxpy terms of the fluence-map problem (private; offline only, cvxpy passed in).

Every function takes the ``cvxpy`` module as its first argument so that importing
this module imports nothing heavy (STYLE §9).  All doses are **total** SBRT doses in
Gy (``fractions × per-fraction dose``); ``d`` is the dose variable of one region.

References
----------
.. [1] Rockafellar RT, Uryasev S. Optimization of conditional value-at-risk.
   J Risk 2000;2(3):21-41.
.. [2] Romeijn HE, Ahuja RK, Dempsey JF, Kumar A, Li JG. A novel linear programming
   approach to fluence map optimization for intensity modulated radiation therapy
   treatment planning. Phys Med Biol 2003;48:3521-3542.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

__all__ = ["underdose_term", "overdose_term", "max_bound", "cvar_cap"]


def underdose_term(cp: Any, d: Any, weight: np.ndarray, level_gy: float, kind: str) -> Any:
    """Volume-weighted mean under-dose below ``level_gy``: ``Σ ŵ_v [level − d_v]₊`` (Gy).

    ``ŵ_v`` = coverage / Σ coverage (weights sum to 1); ``kind='quadratic'`` squares
    the shortfall (Gy²).  Linear under-dose keeps the problem an LP (Romeijn et al.
    2003 [2]).
    """
    short = cp.pos(level_gy - d)
    if kind == "quadratic":
        return weight @ cp.square(short)
    return weight @ short


def overdose_term(cp: Any, d: Any, limit_gy: np.ndarray) -> Any:
    """Mean over-dose above a per-voxel soft limit (the fall-off ring), Gy."""
    return cp.sum(cp.pos(d - limit_gy)) / max(int(d.shape[0]), 1)


def max_bound(cp: Any, d: Any, limit_gy: np.ndarray) -> Any:
    """Hard per-voxel bound ``d_v ≤ L_v`` (one vectorized constraint)."""
    return d <= limit_gy


def cvar_cap(cp: Any, d: Any, limit_gy: np.ndarray, volume_weight_cc: np.ndarray, volume_cc: float,
             name: str) -> List[Any]:
    """CVaR restriction of "volume of {d_v > L_v} below ``volume_cc``".

    With the shifted dose ``s_v = d_v − L_v`` and voxel volumes ``w_v`` (coverage ×
    voxel volume, cc), the Rockafellar–Uryasev form [1]_

        ζ + (1/V) Σ_v w_v [s_v − ζ]₊ ≤ 0,   ζ free,

    bounds the mean of ``s`` over the hottest volume ``V``; it implies that the
    voxels with ``s_v > 0`` cover less than ``V`` (the DVH constraint), so it is a
    convex (LP) restriction.  With equal ``w_v`` it equals
    ``cvxpy.sum_largest(s, k) / k ≤ 0`` with ``k = V / w`` (fractional ``k``
    interpolates); the weighted form counts partial voxels exactly as
    :func:`constraints.compute_dvh` does.  Written over a subset of the organ's
    voxels (screening) it is a relaxation of the full restriction (fewer
    non-negative terms), which the caller checks on every voxel afterwards.

    Returns
    -------
    list of cvxpy.Constraint
    """
    w = np.asarray(volume_weight_cc, dtype=np.float64)
    zeta = cp.Variable(name=f"zeta_{name}")
    return [zeta + (w / volume_cc) @ cp.pos(d - limit_gy - zeta) <= 0]
