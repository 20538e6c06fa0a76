"""The outcome of an FMO solve and its quick metrics (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from constraints.errors import InfeasibleError

from ._fmo_screen import weighted_cvar
from ._fmo_spec import FmoSpec

__all__ = ["FmoMetrics", "FmoResult", "metrics"]


@dataclass(frozen=True)
class FmoMetrics:
    """Quick metrics of a solution (the exact protocol check is separate).

    Attributes
    ----------
    target_v_rx_percent : float, %  (coverage-weighted volume with d ≥ R)
    target_d95_gy : float, Gy       (computed with :func:`constraints.compute_dvh` rules)
    max_bound_excess_gy : float, Gy
        max over every MaxBound voxel of ``d_v − L_v`` (L without back-off; ≤ 0 = met).
    cvar_gy : tuple of (label, float)
        CVaR of ``d − L`` over each VolumeCap's volume (≤ 0 = restriction met).
    """

    target_v_rx_percent: float
    target_d95_gy: float
    max_bound_excess_gy: float
    cvar_gy: Tuple[Tuple[str, float], ...]


@dataclass(frozen=True, eq=False)
class FmoResult:
    """Outcome of one solve.  ``weights``/``dose_gy`` are None unless ``status == 'optimal'``.

    Attributes
    ----------
    status : str  (cvxpy status)
    solver : str
    solver_settings : tuple of (name, value)
    build_s : float, s
        Our construction (matrices, truncation, cvxpy expressions, full-matrix checks).
    compile_s : float, s
        cvxpy canonicalization, or with ``SCHUR_IPM`` the direct assembly of the LP
        (:mod:`optimizer._fmo_lp`); part of ``solve_s``.
    solve_s : float, s
        ``Problem.solve`` calls (canonicalization + solver), or with ``SCHUR_IPM`` assembly +
        solver, summed over rounds.
    rounds : int
        Solves made (screening and truncation-correction rounds).
    objective : float or None
    weights : ndarray (n_beamlets,) or None  (per-fraction weights, influence units)
    dose_gy : ndarray (n_voxels,) or None    (total SBRT dose, flattened dose grid)
    metrics : FmoMetrics or None
    n_voxels, n_beamlets, nnz : int
        Size of the full influence matrix.
    n_opt_rows, opt_nnz : int
        Influence rows and non-zeros in the last round's problem.
    correction_change_gy : float, Gy
        With objective truncation: the largest change of the truncation correction on
        an objective row between the last solve and its solution (the last solve's
        objective rows were off by this much from the full-matrix dose); 0 without.
    """

    status: str
    solver: str
    solver_settings: Tuple[Tuple[str, Any], ...]
    build_s: float
    compile_s: float
    solve_s: float
    rounds: int
    objective: Optional[float]
    weights: Optional[np.ndarray]
    dose_gy: Optional[np.ndarray]
    metrics: Optional[FmoMetrics]
    n_voxels: int
    n_beamlets: int
    nnz: int
    n_opt_rows: int
    opt_nnz: int
    correction_change_gy: float = 0.0

    @property
    def has_plan(self) -> bool:
        return self.weights is not None

    def require_plan(self) -> "FmoResult":
        """Return self, or raise InfeasibleError when the solve gave no plan."""
        if not self.has_plan:
            raise InfeasibleError(f"FMO solver {self.solver} ended with status {self.status!r}: no plan. "
                                  "Relax a margin or limit, or try another solver")
        return self


def metrics(spec: FmoSpec, dose_gy: np.ndarray) -> FmoMetrics:
    """The quick metrics of ``dose_gy`` (Gy, total, flattened dose grid) on ``spec``."""
    tgt = spec.regions[spec.target]
    dt, cov = dose_gy[tgt.rows], tgt.coverage
    v_rx = 100.0 * float(cov[dt >= spec.prescription_gy].sum() / cov.sum())
    order = np.argsort(-dt)
    cum = np.cumsum(cov[order])
    j = min(int(np.searchsorted(cum, 0.95 * cov.sum() * (1 - 1e-9))), dt.size - 1)
    d95 = float(dt[order][j])
    excess = -np.inf
    for b in spec.max_bounds:
        excess = max(excess, float((dose_gy[spec.regions[b.region].rows] - b.limit_gy).max()))
    cv = []
    for c in spec.volume_caps:
        r = spec.regions[c.region]
        cv.append((c.label, weighted_cvar(dose_gy[r.rows] - c.limit_gy, r.coverage * spec.voxel_volume_cc,
                                          c.volume_cc)))
    return FmoMetrics(v_rx, d95, excess if np.isfinite(excess) else 0.0, tuple(cv))
