"""One iteration of the mock TPS optimizer: a projected Gauss-Newton step on the merit.

The merit (:class:`mock_tps._tps_merit.Problem`) is piecewise quadratic in the dose
d = A w; its Gauss-Newton matrix is ``H = Aᵀ diag(h) A + Σ (Aᵀu)(Aᵀu)ᵀ`` with h the
curvature of the curved rows. The step keeps the beamlets at their bound that the
projected gradient pushes there [1]_ and solves the Newton system on the others:

- at most ``NewtonOptions.exact_beamlet_limit`` free beamlets: exactly, from the dense H of the free beamlets
  on the curved rows, by block principal pivoting on ``w + s ≥ 0`` [2]_;
- more: by at most ``NewtonOptions.cg_steps`` preconditioned conjugate-gradient steps, the
  preconditioner holding the objectives' curvature by its diagonal and the constraint
  rows' (the stiff part) exactly, by the Woodbury identity.

The merit is then minimized along the step (its slope is monotone), the point projected
onto w ≥ 0 and accepted if it lowers the merit.

References
----------
.. [1] D. P. Bertsekas, "Projected Newton methods for optimization problems with simple
   constraints", SIAM J. Control Optim. 20(2), 221-246 (1982).
.. [2] J. J. Júdice, F. M. Pires, "A block principal pivoting algorithm for large-scale
   strictly monotone linear complementarity problems", Comput. Oper. Res. 21(5),
   587-596 (1994).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np
import scipy.linalg
import scipy.sparse

from ._tps_merit import Problem
from ._tps_products import gram, matvec, rmatvec

__all__ = ["Iterate", "NewtonOptions", "newton_step"]

# Levenberg damping of the Gauss-Newton matrix, relative to its mean diagonal: above the
# rounding of a float32 product (1e-7), which can leave the matrix slightly indefinite.
_DAMPING = 1e-6
_PIVOT_PASSES = 20
# Slope evaluations of the line minimization; back-tracking cuts after the projection.
_LINE_SEARCH_STEPS = 12
_BACKTRACKS = 4
_BACKTRACK_FACTOR = 0.3
_TINY = 1e-300
# CG multiplies by a copy of the curved rows when they are fewer than this fraction of all.
_COPY_ROWS_BELOW = 0.5


@dataclass(frozen=True)
class NewtonOptions:
    """How the Newton system of one iteration is solved.

    Attributes
    ----------
    exact_beamlet_limit : int
        Up to this many free beamlets the step is exact (dense Gauss-Newton matrix, about
        m·n² flops); above, conjugate gradients (about 4·cg_steps·m·n memory reads). 1200
        balances the two at the default phantom size (21 000 rows × 2 650 beamlets;
        docs/decisions/mock-optimizer-newton-solver.md).
    cg_steps : int
        Conjugate-gradient steps at most.
    cg_relative_residual : float
        CG stops when the residual falls below this fraction of the first.
    woodbury_rows : int
        Constraint rows (at most, the stiffest) the CG preconditioner holds exactly.
    """

    exact_beamlet_limit: int = 1200
    cg_steps: int = 20
    cg_relative_residual: float = 1e-3
    woodbury_rows: int = 2000


@dataclass
class Iterate:
    weights: np.ndarray
    dose: np.ndarray
    merit: float
    objective: float


def _solve_psd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a damped Gauss-Newton system by Cholesky (diagonal scaling if it is not definite)."""
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix, check_finite=False), rhs,
                                      check_finite=False)
    except np.linalg.LinAlgError:
        return rhs / np.maximum(np.diag(matrix), _TINY)


def _box_qp_step(hessian: np.ndarray, g: np.ndarray, w: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Step s minimizing ``gᵀs + ½ sᵀHs`` subject to ``w + s ≥ 0``, by block principal pivoting:
    solve on the free beamlets with the others at zero, move those the solution makes
    negative to the bound and release bound ones whose model gradient is negative; at
    most :data:`_PIVOT_PASSES` passes, the last solution projected onto ``w + s ≥ 0``."""
    bound = ((w <= 0.0) & (g > 0.0)) | locked
    y = np.maximum(w, 0.0)
    for _ in range(_PIVOT_PASSES):
        free = np.flatnonzero(~bound)
        fixed = np.flatnonzero(bound)
        y = np.zeros_like(w)
        if free.size:
            rhs = -(g[free] - hessian[np.ix_(free, fixed)] @ w[fixed])
            y[free] = w[free] + _solve_psd(hessian[np.ix_(free, free)], rhs)
        model_grad = g + hessian @ (y - w)
        new_bound = np.where(bound, model_grad >= 0.0, y < 0.0) | locked
        if np.array_equal(new_bound, bound):
            break
        bound = new_bound
    return np.maximum(y, 0.0) - w


def _exact_step(problem: Problem, rows: np.ndarray, h: np.ndarray, vectors: List[np.ndarray], damping: float,
                free: np.ndarray, g: np.ndarray, w: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Newton step of the free beamlets from their dense Gauss-Newton matrix."""
    hessian = gram(problem.matrix, rows, free, np.sqrt(h), problem.scratch)
    for u in vectors:
        hessian += np.outer(u[free], u[free])
    hessian.flat[::free.size + 1] += damping
    return _box_qp_step(hessian, g[free], w[free], locked[free])


def _woodbury_preconditioner(problem: Problem, stiff_rows: np.ndarray, stiffness: np.ndarray,
                             diagonal: np.ndarray, free_mask: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``r ↦ P⁻¹ r`` for ``P = D + Cᵀ diag(k) C`` (D the diagonal, C the stiff rows on the free
    beamlets): ``P⁻¹ = D⁻¹ − D⁻¹Cᵀ (diag(1/k) + C D⁻¹ Cᵀ)⁻¹ C D⁻¹``, O(rows² · beamlets) to set up."""
    if stiff_rows.size == 0:
        return lambda r: r / diagonal
    c = problem.rows_of(stiff_rows)
    c = (c.toarray() if scipy.sparse.issparse(c) else np.asarray(c, dtype=np.float64)) * free_mask
    c_scaled = c / diagonal
    # C D⁻¹ Cᵀ as the Gram matrix of C D^-1/2 in float32 (a symmetric rank-k update, a quarter of
    # the float64 product's time): a preconditioner needs no more precision than that
    half = (c * (1.0 / np.sqrt(diagonal))).astype(np.float32)
    small = np.asarray(half @ half.T, dtype=np.float64)
    small.flat[::small.shape[0] + 1] += 1.0 / stiffness
    try:
        factor = scipy.linalg.cho_factor(small, check_finite=False)
    except np.linalg.LinAlgError:
        return lambda r: r / diagonal

    def apply(r: np.ndarray) -> np.ndarray:
        y = r / diagonal
        return y - scipy.linalg.cho_solve(factor, c @ y, check_finite=False) @ c_scaled
    return apply


def _cg_step(problem: Problem, rows: np.ndarray, h: np.ndarray, vectors: List[np.ndarray], damping: float,
             free_mask: np.ndarray, g: np.ndarray, precondition: Callable[[np.ndarray], np.ndarray],
             options: NewtonOptions) -> np.ndarray:
    """Preconditioned CG on ``H_FF s = −g_F``, at most ``options.cg_steps`` steps.

    The products run on the curved rows, or on all rows (zero curvature elsewhere) when the
    curved ones are most of them: copying them then costs more than it saves."""
    matrix = problem.matrix
    if rows.size > _COPY_ROWS_BELOW * matrix.shape[0]:
        curved = matrix
        h_curved = np.zeros(matrix.shape[0], dtype=matrix.dtype)
        h_curved[rows] = h
    else:
        curved = problem.rows_of(rows)
        h_curved = h.astype(curved.dtype)

    def product(p: np.ndarray) -> np.ndarray:
        q = rmatvec(curved, h_curved * matvec(curved, p).astype(curved.dtype))
        for u in vectors:
            q += u * float(u @ p)
        return (q + damping * p) * free_mask

    s = np.zeros(g.size)
    r = -g * free_mask
    z = precondition(r) * free_mask
    p = z.copy()
    rz = float(r @ z)
    stop = options.cg_relative_residual * math.sqrt(float(r @ r))
    for _ in range(options.cg_steps):
        hp = product(p)
        curvature = float(p @ hp)
        if not curvature > 0.0:
            break
        alpha = rz / curvature
        s += alpha * p
        r -= alpha * hp
        if math.sqrt(float(r @ r)) <= stop:
            break
        z = precondition(r) * free_mask
        rz, rz_old = float(r @ z), rz
        p = z + (rz / rz_old) * p
    return s


def newton_step(problem: Problem, x: Iterate, options: NewtonOptions = NewtonOptions()) -> Tuple[Iterate, float]:
    """One projected Gauss-Newton step on the merit (w ≥ 0).

    Returns the new iterate and the decrease the Gauss-Newton model predicts for the step
    taken (≥ 0); the iterate is returned unchanged (prediction 0) if no step lowers the merit.
    """
    A, w = problem.matrix, x.weights
    _, _, der = problem.merit(x.dose, derivatives=True)
    g = rmatvec(A, der.grad)
    vectors = [rmatvec(A, u) for u in der.rank_one]
    curvature = der.curvature_objectives + der.curvature_constraints
    diagonals = rmatvec(problem.matrix_squared, np.column_stack([der.curvature_objectives,
                                                                 der.curvature_constraints]))
    diag_objectives = diagonals[:, 0] + sum((u * u for u in vectors), np.zeros(w.size))
    jacobi = diag_objectives + diagonals[:, 1]
    damping = _DAMPING * max(float(jacobi.mean()), _TINY)
    jacobi = jacobi + damping
    locked = problem.locked
    # ε-active set: beamlets at (or within ε of) zero whose gradient pushes them down stay there
    projected = np.maximum(w - g / jacobi, 0.0) - w
    eps = min(float(np.abs(projected).max(initial=0.0)), 1e-3 * max(float(w.max(initial=0.0)), _TINY))
    bound = ((w <= eps) & (g > 0.0)) | locked
    free = np.flatnonzero(~bound)
    rows = np.flatnonzero(curvature > 0.0)
    step = np.where(locked, -w, np.where(bound, -np.minimum(w, g / jacobi), 0.0))
    if free.size and free.size <= options.exact_beamlet_limit:
        step[free] = _exact_step(problem, rows, curvature[rows], vectors, damping, free, g, w, locked)
    elif free.size:
        free_mask = (~bound).astype(np.float64)
        stiff = np.flatnonzero(der.curvature_constraints > 0.0)
        if stiff.size > options.woodbury_rows:
            order = np.argsort(-der.curvature_constraints[stiff], kind="stable")[:options.woodbury_rows]
            stiff = np.sort(stiff[order])
        diag = np.maximum(diag_objectives + damping, 1e-12 * float(jacobi.max()))
        precondition = _woodbury_preconditioner(problem, stiff, der.curvature_constraints[stiff], diag, free_mask)
        step[free] = _cg_step(problem, rows, curvature[rows], vectors, damping, free_mask, g, precondition,
                              options)[free]
    gradient_step = np.where(locked, -w, projected)
    for s in (step, gradient_step):
        slope = float(g @ s)
        if not slope < 0.0:
            continue
        dose_step = problem.dose(s)
        model = 0.5 * (float(curvature @ (dose_step * dose_step)) + sum(float(u @ s) ** 2 for u in vectors)
                       + damping * float(s @ s))
        alpha = _line_minimum(problem, x.dose, dose_step)
        for _ in range(_BACKTRACKS):
            trial = np.maximum(w + alpha * s, 0.0)
            d = problem.dose(trial)
            merit, objective = problem.merit(d)
            if merit < x.merit:
                return Iterate(trial, d, merit, objective), max(-(alpha * slope + alpha * alpha * model), 0.0)
            alpha *= _BACKTRACK_FACTOR
    return x, 0.0


def _line_minimum(problem: Problem, dose: np.ndarray, dose_step: np.ndarray) -> float:
    """α in (0, 1] minimizing the merit along ``dose + α dose_step`` (regula falsi on the slope).

    The merit is convex piecewise quadratic in α for the pointwise functions, so the
    root of its slope is the minimum; a fixed number of slope evaluations, O(voxels) each.
    """
    def slope(alpha: float) -> float:
        return float(problem.merit(dose + alpha * dose_step, derivatives=True)[2].grad @ dose_step)

    lo, hi = 0.0, 1.0
    s_lo, s_hi = slope(lo), slope(hi)
    if s_hi <= 0.0 or s_lo >= 0.0:
        return hi
    side = 0
    for _ in range(_LINE_SEARCH_STEPS):
        alpha = (lo * s_hi - hi * s_lo) / (s_hi - s_lo)
        s = slope(alpha)
        if s > 0.0:
            hi, s_hi = alpha, s
            if side == -1:
                s_lo *= 0.5
            side = -1
        else:
            lo, s_lo = alpha, s
            if side == 1:
                s_hi *= 0.5
            side = 1
        if hi - lo <= 1e-6 or s == 0.0:
            break
    return max(lo, min(hi, alpha))
