"""Primal–dual interior point for LPs with a few dense columns (private; numpy/scipy).

The LP is cvxpy's conic form with nonnegative cones only (inequality rows; equality rows are
refused by the cvxpy interface, :mod:`optimizer._schur_ipm_cvxpy`)::

    minimize  cᵀz   subject to   A z + s = b,   s ≥ 0          (dual: Aᵀλ + c = 0, λ ≥ 0)

Fluence-map LPs have a few thousand dense columns (the beamlet weights, each in thousands of
rows) and many sparse ones (the hinge epigraph variables, in two or three rows each); general
sparse solvers pay for every dense row in every iteration.  Eliminating the sparse columns
analytically leaves a system in the dense columns only, formed by one BLAS ``syrk`` of the
distinct dense rows per iteration.  The phases, one module each:

* :mod:`~optimizer._schur_ipm_structure`: row and column classes, shared rows;
* :mod:`~optimizer._schur_ipm_products`: products with ``A``, Ruiz equilibration [2]_, the
  column restriction;
* :mod:`~optimizer._schur_ipm_newton`: the Newton system, Mehrotra's start, Gondzio's correctors;
* :mod:`~optimizer._schur_ipm_iterate`: the iterations and the infeasibility and unboundedness
  certificates;
* this module: :func:`solve_lp`, the column generation around them [5]_.

Column generation: most beamlets end at zero weight.  Once enough of them have a vanishing
``s/λ`` on their bound row ``−y_j + s = 0`` they are fixed at 0 and leave the system (the
iterations go on from the same iterate, which the infeasible-start method allows); at the
restricted optimum every column left out is priced with the duals, ``c_j + a_jᵀλ``, and those
that price in come back, so the answer is the optimum of the whole LP.  The settings are the
fields of :class:`IpmOptions`; why each value: ``docs/decisions/``.

References
----------
.. [1] Mehrotra S. On the implementation of a primal-dual interior point method.
   SIAM J Optim 1992;2(4):575-601.  (Also Nocedal J, Wright SJ, Numerical
   Optimization, 2nd ed., Springer 2006, Algorithm 14.3.)
.. [2] Ruiz D. A scaling algorithm to equilibrate both rows and columns norms in
   matrices. Rutherford Appleton Laboratory report RAL-TR-2001-034, 2001.
.. [3] Andersen KD. A modified Schur-complement method for handling dense columns in
   interior-point methods for linear programming. ACM Trans Math Softw
   1996;22(3):348-356.
.. [4] Gondzio J. Multiple centrality corrections in a primal-dual method for linear
   programming. Comput Optim Appl 1996;6:137-156.
.. [5] Romeijn HE, Ahuja RK, Dempsey JF, Kumar A. A column generation approach to
   radiation therapy treatment planning using aperture modulation. SIAM J Optim
   2005;15(3):838-862.  (Pricing out columns with the duals of a restricted LP.)
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Tuple

import numpy as np

from constraints.errors import InputError

from ._schur_ipm_iterate import _fresh_run, _iterate, _warm_run
from ._schur_ipm_options import SOLVER_NAME, IpmOptions, LpSolution, LpStatus
from ._schur_ipm_products import _at_dot, _bounded_columns, _full, _Lp, _restrict, _ruiz
from ._schur_ipm_structure import LpStructure, SharedRows, StructureError, find_structure

__all__ = ["SOLVER_NAME", "IpmOptions", "LpStatus", "SharedRows", "LpStructure", "LpSolution", "StructureError",
           "find_structure", "solve_lp"]


def solve_lp(c: np.ndarray, a: Any, b: np.ndarray, *, shared: Optional[SharedRows] = None,
             start: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
             check: Optional[Callable[[np.ndarray, np.ndarray, np.ndarray], bool]] = None, check_gap: float = 0.2,
             options: IpmOptions = IpmOptions()) -> LpSolution:
    """Solve ``min cᵀz s.t. A z + s = b, s ≥ 0`` by Mehrotra's predictor–corrector [1]_.

    Bounded dense columns (``z_j ≥ 0`` and no other bound: the beamlet weights) that the
    iterates drive to zero leave the system; at the restricted optimum those left out are
    priced and the ones with a negative reduced cost come back (never dropped again) until none
    is negative, so the answer is the optimum of the whole LP whatever was dropped.

    Parameters
    ----------
    c : ndarray, shape (n,)
    a : scipy.sparse matrix, shape (m, n)
        The matrix, or with ``shared`` its entries outside the shared rows' block.
    b : ndarray, shape (m,)
    shared : SharedRows, optional
        Dense rows given once for the several rows of ``A`` that share them (``A = a +
        shared``); each enters the ``syrk`` once.
    start : (z, s, lam), optional
        An iterate to start from instead of Mehrotra's point, in the caller's variables (as
        :class:`LpSolution` gives them): ``z`` finite, ``s`` and ``lam`` NaN for the rows it does
        not know (a warm start after rows were added).  A failed warm run restarts from
        Mehrotra's point.
    check : callable, optional
        ``check(z, s, lam) -> bool``, called once, with the first iterate whose relative gap is
        at most ``check_gap`` (caller's variables; ``s``, ``lam`` NaN on the rows out of the
        system).  True ends the solve there with status ``INTERRUPTED`` and that iterate, for
        the caller to change the LP and go on from it with ``start``.
    check_gap : float
    options : IpmOptions
        Tolerances and the solver's settings.

    Returns
    -------
    LpSolution
        ``status``: an :class:`LpStatus`.  ``INFEASIBLE`` carries a Farkas certificate in
        ``lam``, ``UNBOUNDED`` a primal ray in ``z`` (see :mod:`optimizer._schur_ipm_iterate`).

    Raises
    ------
    StructureError
        ``a`` is not a dense-column LP (see :func:`find_structure`).
    constraints.errors.InputError
        ``c``, ``a``, ``b`` or ``start`` of inconsistent shapes, or ``options`` not an IpmOptions.
    """
    import scipy.sparse as sp

    if not isinstance(options, IpmOptions):
        raise InputError(f"options: expected an IpmOptions, got {type(options).__name__}")
    opts = options
    t0 = time.perf_counter()
    a0 = sp.csr_matrix(a, dtype=np.float64)
    m, n = a0.shape
    if np.shape(c) != (n,) or np.shape(b) != (m,):
        raise InputError(f"solve_lp: A is {m} × {n}, so c must have shape ({n},) and b ({m},); "
                         f"got {np.shape(c)} and {np.shape(b)}")
    if start is not None:
        z0, s0, lam0 = (np.asarray(v, dtype=np.float64) for v in start)
        if z0.shape != (n,) or s0.shape != (m,) or lam0.shape != (m,) or not np.isfinite(z0).all():
            raise InputError(f"start: expected (z, s, lam) with z finite of shape ({n},) and s, lam of shape ({m},); "
                             f"got shapes {z0.shape}, {s0.shape}, {lam0.shape}")
    rs, cs = _ruiz(a0, opts.ruiz_passes, shared)
    a_sc = a0.copy()
    a_sc.data *= rs[np.repeat(np.arange(m), np.diff(a0.indptr))] * cs[a0.indices]
    b_sc, c_sc = rs * np.asarray(b, dtype=np.float64), cs * np.asarray(c, dtype=np.float64)
    nb, nc = 1.0 + np.abs(b_sc).max(initial=0.0), 1.0 + np.abs(c_sc).max(initial=0.0)
    shared_sc = None if shared is None else SharedRows(          # the block's columns scaled into u
        block=shared.block, rows=shared.rows, group=shared.group, factor=shared.factor * rs[shared.rows],
        cols=shared.cols)
    full = find_structure(a_sc, shared_sc, None if shared is None else cs[shared.cols],
                          sparse_column_max_nnz=opts.sparse_column_max_nnz, max_linking_rows=opts.max_linking_rows)
    del shared_sc
    bcols, brows, bcoef = _bounded_columns(full, b_sc, n)
    bound_row = np.full(n, -1, dtype=np.int64)
    bound_row[bcols] = brows
    bound_col = np.full(m, -1, dtype=np.int64)
    bound_col[brows] = bcols
    u32 = full.u.astype(np.float32)
    whole = _Lp(b_sc, c_sc, full, np.arange(n), np.arange(m), np.empty_like(full.u), u32, np.empty_like(u32))
    out = np.zeros(n, bool)               # columns fixed at 0 (left out of the system)
    pinned = np.zeros(n, bool)            # priced back in: never dropped again
    first_drop = None                     # the iterate before the first drop (every column in)
    priced_in = 0
    lp = whole
    run = None if start is None else _warm_run(lp, (z0 / cs)[lp.cols], (s0 * rs)[lp.rows], (lam0 / rs)[lp.rows])
    warm = run is not None                # a warm run that fails starts again from Mehrotra's point
    if run is None:
        run = _fresh_run(lp, 0, opts)
    started_at = 0                        # iterations before the last start from Mehrotra's point
    checked = check is None
    while True:
        droppable = np.zeros(m, bool)
        droppable[bound_row[bcols[~out[bcols] & ~pinned[bcols]]]] = True
        status, flagged = _iterate(lp, run, opts, nb=nb, nc=nc, max_iter=started_at + opts.max_iter,
                                   droppable=droppable[lp.rows], check_gap=-1.0 if checked else check_gap)
        if status == "check":
            checked = True
            z, s, lam = _full(lp, run, n, m, fill=np.nan)
            if check(cs * z, s / rs, rs * lam):
                status = LpStatus.INTERRUPTED
                break
            continue
        z, s, lam = _full(lp, run, n, m)
        restart = False                       # from Mehrotra's start on the whole LP
        resume = False                        # from run's resume point, with the priced-in columns back in
        if warm and status not in (LpStatus.OPTIMAL, "drop"):
            warm, restart = False, True
        elif status == "drop":
            if first_drop is None:
                first_drop = (run.iterations, z, s, lam)
            out[bound_col[lp.rows[flagged]]] = True
        elif not out.any():
            break
        elif status != LpStatus.OPTIMAL:      # the restriction may be what failed: the whole LP, no drops
            pinned[:] = True
            if first_drop is None:
                restart = True
            else:
                run.iterations, z, s, lam = first_drop
                run.resume_point = None
                out = np.zeros(n, bool)
        else:
            left = np.flatnonzero(out)
            reduced = c_sc[left] + _at_dot(full, lam)[left]
            if not (reduced < -opts.tol_feas * nc).any():
                coef = np.zeros(n)
                coef[bcols] = bcoef
                lam[bound_row[left]] = np.maximum(reduced, 0.0) / coef[left]
                break
            back = left[reduced < opts.price_margin * float(np.median(np.abs(reduced)))]
            priced_in += back.size
            pinned[back] = True
            if back.size > opts.resume_max_share * lp.st.dense_cols.size:
                run.iterations, z, s, lam = first_drop   # back to before the first drop; the others may drop again
                run.resume_point = None
                out = np.zeros(n, bool)
            else:                                  # late in the run that ended, with them back in
                out &= ~pinned
                z, s, lam = _full(*run.resume_point, n, m, fill=np.nan)
                resume = True
        if restart:
            out, first_drop = np.zeros(n, bool), None
        lp = _restrict(whole, out, bound_row, None if lp is whole else lp) if out.any() else whole
        if restart:
            run = _fresh_run(lp, run.iterations, opts)
            started_at = run.iterations
        elif resume:
            iterations = run.iterations
            run = _warm_run(lp, z[lp.cols], s[lp.rows], lam[lp.rows])
            run.iterations = iterations
        else:
            run.z, run.s, run.lam = z[lp.cols], s[lp.rows], lam[lp.rows]
    z_out, s_out, lam_out = cs * z, s / rs, rs * lam
    return LpSolution(status=status, z=z_out, s=s_out, lam=lam_out, objective=float(np.asarray(c) @ z_out),
                      iterations=run.iterations, primal_residual=run.rp_rel, dual_residual=run.rd_rel,
                      gap=run.gap_rel, solve_s=time.perf_counter() - t0, columns_out=int(out.sum()),
                      columns_priced_in=priced_in)
