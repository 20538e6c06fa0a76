"""The predictor–corrector iterations of the dense-column interior point (private).

Mehrotra's predictor–corrector [1]_ with Gondzio's centrality correctors [4]_ and separate
primal and dual step lengths, from an infeasible start.  Each iteration also checks two
certificates, on the equilibrated data, so that a solve that cannot converge says why:

* primal infeasible (Farkas): ``λ ≥ 0``, ``‖Aᵀλ‖∞ ≤ tol_feas · (−bᵀλ)``;
* unbounded: an iterate primal feasible to ``tol_feas`` that is also a ray, ``cᵀz < 0`` and
  ``max(A z, 0) ≤ tol_feas · (−cᵀz)``, while the dual is still infeasible (the diverging
  iterates of an unbounded LP point along a ray; feasibility tells it from an infeasible LP
  that merely has a ray).

References
----------
.. [1] Mehrotra S. On the implementation of a primal-dual interior point method.
   SIAM J Optim 1992;2(4):575-601.
.. [4] Gondzio J. Multiple centrality corrections in a primal-dual method for linear
   programming. Comput Optim Appl 1996;6:137-156.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._schur_ipm_newton import _centrality_correctors, _Newton, _start, _step
from ._schur_ipm_options import IpmOptions, LpStatus
from ._schur_ipm_products import _a_dot, _at_dot, _Lp

_log = logging.getLogger("optimizer._schur_ipm")


@dataclass
class _Run:
    """Iterate and counters of :func:`_iterate` (mutated in place)."""

    z: np.ndarray
    s: np.ndarray
    lam: np.ndarray
    iterations: int = 0
    rp_rel: float = np.inf
    rd_rel: float = np.inf
    gap_rel: float = np.inf
    resume_point: "tuple[_Lp, _Run] | None" = None    # its first iterate at gap ≤ resume_gap


def _iterate(lp: _Lp, run: _Run, opts: IpmOptions, *, nb: float, nc: float, max_iter: int, droppable: np.ndarray,
             check_gap: float = -1.0) -> "tuple[str, np.ndarray]":
    """Predictor–corrector iterations on ``lp`` from ``run``'s iterate.

    ``droppable`` (bool over ``lp``'s rows): bound rows whose column may leave the
    system.  Returns the status (an :class:`LpStatus`, or 'check' when the relative gap is
    at most ``check_gap``, or 'drop') and, for 'drop', the rows whose complementarity ratio
    ``s/λ`` fell below ``opts.drop_ratio`` of the largest, when they are at least
    ``opts.drop_min_fraction`` of the droppable rows.
    """
    from scipy.linalg import LinAlgError

    b, c, st = lp.b, lp.c, lp.st
    m = b.size
    z, s, lam = run.z, run.s, run.lam
    tol_feas, tol_gap = opts.tol_feas, opts.tol_gap
    status = LpStatus.ITERATION_LIMIT
    n_droppable = int(droppable.sum())
    flagged = np.zeros(m, bool)
    while run.iterations < max_iter:
        r_p = b - _a_dot(st, z) - s
        r_d = -c - _at_dot(st, lam)
        pobj, dobj = float(c @ z), float(-b @ lam)
        run.rp_rel = float(np.abs(r_p).max()) / nb
        run.rd_rel = float(np.abs(r_d).max()) / nc
        run.gap_rel = abs(pobj - dobj) / (1.0 + abs(pobj))
        _log.debug("iteration %d: %d dense columns, primal %.2e, dual %.2e, gap %.2e", run.iterations,
                   st.dense_cols.size, run.rp_rel, run.rd_rel, run.gap_rel)
        if run.resume_point is None and run.gap_rel <= max(opts.resume_gap, tol_gap):
            run.resume_point = (lp, _Run(z, s, lam))
        if run.rp_rel <= tol_feas and run.rd_rel <= tol_feas and run.gap_rel <= tol_gap:
            status = LpStatus.OPTIMAL
            break
        if run.gap_rel <= check_gap:
            status = "check"
            break
        b_lam = float(b @ lam)
        if b_lam < 0 and float(np.abs(c + r_d).max()) <= tol_feas * -b_lam:
            status = LpStatus.INFEASIBLE     # λ ≥ 0, Aᵀλ ≈ 0, bᵀλ < 0: Farkas certificate
            break
        if (pobj < 0 and run.rp_rel <= tol_feas and run.rd_rel > tol_feas
                and float(np.max(b - s - r_p, initial=0.0)) <= tol_feas * -pobj):
            status = LpStatus.UNBOUNDED      # z feasible, and A z = b − s − r_p ≤ 0 (to tol), cᵀz < 0: a ray
            break
        if n_droppable and run.gap_rel <= opts.drop_gap:
            ratio = s / lam
            flagged = droppable & (ratio < opts.drop_ratio * float(ratio[droppable].max()))
            if flagged.sum() >= max(1.0, opts.drop_min_fraction * n_droppable):
                status = "drop"
                break
        run.iterations += 1
        mu = float(s @ lam) / m

        if run.gap_rel > opts.divergence_gap:
            precision = "double"          # diverging: the certificates need float64 directions
        else:
            precision = "single" if run.gap_rel > opts.single_precision_gap else "mixed"
        try:
            try:
                newton = _Newton(lp, s, lam, opts.regularization, precision, opts.double_precision_share)
            except LinAlgError:
                newton = _Newton(lp, s, lam, opts.regularization, "double")
            dz_a, dl_a, ds_a = newton.solve(r_p, r_d, -lam * s)
            ap, ad = _step(s, ds_a), _step(lam, dl_a)
            mu_aff = float((s + ap * ds_a) @ (lam + ad * dl_a)) / m
            sigma = (mu_aff / mu) ** 3
            dz, dl, ds = newton.solve(r_p, r_d, sigma * mu - lam * s - ds_a * dl_a)
            dz, dl, ds = _centrality_correctors(newton, s, lam, dz, dl, ds, sigma * mu, opts.max_correctors)
        except LinAlgError:                         # a singular Newton system
            status = LpStatus.NUMERICAL_ERROR
            break
        except ValueError as exc:                   # a non-finite one (LinAlgError is a ValueError too)
            if not _non_finite(exc):
                raise
            status = LpStatus.NUMERICAL_ERROR
            break
        ap, ad = opts.step_fraction * _step(s, ds), opts.step_fraction * _step(lam, dl)
        _log.debug("  steps %.3f (primal), %.3f (dual), sigma %.2g", ap, ad, sigma)
        z = z + ap * dz
        s = s + ap * ds
        lam = lam + ad * dl
    run.z, run.s, run.lam = z, s, lam
    return status, flagged


def _non_finite(exc: ValueError) -> bool:
    """Whether scipy refused an array for holding inf or NaN (its ``check_finite``); any other
    ValueError is a fault to be seen, not a numerical status."""
    return "infs or NaNs" in str(exc)


def _fresh_run(lp: _Lp, iterations: int, opts: IpmOptions) -> _Run:
    """A run of ``lp`` from Mehrotra's start (``iterations`` carried over)."""
    from scipy.linalg import LinAlgError

    try:
        run = _Run(*_start(lp, opts.regularization, "single" if opts.single_precision_gap < np.inf else "mixed",
                           opts.double_precision_share))
    except ValueError as exc:       # singular (LinAlgError) or non-finite: a plain interior start
        if not isinstance(exc, LinAlgError) and not _non_finite(exc):
            raise
        run = _Run(np.zeros(lp.c.size), np.maximum(lp.b, 1.0), np.ones(lp.b.size))
    run.iterations = iterations
    return run


def _warm_run(lp: _Lp, z: np.ndarray, s: np.ndarray, lam: np.ndarray) -> "_Run | None":
    """A run of ``lp`` from a given (scaled) iterate; a NaN slack or dual is unknown (a row new to
    the LP).  An unknown slack becomes ``b − A z`` floored at ``√μ`` and its dual ``μ / s``, so
    that the new pairs sit on the central path of the known ones (μ: their mean ``s λ``); a
    violated new row thus starts with a primal residual, which the infeasible-start iterations
    remove.  None when nothing is known.
    """
    known = np.isfinite(s) & np.isfinite(lam) & (s > 0) & (lam > 0)
    if not known.any():
        return None
    mu = float(s[known] @ lam[known]) / int(known.sum())
    s, lam = s.copy(), lam.copy()
    new = ~known
    s[new] = np.maximum((lp.b - _a_dot(lp.st, z))[new], np.sqrt(mu))
    lam[new] = mu / s[new]
    return _Run(z.copy(), s, lam)

