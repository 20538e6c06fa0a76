"""Options, statuses and result of the dense-column interior point (:mod:`optimizer._schur_ipm`).

Every knob of the solver is a field of the frozen :class:`IpmOptions`, passed to
:func:`optimizer._schur_ipm.solve_lp`; the values are the ones measured best on the FMO LPs
(the measurements: ``docs/decisions/``).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields

import numpy as np

from constraints.errors import InputError

__all__ = ["SOLVER_NAME", "IpmOptions", "LpStatus", "LpSolution"]

#: The name cvxpy and :class:`optimizer.fmo.FmoOptions` know this solver by.
SOLVER_NAME = "SCHUR_IPM"


class LpStatus(str, enum.Enum):
    """How a solve ended (a ``str``, so that ``status == 'optimal'`` holds for the member).

    ``INTERRUPTED`` only when the caller's ``check`` asked to stop.
    """

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ITERATION_LIMIT = "iteration_limit"
    NUMERICAL_ERROR = "numerical_error"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class IpmOptions:
    """Settings of :func:`optimizer._schur_ipm.solve_lp`.

    Attributes
    ----------
    tol_feas, tol_gap : float
        Converged when, on the equilibrated data, ``‖r_p‖∞ ≤ tol_feas (1 + ‖b‖∞)``,
        ``‖r_d‖∞ ≤ tol_feas (1 + ‖c‖∞)`` and ``|cᵀz + bᵀλ| ≤ tol_gap (1 + |cᵀz|)``; the
        infeasibility and unboundedness certificates are checked at ``tol_feas`` too.
    max_iter : int
        Iterations from each start at Mehrotra's point (returns to an earlier iterate included).
    ruiz_passes : int
        Ruiz equilibration passes (0: none).
    max_correctors : int
        Gondzio centrality correctors per iteration (0: plain Mehrotra).
    regularization : float
        Diagonal δ added to the reduced system (keeps the Cholesky defined when a column empties).
    step_fraction : float in (0, 1)
        Fraction of the step to the boundary taken (keeps the iterates interior).
    sparse_column_max_nnz : int
        A column in at most this many rows is a candidate sparse (eliminated) column.
    max_linking_rows : int
        More rows holding two sparse columns than this: not a dense-column LP (the
        reduced system would no longer be small).
    drop_ratio, drop_min_fraction, drop_gap : float
        Column generation: bound rows whose ``s/λ`` is below ``drop_ratio`` of the largest
        mark their beamlet as going to zero; they leave the system when they are at least
        ``drop_min_fraction`` of the droppable ones and the relative gap is at most
        ``drop_gap`` (earlier, a start spreads the ratios and good columns would go).
    price_margin : float
        When a column left out prices in, so do those whose reduced cost is below this
        fraction of the median over the left-out ones (they would be next).
    resume_gap, resume_max_share : float
        After pricing brings back at most ``resume_max_share`` of the system's dense
        columns, the iterations resume from the first iterate of the ended run whose gap was
        at most ``resume_gap``; more: from the iterate before the first drop.
    single_precision_gap : float
        While the relative gap is above this, the normal matrix is summed in float32 (the
        infeasible-start iterations absorb inexact directions); ``inf``: float64 throughout.
    double_precision_share : float
        Below ``single_precision_gap``, rows carrying all but this share of the normal
        matrix's trace are summed in float64, the rest in float32; 0: float64 throughout.
    divergence_gap : float
        Above this relative gap the iterates diverge (an infeasible or unbounded LP) and the
        normal matrix is summed in float64, so that the certificates can reach ``tol_feas``
        (float32 directions stall them near 1e-7 and overflow).
    """

    tol_feas: float = 1e-8
    tol_gap: float = 1e-8
    max_iter: int = 100
    ruiz_passes: int = 5
    max_correctors: int = 2
    regularization: float = 1e-10
    step_fraction: float = 0.995
    sparse_column_max_nnz: int = 4
    max_linking_rows: int = 200
    drop_ratio: float = 1e-6
    drop_min_fraction: float = 0.25
    drop_gap: float = 0.15
    price_margin: float = 0.05
    resume_gap: float = 1e-3
    resume_max_share: float = 0.05
    single_precision_gap: float = 1e-2
    double_precision_share: float = 1e-7
    divergence_gap: float = 1e3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise InputError(f"IpmOptions.{f.name} must be a number >= 0, got {value!r}")
        for name in ("tol_feas", "tol_gap"):
            if not 0 < getattr(self, name) < 1:
                raise InputError(f"IpmOptions.{name} must be in (0, 1), got {getattr(self, name)!r}")
        for name in ("max_iter", "ruiz_passes", "max_correctors", "sparse_column_max_nnz", "max_linking_rows"):
            if int(getattr(self, name)) != getattr(self, name) or math.isinf(getattr(self, name)):
                raise InputError(f"IpmOptions.{name} must be a whole number, got {getattr(self, name)!r}")
        if self.max_iter < 1:
            raise InputError(f"IpmOptions.max_iter must be >= 1, got {self.max_iter!r}")
        if not 0 < self.step_fraction < 1:
            raise InputError(f"IpmOptions.step_fraction must be in (0, 1), got {self.step_fraction!r}")


@dataclass(frozen=True, eq=False)
class LpSolution:
    """Outcome of :func:`optimizer._schur_ipm.solve_lp` (in the caller's, unscaled, variables).

    Attributes
    ----------
    status : LpStatus
    z, s, lam : ndarray
        Primal variables, slacks and duals of the last iterate (whatever the status).  With
        ``UNBOUNDED``, ``z`` is a feasible iterate that is also a ray (``cᵀz < 0``, ``A z ≤ 0`` up
        to ``tol_feas``); with ``INFEASIBLE``, ``lam`` is a Farkas certificate (``λ ≥ 0``,
        ``Aᵀλ ≈ 0``, ``bᵀλ < 0``).
    objective : float
        ``cᵀz`` (meaningful with ``OPTIMAL`` only).
    iterations : int
    primal_residual, dual_residual, gap : float
        Relative residuals at the end (see :class:`IpmOptions`).
    solve_s : float, s
    columns_out : int
        Columns left out of the system at the end (fixed at 0, priced out).
    columns_priced_in : int
        Dropped columns that pricing brought back.
    """

    status: LpStatus
    z: np.ndarray
    s: np.ndarray
    lam: np.ndarray
    objective: float
    iterations: int
    primal_residual: float
    dual_residual: float
    gap: float
    solve_s: float
    columns_out: int = 0
    columns_priced_in: int = 0

