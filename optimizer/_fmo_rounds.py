"""One FMO round: a solve with ``SCHUR_IPM`` on the directly assembled LP (with the mid-round
screening check and the warm start), or through cvxpy for the other solvers (private)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any, Iterator, Mapping, Optional, Tuple

import numpy as np

from constraints.errors import InputError

from ._fmo_build import BuiltProblem
from ._fmo_options import CANON_BACKEND, FmoOptions
from ._fmo_spec import FmoSpec
from ._schur_ipm_options import SOLVER_NAME as SCHUR_IPM
from ._schur_ipm_options import IpmOptions, LpStatus

_log = logging.getLogger("optimizer.fmo")


@contextlib.contextmanager
def _solver_output_to_stderr() -> Iterator[None]:
    """Send what native solver code writes to file descriptor 1 (HiGHS prints its banner there
    whatever its options say) to stderr, so that stdout stays the CLI's (``--json``)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):     # no real stdout (embedded interpreter): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _cvxpy_solver(name: str) -> Any:
    """What ``Problem.solve(solver=...)`` takes: the name, or our interior point's instance."""
    if name != SCHUR_IPM:
        return name
    from ._schur_ipm_cvxpy import SchurIpm

    return SchurIpm()


#: cvxpy's status names for :func:`optimizer._schur_ipm.solve_lp`'s.
_LP_STATUS = {LpStatus.OPTIMAL: "optimal", LpStatus.INFEASIBLE: "infeasible", LpStatus.UNBOUNDED: "unbounded",
              LpStatus.ITERATION_LIMIT: "user_limit"}


#: A new CVaR excess below its cap's tail starts at this fraction of its centred value μ/τ.
_BELOW_TAIL = 1e-2


def _warm_start(old: Any, new: Any, point: Tuple[np.ndarray, np.ndarray, np.ndarray]
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``point`` = (z, s, λ), an iterate of the LP ``old``, on the LP ``new`` (by key), as
    :func:`optimizer._schur_ipm.solve_lp`'s ``start``.

    A new CVaR excess ``u_v`` keeps its column dual feasible, ``λ_main + λ_bound = τ = (w_v/V)
    λ_cap``.  In its cap's tail (``r_v = L_v − ε + ζ − d_v ≤ 0``) its rows are centred at the
    iterate's μ, ``λ_main (r_v + u) = λ_bound u = μ``: ``u`` is the root above ``−r_v`` of
    ``τ u² + (τ r − 2μ) u − μ r = 0``.  Below the tail ``u = 0.01 μ/τ`` (:data:`_BELOW_TAIL`):
    thousands of centred ``u ≈ μ/τ`` would move the cap's sum row by whole Gy (2 mm T4–T5:
    3 Gy).  A new cap's ``ζ`` starts at the CVaR minimizer of its voxels' ``d − L``, its dual at
    √μ.  Other new variables
    start at 0; other new rows' slacks and duals are left to the solver (NaN).
    """
    from ._fmo_lp import map_keys

    z_old, s_old, lam_old = point
    vi, ri = map_keys(old.var_keys, new.var_keys), map_keys(old.row_keys, new.row_keys)
    z = np.where(vi >= 0, z_old[vi], 0.0)
    s = np.where(ri >= 0, s_old[ri], np.nan)
    lam = np.where(ri >= 0, lam_old[ri], np.nan)
    known = np.isfinite(s) & np.isfinite(lam)
    mu = float(s[known] @ lam[known]) / max(int(known.sum()), 1)
    fresh = vi[new.cvar_u[:, 0]] < 0
    if not fresh.any() or not mu > 0:
        return z, s, lam
    u_var, main, bound, cap, zeta = new.cvar_u[fresh].T
    coef = new.cvar_coef[fresh]
    root = np.sqrt(mu)
    r = new.b[main] - new.dot(z)[main]              # the row A_v y − ζ − u_v ≤ L_v − ε's slack at u = 0
    for k in np.unique(cap[~known[cap]]):          # a new cap (ζ = 0 so far): ζ at the CVaR minimizer
        sel = cap == k
        excess = -r[sel]                             # d − L + ε
        order = np.argsort(-excess)
        at = min(int(np.searchsorted(np.cumsum(coef[sel][order]), 1.0 - 1e-12)), order.size - 1)
        z[zeta[sel]] = excess[order][at]
        r[sel] += excess[order][at]                  # −ζ in each of its rows
        lam[k] = root
    tau = coef * lam[cap]
    tail = r <= 0
    p = tau * r - 2.0 * mu
    u = np.where(tail, (-p + np.sqrt(np.maximum(p * p + 4.0 * tau * mu * r, 0.0))) / (2.0 * tau),
                 _BELOW_TAIL * mu / tau)
    z[u_var] = u
    s[main], s[bound] = r + u, u
    lam[main] = np.where(tail, mu / (r + u), np.minimum(mu / (r + u), 0.5 * tau))
    lam[bound] = tau - lam[main]
    return z, s, lam


#: A resume point: an FMO LP and an iterate of it (z, s, λ) at ``FmoOptions.screen_check_gap``.
_Point = Tuple[Any, Tuple[np.ndarray, np.ndarray, np.ndarray]]


#: What a SCHUR_IPM round returns (see :func:`_solve_lp_round`).
_LpRound = Tuple[str, Optional[np.ndarray], Optional[float], Tuple[int, int], float, float, Optional[_Point]]


def _solve_lp_round(spec: FmoSpec, options: FmoOptions, settings: Mapping[str, Any], check: Optional[Any] = None,
                    resume: Optional[_Point] = None, **lp_args: Any) -> _LpRound:
    """One round with ``SCHUR_IPM`` on the directly assembled LP (:mod:`optimizer._fmo_lp`).

    From ``resume`` when given (a warm start; no check), else from Mehrotra's point.
    ``check(y) -> bool`` screens the iterate at ``options.screen_check_gap``; when it added
    voxels (to ``lp_args['active']``), the LP is assembled again and the solve goes on from that
    iterate.  Returns status (cvxpy's names), ``y``, objective, (influence rows, non-zeros), the
    round's time (assembly + solve, s), the assembly's (s) and the resume point for a next round
    (the check's iterate, or ``resume``).
    """
    from ._fmo_lp import assemble_lp
    from ._schur_ipm import StructureError, solve_lp

    t0 = time.perf_counter()
    ipm_options = _ipm_options(settings)
    lp = assemble_lp(spec, options, **lp_args)
    assemble_s = lp.assemble_s
    start = None
    if resume is not None:
        start, check = _warm_start(resume[0], lp, resume[1]), None
    while True:
        at_check = None

        def on_check(z: np.ndarray, s: np.ndarray, lam: np.ndarray, lp: Any = lp) -> bool:
            nonlocal at_check
            at_check = (lp, (z, s, lam))
            return bool(check(z[:lp.n_beamlets]))

        try:
            sol = solve_lp(lp.c, lp.a, lp.b, shared=lp.shared, start=start, check=None if check is None else on_check,
                           check_gap=options.screen_check_gap or 0.0, options=ipm_options)
        except StructureError as exc:
            return (f"solver_error: {SCHUR_IPM}: {exc}; use solver HIGHS", None, None, (lp.n_opt_rows, lp.opt_nnz),
                    0.0, assemble_s, None)
        resume = at_check or resume
        if sol.status != LpStatus.INTERRUPTED:
            break
        new = assemble_lp(spec, options, **lp_args)
        assemble_s += new.assemble_s
        _log.info("FMO: screening check at gap %.2g: %d rows → %d, going on from that iterate",
                  sol.gap, lp.b.size, new.b.size)
        start, lp, check = _warm_start(lp, new, (sol.z, sol.s, sol.lam)), new, None
    round_s = time.perf_counter() - t0
    status = _LP_STATUS.get(sol.status, f"solver_error: {SCHUR_IPM} ended with {sol.status}")
    return status, sol.z[:lp.n_beamlets], sol.objective, (lp.n_opt_rows, lp.opt_nnz), round_s, assemble_s, resume


def _ipm_options(settings: Mapping[str, Any]) -> IpmOptions:
    """``SCHUR_IPM``'s settings (:data:`SOLVER_DEFAULTS` and ``solver_options``) as its options."""
    try:
        return IpmOptions(**settings)
    except TypeError as exc:
        raise InputError(f"solver_options for {SCHUR_IPM}: {exc}; the names are the fields of "
                         "optimizer._schur_ipm.IpmOptions") from exc


def _solve_cvxpy_round(built: BuiltProblem, options: FmoOptions
                       ) -> Tuple[str, Optional[np.ndarray], Optional[float], float, float]:
    """One round through cvxpy: status, ``y``, objective, the round's time and cvxpy's compilation time (s)."""
    import cvxpy as cp

    t0 = time.perf_counter()
    try:
        with _solver_output_to_stderr():
            built.problem.solve(solver=_cvxpy_solver(options.solver), canon_backend=CANON_BACKEND,
                                **options.solve_kwargs())
        status = str(built.problem.status)
    except cp.error.SolverError as exc:
        status = f"solver_error: {exc}".splitlines()[0]
    round_s = time.perf_counter() - t0
    compile_s = float(getattr(built.problem, "compilation_time", None) or 0.0)
    if status != cp.OPTIMAL:
        return status, None, None, round_s, compile_s
    return status, np.asarray(built.y.value, dtype=np.float64), float(built.problem.value), round_s, compile_s
