"""Primal–dual interior point for LPs with a few dense columns (private; numpy/scipy).

The LP is cvxpy's conic form with nonnegative cones only::

    minimize  cᵀz   subject to   A z + s = b,   s ≥ 0          (dual: Aᵀλ + c = 0, λ ≥ 0)

Fluence-map LPs have a special shape that general sparse solvers do not exploit:
a few thousand **dense columns** (the beamlet weights ``y`` and the CVaR thresholds
``ζ``, each in thousands of rows) and many **sparse columns** (the epigraph
variables of the hinge terms, in two or three rows each).  Eliminating the sparse
columns analytically leaves a system in the dense columns only, whose matrix
``Σ_i W_i a_iᵀ a_i`` is one BLAS ``syrk`` of the dense rows: 6 000 rows × 1 389
beamlets take 0.2 s here, where IPX and Clarabel take tens of seconds per
iteration on the same rows.

Row and column classes (:class:`LpStructure`, found once per problem):

* dense columns ``D``: any column in more than ``4`` rows, plus every sparse
  candidate that would couple two dense rows;
* linking rows ``L``: rows holding two or more sparse columns (the CVaR sums
  ``ζ + Σ w t ≤ 0``); they stay in the reduced system as extra unknowns (k × k);
* ``P``: the other rows touching a dense column; each holds at most one sparse
  column, and every sparse column sits in at most one ``P`` row.  Under these rules
  ``M_SS`` (the sparse block of ``AᵀΘ⁻¹A``) is diagonal and the elimination is exact.

Newton system of each iteration (Θ = s/λ, d = 1/Θ), solved by block elimination:

    A Δz − Θ Δλ = r̃ := r_p − r_c/λ,      AᵀΔλ = r_d,      Δs = (r_c − s∘Δλ)/λ

    non-linking rows:  Δλ_N = d_N ∘ (A_N Δz − r̃_N)
    M = A_NᵀD_N A_N + δI;   W_i = d_i R_j / M_jj  (row i ∈ P with sparse column j;
        R_j = M_jj − d_i a_ij², summed without row i so that it does not cancel)
    H = A_PDᵀ diag(W) A_PD + δI          (the syrk)
    [H  Bᵀ; B  −C] [Δz_D; Δλ_L] = ...    (k linking rows; Cholesky of H + BᵀC⁻¹B)

Products with ``A`` (residuals, right-hand sides) go through the same parts: the dense block
by BLAS, the sparse columns as CSR (default-size T4–T5 round 2: 24.3 s → 22.2 s against the
whole matrix as CSR).

**Shared rows** (:class:`SharedRows`): an FMO voxel's influence row is the dense part of its
hinge row, its bound row and its CVaR rows, up to a factor (±1).  Given once with the rows
that use it, it enters ``H`` once, weighted by ``Σ_k W_k f_k²`` over those rows, and the
products with ``A`` once; the CVaR thresholds ``ζ`` of such rows stay a sparse part ``e_pd``
(cross terms added to ``H``).  2 mm dose grid T4–T5: 22 632 distinct rows for 45 933 ``P``
rows.

Steps: Mehrotra's predictor–corrector [1]_ with Mehrotra's starting point, Gondzio's
centrality correctors [4]_ and separate primal and dual step lengths, on a
Ruiz-equilibrated copy of the data [2]_.

Column generation [5]_: most beamlets end at zero weight (973 of 1 389 at the default-size
T4–T5 optimum).  The bound row ``−y_j + s = 0`` of such a beamlet has ``s/λ → 0``; once a
quarter of the beamlets still in the system are below :data:`DROP_RATIO` of the largest
ratio, they are fixed at 0 and leave it (their columns and bound rows removed; the
iterations go on from the same iterate, which the infeasible-start method allows).  At
the optimum of the restricted LP every beamlet left out is priced with its duals,
``c_j + a_jᵀλ``; if any is negative, those (and the ones near zero, :data:`PRICE_MARGIN`)
are pinned in and the iterations resume, with them back in, from the first iterate of the
restricted run whose relative gap was at most :data:`RESUME_GAP` (their bound rows centred at its
μ), or, when many came back, from the iterate before the first drop.  So the answer is the
optimum of the whole LP, with the dual of each dropped bound row set to its reduced cost.
Default-size T4–T5 round 2: 11 iterations with 1 394 dense columns, then
1 028, 769 and 498 (15 iterations): 23.8 s against 31.7 s.  The restricted LP's structure is
the whole one's, sub-set (:func:`_restrict`; 2 mm dose grid round 3: 45.2 s → 40.9 s).  A
caller that knows which beamlets the optimum is likely to use (an earlier, similar LP's) may
start with only those (``columns_hint``); the others are priced like dropped ones, and one that
prices in restarts the solve with it.

**Check and warm start**: ``check`` sees the first iterate whose relative gap is at most
``check_gap`` and may stop the solve there (status 'interrupted'); ``start`` continues from a
given iterate, whose rows unknown to it (NaN) are centred at its μ (:func:`_warm_run`).  The
FMO uses them to add the constraint rows a half-solved round predicts and to go on from there
instead of solving again from Mehrotra's point (:mod:`optimizer.fmo`).  A warm run that fails
starts again from Mehrotra's point.

Cost per iteration: ``|P| · n_D²`` for the ``syrk`` plus ``n_D³ / 3`` for the Cholesky
(n_D ≈ beamlets still in the system), and memory ``2 · |P| · n_D`` doubles.  At 1 389
beamlets and 17 000 rows that is 0.65 s and 380 MB; at 10⁴ beamlets the ``syrk`` alone
would cost ~50 times more, and a sparse-row solver (HiGHS) may then be the better choice.

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

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

_log = logging.getLogger(__name__)

__all__ = ["SOLVER_NAME", "SharedRows", "LpStructure", "LpSolution", "StructureError", "find_structure",
           "solve_lp"]

#: The name cvxpy and :class:`optimizer.fmo.FmoOptions` know this solver by.
SOLVER_NAME = "SCHUR_IPM"

#: A column in at most this many rows is a candidate sparse column.
SPARSE_COLUMN_MAX_NNZ = 4
#: More linking rows than this: the reduced system is no longer small.
MAX_LINKING_ROWS = 200
#: Column generation: a bound row whose ratio ``s/λ`` falls below this fraction of the largest
#: marks its column as going to zero (default-size t4t5 round 2: at 1e-6, 366 of 1 389
#: beamlets by iteration 12 and none of them wrongly; at 1e-4, 936 by iteration 12, of which 9
#: are non-zero at the optimum, and two returns by pricing made that solve 35.7 s against 23.8 s) ...
DROP_RATIO = 1e-6
#: ... and such columns leave the system when they are at least this fraction of the
#: beamlets still droppable.
DROP_MIN_FRACTION = 0.25
#: ... and only once the relative gap is below this (a start restricted by a hint spreads the
#: ratios early: 2 mm dose grid, drops at gap 1.1 and 41 iterations after them, against the
#: first drop at gap 0.024 of the whole LP).  0.15 against 0.05 (with :data:`RESUME_GAP`), four
#: cases run in turn, three times: C7–T1 at 2 mm 24.3–26.6 s → 20.6–23.8 s (24 iterations with
#: every beamlet → 6); T4–T5 at 2 mm 34.2–36.2 s → 33.6–36.4 s (7 such iterations instead of 10,
#: 48 in all against 50); default-size T4–T5 22.4–23.3 → 20.3–20.6 s (its return by pricing
#: resumed, 49 iterations against 51–60) and C7–T1 12.1 → 12.9–13.0 s (the same 39).
DROP_GAP = 0.15
#: When any column left out prices in, so do those whose reduced cost is below this
#: fraction of the median over the columns left out (they would be next).
PRICE_MARGIN = 0.05
#: ... and when they are few (:data:`RESUME_MAX_SHARE`), the iterations resume, with them back
#: in, from the first iterate of the run that ended whose relative gap was at most this (their
#: bound rows centred at its μ by :func:`_warm_run`; at most the solve's ``tol_gap``).
#: Default-size T4–T5, three columns priced in at the end: 19 iterations after the return from
#: the iterate before the first drop, 19 after resuming from gap 1e-2, 14 from 1e-3, 15 from
#: 1e-4, 44 from 1e-5 (a start too near the boundary).
RESUME_GAP = 1e-3
#: ... else (more than this share of the dense columns in the system come back: the restricted
#: optimum was far from the whole one) the iterations go back to the iterate before the first
#: drop, with every column not pinned droppable again.  Eager drops on the small test LPs (28–38
#: columns back to a system of 3–10): resumed from gap 1e-3, the iterations stalled near gap 2e-2.
RESUME_MAX_SHARE = 0.05
#: Restarts for columns a ``columns_hint`` wrongly left out before the hint is dropped.
HINT_MISSES = 1
#: While the relative gap is above this, ``H``'s sum runs in float32 (``ssyrk``: 0.46 s against
#: 0.76 s for 22 632 × 1 395); the directions are then inexact, which the infeasible-start
#: iterations absorb (their residuals are always computed in float64).  2 mm dose grid T4–T5:
#: the same iterations, 59.5 s → 47.7 s; ``inf``: float64 throughout.  The solves' products with
#: the distinct rows (memory-bound gemvs) then run in float32 too: 15 → 8 ms each at 27 068 × 1 394
#: (:class:`_Rows`; 2 mm T4–T5, with the copies saved in the setup at the same time: 40.5 s → 32 s).
SINGLE_PRECISION_GAP = 1e-2
#: Below :data:`SINGLE_PRECISION_GAP`, ``H`` is summed in float64 over the rows that carry all but
#: this share of its trace (``Σ_g ω_g ‖u_g‖²``) and in float32 over the others, and the solves'
#: products follow the same split (:class:`_Rows`).  The float32 part's rounding is then below
#: float64's own on the whole sum; in the tail of a solve most rows are inactive (``ω`` → 0).
#: 2 mm dose grid T4–T5, 27 067 rows × 541 beamlets: float64 for 13 500 rows at gap 1e-2, for 400
#: at the end; the same iterations to gap 1e-4 and one fewer in all (38), 0.47 → 0.39 s each, the
#: solve 40.4 s → 36.9 s (runs interleaved on this machine).  ``0``: float64 throughout.
DOUBLE_PRECISION_SHARE = 1e-7
#: Diagonal regularization δ of the reduced system.
REGULARIZATION = 1e-10
#: Fraction of the step to the boundary taken (default-size t4t5 round 2: 34 iterations at
#: 0.995, 35 with the classic max(0.9, 1 − μ), 37 at 0.99).
STEP_FRACTION = 0.995


class StructureError(ValueError):
    """The LP does not have the dense-column shape this solver needs."""


@dataclass(frozen=True, eq=False)
class SharedRows:
    """Dense rows that several rows of ``A`` share up to a factor (given apart from ``A``'s CSR).

    Row ``rows[k]`` of ``A`` holds ``factor[k] · block[group[k]]`` in the columns ``cols``
    (and its other entries in the CSR part, which has none in ``cols`` on these rows).  An
    FMO voxel's influence row appears in its hinge row, its bound row and its CVaR rows
    with factors ±1: the normal matrix needs it once, weighted by the sum over those rows
    (``Σ_k W_k factor_k² · u uᵀ``), and the products with ``A`` once per product.

    Attributes
    ----------
    block : ndarray, shape (n_unique, len(cols))
    rows, group : ndarray of int, shape (K,)
        Distinct rows of ``A``; each one's row of ``block``.
    factor : ndarray, shape (K,)
    cols : ndarray of int
        Distinct columns of ``A``; they are dense columns.
    """

    block: np.ndarray
    rows: np.ndarray
    group: np.ndarray
    factor: np.ndarray
    cols: np.ndarray

    def __post_init__(self) -> None:
        k = self.rows.size
        if self.block.ndim != 2 or self.block.shape[1] != self.cols.size:
            raise StructureError(f"SharedRows: block must be (n_unique, {self.cols.size}), got {self.block.shape}")
        if self.group.shape != (k,) or self.factor.shape != (k,):
            raise StructureError("SharedRows: rows, group and factor must have the same length")
        if k and (self.group.min() < 0 or self.group.max() >= self.block.shape[0]):
            raise StructureError(f"SharedRows: group must index the {self.block.shape[0]} rows of block")
        if np.unique(self.rows).size != k or np.unique(self.cols).size != self.cols.size:
            raise StructureError("SharedRows: rows and cols must be distinct")

    def tocsr(self, shape: "tuple[int, int]") -> Any:
        """The shared part as a CSR matrix of ``shape`` (``A`` = CSR part + this)."""
        import scipy.sparse as sp

        vals = self.factor[:, None] * self.block[self.group]
        return sp.csr_matrix((vals.ravel(), (np.repeat(self.rows, self.cols.size), np.tile(self.cols, self.rows.size))),
                             shape=shape)


@dataclass(frozen=True, eq=False)
class LpStructure:
    """Row and column classes of ``A`` (see the module docstring).

    Attributes
    ----------
    dense_cols, sparse_cols : ndarray of int
    link_rows : ndarray of int, shape (k,)
    p_rows : ndarray of int
        Rows (not linking) with at least two dense entries or a sparse entry and a
        dense one, or with a shared row: their dense parts form
        ``a_pd = diag(p_factor) · u[p_group] + e_pd``.
    bound_rows, bound_cols, bound_coef : ndarray
        Rows with a single dense entry and no sparse one (``y ≥ 0``), the position of
        that entry in ``dense_cols`` and its value: diagonal terms of ``H``.
    u : ndarray, shape (n_unique, len(dense_cols)), C order
        The distinct dense rows: the shared block (0 outside its columns), then the dense
        part of every P row without a shared row.
    p_group, p_factor : ndarray, shape (len(p_rows),)
        Each P row's row of ``u`` and factor.
    e_pd : scipy.sparse.csr_matrix (len(p_rows), len(dense_cols)) or None
        Dense-column entries of shared P rows outside the shared columns (the CVaR ``ζ``).
    p_sparse : ndarray of int, shape (len(p_rows),)
        Position in ``sparse_cols`` of each P row's sparse column, or −1.
    p_coef : ndarray, shape (len(p_rows),)
        That sparse column's coefficient in the row (0 without).
    a_sq_rest : scipy.sparse.csr_matrix, shape (m, len(sparse_cols))
        Squared sparse-column entries of the rows that are neither P nor linking.
    a_ls, a_ld : sparse (k, len(sparse_cols)) and ndarray (k, len(dense_cols))
        The linking rows' sparse and dense parts.
    a_ls_at_p : scipy.sparse.csr_matrix, shape (k, len(p_rows))
        ``A[l, sparse column of P row i]``.
    non_link : ndarray of bool, shape (m,)
    a_s, a_s_t : scipy.sparse.csr_matrix, shapes (m, len(sparse_cols)) and its transpose
        The sparse columns (every row): with ``a_pd``, the bound rows and ``a_ld`` they make
        the whole matrix, so products with ``A`` never go through its dense part as CSR.
    """

    dense_cols: np.ndarray
    sparse_cols: np.ndarray
    link_rows: np.ndarray
    p_rows: np.ndarray
    bound_rows: np.ndarray
    bound_cols: np.ndarray
    bound_coef: np.ndarray
    u: np.ndarray
    p_group: np.ndarray
    p_factor: np.ndarray
    e_pd: Any
    p_sparse: np.ndarray
    p_coef: np.ndarray
    a_sq_rest: Any
    a_ls: Any
    a_ls_at_p: Any
    a_ld: np.ndarray
    non_link: np.ndarray
    a_s: Any
    a_s_t: Any


def find_structure(a: Any, shared: "SharedRows | None" = None,
                   block_scale: "np.ndarray | None" = None) -> LpStructure:
    """Classify the rows and columns of ``a`` (scipy.sparse, m × n), plus ``shared`` rows if given.

    ``block_scale`` (one factor per ``shared.cols``) scales the block's columns as it is copied
    into :attr:`LpStructure.u` (an equilibrated copy without a second copy of the block).

    Raises
    ------
    StructureError
        More than :data:`MAX_LINKING_ROWS` linking rows, ``a`` has entries where
        ``shared`` puts its block, or ``block_scale`` is not one factor per shared column.
    """
    import scipy.sparse as sp

    a = sp.csr_matrix(a)
    m, n = a.shape
    pattern = a.copy()
    pattern.data = np.ones_like(pattern.data)
    pattern_t = pattern.T.tocsr()
    count = np.bincount(a.indices, minlength=n)
    shared_at = np.full(m, -1, dtype=np.int64)      # each row's index in shared.rows, or −1
    forced_dense = np.zeros(n, bool)
    if shared is not None:
        if shared.rows.size and (shared.rows.max() >= m or shared.cols.max() >= n):
            raise StructureError(f"SharedRows: rows and cols must index the {m} × {n} LP")
        if a[shared.rows][:, shared.cols].nnz:
            raise StructureError("SharedRows: the CSR part has entries in the shared rows' shared columns")
        shared_at[shared.rows] = np.arange(shared.rows.size)
        forced_dense[shared.cols] = True
        block_scale = np.ones(shared.cols.size) if block_scale is None else np.asarray(block_scale, dtype=np.float64)
        if block_scale.shape != shared.cols.shape:
            raise StructureError(f"block_scale: expected one factor per shared column, shape {shared.cols.shape}; "
                                 f"got shape {block_scale.shape}")
    elif block_scale is not None:
        raise StructureError("block_scale: given without shared rows to scale")
    in_shared_row = shared_at >= 0
    sparse = (count <= SPARSE_COLUMN_MAX_NNZ) & ~forced_dense
    while True:
        n_sparse_in_row = pattern @ sparse.astype(np.float64)
        n_dense_in_row = pattern @ (~sparse).astype(np.float64) + in_shared_row * forced_dense.sum()
        link = n_sparse_in_row >= 2
        touches_dense = ~link & (n_dense_in_row >= 1)
        p_per_col = pattern_t @ touches_dense.astype(np.float64)
        only_linking = (count > 0) & (pattern_t @ (~link).astype(np.float64) == 0)
        bad = sparse & ((p_per_col > 1) | only_linking)      # only linking: M_jj would be δ alone
        if not bad.any():
            break
        sparse &= ~bad
    if link.sum() > MAX_LINKING_ROWS:
        raise StructureError(f"{int(link.sum())} rows hold two or more sparse columns (at most "
                             f"{MAX_LINKING_ROWS} allowed): not a dense-column LP")
    dense_cols, sparse_cols = np.flatnonzero(~sparse), np.flatnonzero(sparse)
    bound = touches_dense & (n_dense_in_row == 1) & (n_sparse_in_row == 0) & ~in_shared_row
    p = touches_dense & ~bound
    p_rows, bound_rows = np.flatnonzero(p), np.flatnonzero(bound)
    a_cd = a[:, dense_cols].tocsr()
    a_cs = a[:, sparse_cols].tocsr()
    b_sub = a_cd[bound_rows].tocoo()
    bound_cols = np.zeros(bound_rows.size, dtype=np.int64)
    bound_coef = np.zeros(bound_rows.size)
    bound_cols[b_sub.row] = b_sub.col
    bound_coef[b_sub.row] = b_sub.data
    ps = a_cs[p_rows].tocoo()
    p_sparse = np.full(p_rows.size, -1, dtype=np.int64)
    p_coef = np.zeros(p_rows.size)
    p_sparse[ps.row] = ps.col
    p_coef[ps.row] = ps.data
    rest = ~link & ~p
    a_rest = a_cs.multiply(rest[:, None]).tocsr()
    a_sq_rest = a_rest.multiply(a_rest).tocsr()
    a_sq_rest.eliminate_zeros()
    link_rows = np.flatnonzero(link)
    a_ls = a_cs[link_rows].tocsr()
    has = np.flatnonzero(p_sparse >= 0)
    sub = a_ls[:, p_sparse[has]].tocoo()
    a_ls_at_p = sp.csr_matrix((sub.data, (sub.row, has[sub.col])), shape=(link_rows.size, p_rows.size))
    u, p_group, p_factor, e_pd = _dense_rows(a_cd, p_rows, dense_cols, shared_at, shared, block_scale)
    a_ld = a_cd[link_rows].toarray()
    if shared is not None and (link & in_shared_row).any():     # a shared row that links: written out
        k = shared_at[link_rows]
        a_ld[np.ix_(np.flatnonzero(k >= 0), np.searchsorted(dense_cols, shared.cols))] += (
            shared.factor[k[k >= 0], None] * shared.block[shared.group[k[k >= 0]]] * block_scale)
    return LpStructure(dense_cols=dense_cols, sparse_cols=sparse_cols, link_rows=link_rows, p_rows=p_rows,
                       bound_rows=bound_rows, bound_cols=bound_cols, bound_coef=bound_coef,
                       u=u, p_group=p_group, p_factor=p_factor, e_pd=e_pd, p_sparse=p_sparse, p_coef=p_coef,
                       a_sq_rest=a_sq_rest, a_ls=a_ls, a_ls_at_p=a_ls_at_p, a_ld=a_ld,
                       non_link=~link, a_s=a_cs, a_s_t=a_cs.T.tocsr())


def _dense_rows(a_cd: Any, p_rows: np.ndarray, dense_cols: np.ndarray, shared_at: np.ndarray,
                shared: "SharedRows | None", block_scale: "np.ndarray | None"
                ) -> "tuple[np.ndarray, np.ndarray, np.ndarray, Any]":
    """``u``, ``p_group``, ``p_factor`` and ``e_pd`` of :class:`LpStructure`: the shared block,
    its columns times ``block_scale`` (placed at their positions among ``dense_cols``), and after
    it one row of ``u`` per P row without a shared row (``shared_at``: each row's index in
    ``shared.rows``, or −1)."""
    k = shared_at[p_rows]
    is_own = k < 0
    own = p_rows[is_own]
    n_sh = 0 if shared is None else shared.block.shape[0]
    u = np.zeros((n_sh + own.size, dense_cols.size))
    p_group = np.empty(p_rows.size, dtype=np.int64)
    p_factor = np.ones(p_rows.size)
    p_group[is_own] = n_sh + np.arange(own.size)
    u[n_sh:] = a_cd[own].toarray()
    e_pd = None
    if shared is not None:
        at = np.searchsorted(dense_cols, shared.cols)
        if at.size and np.array_equal(at, np.arange(at[0], at[0] + at.size)):   # a slice copies 4× faster than
            np.multiply(shared.block, block_scale, out=u[:n_sh, at[0]:at[0] + at.size])   # the fancy index
        else:
            u[:n_sh, at] = shared.block * block_scale
        p_group[~is_own] = shared.group[k[~is_own]]
        p_factor[~is_own] = shared.factor[k[~is_own]]
        e = a_cd[p_rows].multiply((~is_own)[:, None]).tocsr()
        e.eliminate_zeros()
        e_pd = e if e.nnz else None
    return u, p_group, p_factor, e_pd


@dataclass(frozen=True, eq=False)
class _Rows:
    """The precision of one Newton system's products with the distinct rows ``u``.

    The rows are multiplied through ``u32`` (their float32 copy: half the memory traffic of these
    memory-bound products), except the rows ``double`` (``u_double = u[double]``), which are
    multiplied in float64; a product that leaves float32's range (diverging iterates) is redone
    in float64.
    """

    u32: np.ndarray
    double: "np.ndarray | None" = None
    u_double: "np.ndarray | None" = None

    def dot(self, u: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``u @ x``."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = (self.u32 @ x.astype(np.float32)).astype(np.float64)
        if not np.isfinite(out).all():
            return u @ x
        if self.double is not None:
            out[self.double] = self.u_double @ x
        return out

    def tdot(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``uᵀ v``."""
        with np.errstate(over="ignore", invalid="ignore"):
            v32 = v.astype(np.float32)
            if self.double is not None:
                v32[self.double] = 0.0
            out = (self.u32.T @ v32).astype(np.float64)
        if not np.isfinite(out).all():
            return u.T @ v
        if self.double is not None:
            out += self.u_double.T @ v[self.double]
        return out


def _pd_dot(st: LpStructure, x_d: np.ndarray, rows: "_Rows | None" = None) -> np.ndarray:
    """``a_pd @ x_d`` (the P rows' dense parts; BLAS on the distinct rows ``u``, in float64 or as
    ``rows`` says)."""
    out = st.p_factor * (st.u @ x_d if rows is None else rows.dot(st.u, x_d))[st.p_group]
    if st.e_pd is not None:
        out += st.e_pd @ x_d
    return out


def _a_dot(st: LpStructure, z: np.ndarray, a_pd_z: "np.ndarray | None" = None) -> np.ndarray:
    """``A z`` from the parts of ``st`` (the dense block through BLAS; ``a_pd_z``: its product
    ``a_pd @ z_D`` when the caller has it already)."""
    z_d = z[st.dense_cols]
    out = np.asarray(st.a_s @ z[st.sparse_cols]).ravel()
    out[st.p_rows] += _pd_dot(st, z_d) if a_pd_z is None else a_pd_z
    out[st.bound_rows] += st.bound_coef * z_d[st.bound_cols]
    if st.link_rows.size:
        out[st.link_rows] += st.a_ld @ z_d
    return out


def _at_dense(st: LpStructure, y_p: np.ndarray, y: np.ndarray, rows: "_Rows | None" = None) -> np.ndarray:
    """The dense columns' part of ``Aᵀ y`` from the ``P`` rows (``y_p``) and the bound rows, without
    the linking rows (``rows``: as :func:`_pd_dot`)."""
    v = np.bincount(st.p_group, st.p_factor * y_p, minlength=st.u.shape[0])
    out = st.u.T @ v if rows is None else rows.tdot(st.u, v)
    if st.e_pd is not None:
        out += st.e_pd.T @ y_p
    return out + np.bincount(st.bound_cols, st.bound_coef * y[st.bound_rows], minlength=st.dense_cols.size)


def _at_dot(st: LpStructure, y: np.ndarray) -> np.ndarray:
    """``Aᵀ y`` from the parts of ``st``."""
    out = np.empty(st.dense_cols.size + st.sparse_cols.size)
    out_d = _at_dense(st, y[st.p_rows], y)
    if st.link_rows.size:
        out_d += st.a_ld.T @ y[st.link_rows]
    out[st.dense_cols] = out_d
    out[st.sparse_cols] = np.asarray(st.a_s_t @ y).ravel()
    return out


@dataclass(frozen=True, eq=False)
class LpSolution:
    """Outcome of :func:`solve_lp` (in the caller's, unscaled, variables).

    Attributes
    ----------
    status : {'optimal', 'infeasible', 'max_iter', 'numerical_error'}
    z, s, lam : ndarray
        Primal variables, slacks and duals of the last iterate (whatever the status).
    objective : float
    iterations : int
    primal_residual, dual_residual, gap : float
        Relative residuals at the end (see :func:`solve_lp`).
    solve_s : float, s
    columns_out : int
        Columns left out of the system at the end (fixed at 0, priced out).
    columns_priced_in : int
        Dropped columns that pricing brought back (with :data:`PRICE_MARGIN`).
    """

    status: str
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


def _segment_max(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Maximum of each segment ``values[indptr[i]:indptr[i+1]]`` (0 for an empty one)."""
    out = np.zeros(indptr.size - 1)
    full = np.diff(indptr) > 0
    if full.any():
        out[full] = np.maximum.reduceat(values, indptr[:-1][full])
    return out


def _ruiz(a: Any, passes: int, shared: "SharedRows | None" = None) -> "tuple[np.ndarray, np.ndarray]":
    """Row and column factors that bring every row's and column's ∞-norm of ``a`` (plus
    ``shared``) near 1 [2]_.

    The shared block's maxima are taken in float32 in one work array (the factors are a
    scaling, not data: they differ from float64's by about 1e-7; 2 mm dose grid, 22 319 ×
    1 394: 2.4 s → 0.6 s for 5 passes).
    """
    import scipy.sparse as sp

    csr, csc = sp.csr_matrix(a), sp.csc_matrix(a)
    m, n = a.shape
    r, c = np.ones(m), np.ones(n)
    mag_csr, mag_csc = np.abs(csr.data), np.abs(csc.data)
    if shared is not None:
        mag_b, fac = np.abs(shared.block.astype(np.float32)), np.abs(shared.factor)
        work = np.empty_like(mag_b)
    for _ in range(passes):             # max_j |a_ij| r_i c_j = r_i · max_j |a_ij| c_j (and by column)
        rn = r * _segment_max(mag_csr * c[csr.indices], csr.indptr)
        cn = c * _segment_max(mag_csc * r[csc.indices], csc.indptr)
        if shared is not None:          # a shared row k: |f_k| r_k · max_j |u_gj| c_j; by column, the max over g
            rows, cols = shared.rows, shared.cols
            np.multiply(mag_b, c[cols].astype(np.float32), out=work)
            row_max = work.max(axis=1, initial=0.0).astype(np.float64)
            rn[rows] = np.maximum(rn[rows], r[rows] * fac * row_max[shared.group])
            alpha = np.zeros(mag_b.shape[0])
            np.maximum.at(alpha, shared.group, fac * r[rows])
            np.multiply(mag_b, alpha.astype(np.float32)[:, None], out=work)
            cn[cols] = np.maximum(cn[cols], c[cols] * work.max(axis=0, initial=0.0))
        r /= np.sqrt(np.where(rn > 0, rn, 1.0))
        c /= np.sqrt(np.where(cn > 0, cn, 1.0))
    return r, c


def _sum_h(lp: "_Lp", omega: np.ndarray, precision: str) -> "tuple[np.ndarray, _Rows | None]":
    """``Σ_g ω_g u_gᵀu_g`` (upper triangle, float64, Fortran order) by ``syrk``, and the precision of
    the solves' products that goes with it.

    ``precision``: 'single' (the sum in float32, from ``lp.u32``), 'mixed' (float64 over the rows
    that carry all but :data:`DOUBLE_PRECISION_SHARE` of the trace, float32 over the others) or
    'double'.
    """
    from scipy.linalg import blas

    u = lp.st.u
    n_d = u.shape[1]
    if not u.shape[0]:
        return np.zeros((n_d, n_d), order="F"), None
    if precision == "double" or (precision == "mixed" and DOUBLE_PRECISION_SHARE <= 0):
        np.multiply(u, np.sqrt(omega)[:, None], out=lp.work)
        return blas.dsyrk(1.0, lp.work.T, trans=0, lower=0), None
    scale32 = np.sqrt(omega).astype(np.float32)
    double = None
    if precision == "mixed":
        share = omega * lp.row_sq
        order = np.argsort(share)
        cut = int(np.searchsorted(np.cumsum(share[order]), DOUBLE_PRECISION_SHARE * float(share.sum()), side="right"))
        double = np.sort(order[cut:])
        scale32[double] = 0.0
    np.multiply(lp.u32, scale32[:, None], out=lp.work32)
    h = np.asfortranarray(blas.ssyrk(1.0, lp.work32.T, trans=0, lower=0), dtype=np.float64)
    if double is None:
        return h, _Rows(lp.u32)
    u_double = np.take(u, double, axis=0)
    work = lp.work[:double.size]
    np.multiply(u_double, np.sqrt(omega[double])[:, None], out=work)
    h = blas.dsyrk(1.0, work.T, beta=1.0, c=h, trans=0, lower=0, overwrite_c=1)
    return h, _Rows(lp.u32, double, u_double)


class _Newton:
    """The factorized Newton system of one iterate (notation of the module docstring); ``H`` summed
    and the solves' products taken in the ``precision`` of :func:`_sum_h`."""

    def __init__(self, lp: "_Lp", s: np.ndarray, lam: np.ndarray, reg: float, precision: str = "double") -> None:
        import scipy.sparse as sp
        from scipy.linalg import blas, cho_factor, solve_triangular

        st = lp.st
        self.st, self.s, self.lam = st, s, lam
        self.d = d = lam / s
        n_d = st.dense_cols.size
        r_s = np.asarray(st.a_sq_rest.T @ (d * st.non_link)).ravel() + reg
        has = st.p_sparse >= 0
        j = st.p_sparse[has]                      # each sparse column in one P row at most: unique
        dp = d[st.p_rows]
        self.m_s = m_s = r_s.copy()
        m_s[j] += dp[has] * st.p_coef[has] ** 2
        w = dp.copy()
        w[has] = dp[has] * r_s[j] / m_s[j]       # d_i R_j / M_jj, without cancellation
        self.q = np.zeros(st.p_rows.size)         # d_i a_ij / M_jj
        self.q[has] = dp[has] * st.p_coef[has] / m_s[j]
        n_u = st.u.shape[0]
        omega = np.bincount(st.p_group, w * st.p_factor ** 2, minlength=n_u)   # Σ over the rows sharing u_g
        h, self.rows = _sum_h(lp, omega, precision)
        if st.e_pd is not None:                      # (f u_g + e)ᵀ W (f u_g + e): the cross and e terms
            e = st.e_pd.tocoo()
            wf = (w * st.p_factor)[e.row] * e.data
            cols = np.unique(e.col)
            at = np.searchsorted(cols, e.col)
            m_ge = sp.csr_matrix((wf, (st.p_group[e.row], at)), shape=(n_u, cols.size))
            cross = np.asarray((m_ge.T @ st.u))      # (len(cols), n_d): Σ_i w_i f_i e_ic u_g(i)
            h[cols, :] += cross
            h[:, cols] += cross.T
            h += (st.e_pd.T @ st.e_pd.multiply(w[:, None])).toarray()
        diag = np.full(n_d, reg)
        np.add.at(diag, st.bound_cols, d[st.bound_rows] * st.bound_coef ** 2)
        h[np.diag_indices(n_d)] += diag
        self.b = None
        if st.link_rows.size:
            g = st.a_ls_at_p.tocoo()                 # G (k × |P|): G_li = A_l,j(i) · q_i, and G a_pd by parts
            g_u = sp.csr_matrix((g.data * self.q[g.col] * st.p_factor[g.col], (g.row, st.p_group[g.col])),
                                shape=(st.link_rows.size, n_u))
            self.b = st.a_ld - g_u @ st.u
            if st.e_pd is not None:
                g_csr = sp.csr_matrix((g.data * self.q[g.col], (g.row, g.col)), shape=g.shape)
                self.b = self.b - (g_csr @ st.e_pd).toarray()
            c = (st.a_ls.multiply(1.0 / m_s[None, :]) @ st.a_ls.T).toarray() + np.diag(1.0 / d[st.link_rows])
            self.c_fac = cho_factor(c)
            w_l = solve_triangular(self.c_fac[0], self.b, trans="T", lower=self.c_fac[1])   # C = UᵀU: U⁻ᵀB
            if n_d:
                h = blas.dsyrk(1.0, w_l, beta=1.0, c=h, trans=1, lower=0, overwrite_c=1)   # += BᵀC⁻¹B (upper)
        self.h_fac = cho_factor(h, lower=False, overwrite_a=True, check_finite=False) if n_d else None

    def solve(self, r_p: np.ndarray, r_d: np.ndarray, r_c: np.ndarray) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
        """Δz, Δλ, Δs of the Newton system with these right-hand sides."""
        from scipy.linalg import cho_solve

        st, d = self.st, self.d
        rt = r_p - r_c / self.lam
        e = d * rt * st.non_link                   # g = r_d + Aᵀe, its dense part formed with v below
        g_s = r_d[st.sparse_cols] + np.asarray(st.a_s_t @ e).ravel()
        has = st.p_sparse >= 0
        v = np.zeros(st.p_rows.size)
        v[has] = self.q[has] * g_s[st.p_sparse[has]]
        rhs_d = r_d[st.dense_cols] + _at_dense(st, e[st.p_rows] - v, e, self.rows)
        x, u = np.zeros(0), np.zeros(0)
        if self.b is not None:
            rhs_l = rt[st.link_rows] - st.a_ls @ (g_s / self.m_s)
            if self.h_fac is not None:
                x = cho_solve(self.h_fac, rhs_d + self.b.T @ cho_solve(self.c_fac, rhs_l))
            u = cho_solve(self.c_fac, self.b @ x - rhs_l)
        elif self.h_fac is not None:
            x = cho_solve(self.h_fac, rhs_d)
        ax = _pd_dot(st, x, self.rows)
        msd_x = np.zeros(st.sparse_cols.size)      # M_SD x: d_i a_ij (A_PD x)_i at j = j(i)
        msd_x[st.p_sparse[has]] = self.q[has] * self.m_s[st.p_sparse[has]] * ax[has]
        num = g_s - msd_x - (np.asarray(st.a_ls.T @ u).ravel() if u.size else 0.0)
        dz = np.empty(st.dense_cols.size + st.sparse_cols.size)
        dz[st.dense_cols] = x
        dz[st.sparse_cols] = num / self.m_s
        dlam = d * (_a_dot(st, dz, ax) - rt)
        dlam[st.link_rows] = u
        ds = (r_c - self.s * dlam) / self.lam
        return dz, dlam, ds


def _start(lp: "_Lp", reg: float, precision: str) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Mehrotra's starting point [1]_ of ``lp``: least-squares ``s = b − A z`` and least-norm ``λ``
    with ``Aᵀλ = −c`` (one factorization at Θ = I, in the ``precision`` of the first iterations),
    shifted into the interior."""
    b, c = lp.b, lp.c
    m = b.size
    ones = np.ones(m)
    newton = _Newton(lp, ones, ones, reg, precision)
    dz, dl, _ = newton.solve(b, np.zeros(c.size), np.zeros(m))          # A z − λ = b, Aᵀλ = 0
    z, s = dz, -dl                                                       # s = b − A z
    _, lam, _ = newton.solve(np.zeros(m), -c, np.zeros(m))               # A w = λ, Aᵀλ = −c
    s = s + max(-1.5 * float(s.min()), 0.0)
    lam = lam + max(-1.5 * float(lam.min()), 0.0)
    s, lam = np.maximum(s, 1e-12), np.maximum(lam, 1e-12)
    gap = float(s @ lam)
    return z, s + 0.5 * gap / float(lam.sum()), lam + 0.5 * gap / float(s.sum())


def _centrality_correctors(newton: "_Newton", s: np.ndarray, lam: np.ndarray, dz: np.ndarray, dl: np.ndarray,
                           ds: np.ndarray, mu_target: float, count: int
                           ) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Gondzio's multiple centrality correctors [4]_: up to ``count`` extra solves with the same
    factorization, each pulling the complementarity products of a longer trial step back into
    ``[0.1, 10] · mu_target``; a corrector is kept only when it lengthens the step by 1 %."""
    zeros_p, zeros_d = np.zeros(s.size), np.zeros(dz.size)
    ap, ad = _step(s, ds), _step(lam, dl)
    for _ in range(count):
        tp, td = min(1.0, 1.5 * ap), min(1.0, 1.5 * ad)
        v = (s + tp * ds) * (lam + td * dl)
        target = np.clip(v, 0.1 * mu_target, 10.0 * mu_target)
        corr = np.maximum(target - v, -10.0 * mu_target)
        cz, cl, cs = newton.solve(zeros_p, zeros_d, corr)
        nz, nl, ns = dz + cz, dl + cl, ds + cs
        np_, nd = _step(s, ns), _step(lam, nl)
        if min(np_, nd) < 1.01 * min(ap, ad):
            break
        dz, dl, ds, ap, ad = nz, nl, ns, np_, nd
    return dz, dl, ds


def _step(v: np.ndarray, dv: np.ndarray) -> float:
    neg = dv < 0
    return float(min(1.0, np.min(-v[neg] / dv[neg]))) if neg.any() else 1.0


@dataclass(frozen=True, eq=False)
class _Lp:
    """A (column-restricted) scaled LP and its structure; ``cols``/``rows`` index the full LP."""

    b: np.ndarray
    c: np.ndarray
    st: LpStructure
    cols: np.ndarray
    rows: np.ndarray
    work: np.ndarray
    u32: np.ndarray
    work32: np.ndarray

    @functools.cached_property
    def row_sq(self) -> np.ndarray:
        """``‖u_g‖²`` of each distinct row (for the mixed-precision split of :func:`_sum_h`; computed
        when first asked for, since many LPs never reach it)."""
        u = self.st.u
        return np.einsum("ij,ij->i", u, u)


def _restrict(whole: _Lp, out: np.ndarray, bound_row: np.ndarray, recycle: "_Lp | None" = None) -> _Lp:
    """The LP ``whole`` with the columns ``out`` fixed at 0 (removed with their bound rows).

    Its structure is the whole one's, sub-set (no new classification: 2 mm dose grid, 36 000
    rows, 7 of the 46 s of a solve went to re-classifying).  That stays exact for any row
    that the removal changes: a ``P`` row left with no dense entry has a zero ``a_pd`` row
    (its sparse column is then eliminated as a rest row's would be), and one left with a
    single dense entry adds to ``H`` what a bound row would.

    ``recycle``: an earlier restriction of ``whole`` that is no longer needed; its row arrays
    are reused where the new ones fit (memory already paged in: at 2 mm a fresh 200 MB copy
    took 0.44 s, 0.09 s into pages already touched).
    """
    w = whole.st
    cols = np.flatnonzero(~out)
    keep_row = np.ones(whole.b.size, bool)
    keep_row[bound_row[out]] = False
    rows = np.flatnonzero(keep_row)
    new_row = np.cumsum(keep_row) - 1
    new_col = np.cumsum(~out) - 1
    keep_d = ~out[w.dense_cols]
    new_d = np.cumsum(keep_d) - 1
    keep_b = keep_row[w.bound_rows]
    a_s = w.a_s[rows]
    shape = (w.u.shape[0], int(keep_d.sum()))

    def rows_array(old: "np.ndarray | None", dtype: Any) -> np.ndarray:
        if old is not None and old.dtype == dtype and old.flags.c_contiguous and old.size >= shape[0] * shape[1]:
            return old.reshape(-1)[:shape[0] * shape[1]].reshape(shape)
        return np.empty(shape, dtype)

    old = (None,) * 4 if recycle is None else (recycle.st.u, recycle.u32, recycle.work, recycle.work32)
    u = np.compress(keep_d, w.u, axis=1, out=rows_array(old[0], w.u.dtype))
    u32 = np.compress(keep_d, whole.u32, axis=1, out=rows_array(old[1], whole.u32.dtype))   # st.u in float32
    st = LpStructure(dense_cols=new_col[w.dense_cols[keep_d]], sparse_cols=new_col[w.sparse_cols],
                     link_rows=new_row[w.link_rows], p_rows=new_row[w.p_rows],
                     bound_rows=new_row[w.bound_rows[keep_b]], bound_cols=new_d[w.bound_cols[keep_b]],
                     bound_coef=w.bound_coef[keep_b], u=u, p_group=w.p_group,
                     p_factor=w.p_factor, e_pd=None if w.e_pd is None else w.e_pd[:, keep_d].tocsr(),
                     p_sparse=w.p_sparse, p_coef=w.p_coef, a_sq_rest=w.a_sq_rest[rows], a_ls=w.a_ls,
                     a_ls_at_p=w.a_ls_at_p, a_ld=np.ascontiguousarray(w.a_ld[:, keep_d]),
                     non_link=w.non_link[rows], a_s=a_s, a_s_t=a_s.T.tocsr())
    return _Lp(whole.b[rows], whole.c[cols], st, cols, rows, rows_array(old[2], w.u.dtype), u32,
               rows_array(old[3], whole.u32.dtype))


def _bounded_columns(st: LpStructure, b: np.ndarray, n: int) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Dense columns with exactly one bound row ``−|a| z_j + s = 0`` (``z_j ≥ 0``, nothing else
    bounds them): their indices, bound rows and the bound rows' |coefficients|."""
    sign = (st.bound_coef < 0) & (b[st.bound_rows] == 0)
    cols = st.dense_cols[st.bound_cols]
    once = np.bincount(cols, minlength=n)[cols] == 1
    sel = sign & once
    return cols[sel], st.bound_rows[sel], -st.bound_coef[sel]


def _full(lp: _Lp, run: "_Run", n: int, m: int, fill: float = 0.0) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """``run``'s iterate of ``lp`` as full-LP arrays (0 at the columns left out, ``fill`` in ``s``
    and ``λ`` at the rows left out)."""
    z_f, s_f, lam_f = np.zeros(n), np.full(m, fill), np.full(m, fill)
    z_f[lp.cols], s_f[lp.rows], lam_f[lp.rows] = run.z, run.s, run.lam
    return z_f, s_f, lam_f


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
    resume_point: "tuple[_Lp, _Run] | None" = None    # its first iterate at gap ≤ RESUME_GAP


def _iterate(lp: _Lp, run: _Run, *, nb: float, nc: float, tol_feas: float, tol_gap: float, max_iter: int,
             max_correctors: int, droppable: np.ndarray, check_gap: float = -1.0) -> "tuple[str, np.ndarray]":
    """Predictor–corrector iterations on ``lp`` from ``run``'s iterate.

    ``droppable`` (bool over ``lp``'s rows): bound rows whose column may leave the
    system.  Returns the status ('optimal', 'infeasible', 'max_iter',
    'numerical_error', 'check' when the relative gap is at most ``check_gap``, or 'drop')
    and, for 'drop', the rows whose complementarity ratio ``s/λ`` fell below
    :data:`DROP_RATIO` of the largest, when they are at least :data:`DROP_MIN_FRACTION`
    of the droppable rows.
    """
    from scipy.linalg import LinAlgError

    b, c, st = lp.b, lp.c, lp.st
    m = b.size
    z, s, lam = run.z, run.s, run.lam
    status = "max_iter"
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
        if run.resume_point is None and run.gap_rel <= max(RESUME_GAP, tol_gap):
            run.resume_point = (lp, _Run(z, s, lam))
        if run.rp_rel <= tol_feas and run.rd_rel <= tol_feas and run.gap_rel <= tol_gap:
            status = "optimal"
            break
        if run.gap_rel <= check_gap:
            status = "check"
            break
        b_lam = float(b @ lam)
        if b_lam < 0 and float(np.abs(c + r_d).max()) <= tol_feas * -b_lam:
            status = "infeasible"       # λ ≥ 0, Aᵀλ ≈ 0, bᵀλ < 0: Farkas certificate
            break
        if n_droppable and run.gap_rel <= DROP_GAP:
            ratio = s / lam
            flagged = droppable & (ratio < DROP_RATIO * float(ratio[droppable].max()))
            if flagged.sum() >= max(1.0, DROP_MIN_FRACTION * n_droppable):
                status = "drop"
                break
        run.iterations += 1
        mu = float(s @ lam) / m

        try:
            precision = "single" if run.gap_rel > SINGLE_PRECISION_GAP else "mixed"
            try:
                newton = _Newton(lp, s, lam, REGULARIZATION, precision)
            except LinAlgError:
                newton = _Newton(lp, s, lam, REGULARIZATION, "double")
        except LinAlgError:
            status = "numerical_error"
            break
        dz_a, dl_a, ds_a = newton.solve(r_p, r_d, -lam * s)
        ap, ad = _step(s, ds_a), _step(lam, dl_a)
        mu_aff = float((s + ap * ds_a) @ (lam + ad * dl_a)) / m
        sigma = (mu_aff / mu) ** 3
        dz, dl, ds = newton.solve(r_p, r_d, sigma * mu - lam * s - ds_a * dl_a)
        dz, dl, ds = _centrality_correctors(newton, s, lam, dz, dl, ds, sigma * mu, max_correctors)
        ap, ad = STEP_FRACTION * _step(s, ds), STEP_FRACTION * _step(lam, dl)
        _log.debug("  steps %.3f (primal), %.3f (dual), sigma %.2g", ap, ad, sigma)
        z = z + ap * dz
        s = s + ap * ds
        lam = lam + ad * dl
    run.z, run.s, run.lam = z, s, lam
    return status, flagged


def _fresh_run(lp: _Lp, iterations: int) -> _Run:
    """A run of ``lp`` from Mehrotra's start (``iterations`` carried over)."""
    from scipy.linalg import LinAlgError

    try:
        run = _Run(*_start(lp, REGULARIZATION, "single" if SINGLE_PRECISION_GAP < np.inf else "mixed"))
    except LinAlgError:
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


def solve_lp(c: np.ndarray, a: Any, b: np.ndarray, *, shared: "SharedRows | None" = None,
             columns_hint: "np.ndarray | None" = None, start: "tuple[np.ndarray, np.ndarray, np.ndarray] | None" = None,
             check: "Any | None" = None, check_gap: float = 0.2, tol_feas: float = 1e-8, tol_gap: float = 1e-8,
             max_iter: int = 100, ruiz_passes: int = 5, max_correctors: int = 2) -> LpSolution:
    """Solve ``min cᵀz s.t. A z + s = b, s ≥ 0`` by Mehrotra's predictor–corrector [1]_.

    **Column generation** [5]_: the bounded dense columns (``z_j ≥ 0`` and no other
    bound: the beamlet weights) that the iterates drive to zero leave the system
    (:data:`DROP_RATIO`, :data:`DROP_MIN_FRACTION`), which shrinks the ``syrk`` by the
    square of the fraction left; at the optimum of the restricted LP, every column
    left out is priced with its duals, ``c_j + a_jᵀλ``, and those with a negative
    reduced cost come back (they are not dropped again) until none is negative.  The
    answer is therefore the optimum of the whole LP, whatever was dropped.

    Parameters
    ----------
    c : ndarray, shape (n,)
    a : scipy.sparse matrix, shape (m, n)
        The matrix, or with ``shared`` its entries outside the shared rows' block.
    b : ndarray, shape (m,)
    shared : SharedRows, optional
        Dense rows given once for the several rows of ``A`` that share them (``A = a +
        shared``); each enters the ``syrk`` once.
    columns_hint : ndarray of bool, shape (n,), optional
        Columns expected non-zero at the optimum (say, a previous solve's); the other
        bounded columns start out of the system and are priced like dropped ones.  A
        column the hint left out that prices in restarts the solve from Mehrotra's point
        with it (after :data:`HINT_MISSES` such restarts, with every column).
    start : (z, s, lam), optional
        An iterate to start from instead of Mehrotra's point, in the caller's variables (as
        :class:`LpSolution` gives them): ``z`` finite, ``s`` and ``lam`` NaN for the rows it does
        not know (a warm start after rows were added; see :func:`_warm_run`).  A restart (a
        hint's miss, a failure) is from Mehrotra's point.
    check : callable, optional
        ``check(z, s, lam) -> bool``, called once, with the first iterate whose relative gap is
        at most ``check_gap`` (caller's variables; ``s``, ``lam`` NaN on the rows out of the
        system).  True ends the solve there with ``status = 'interrupted'`` and that iterate,
        for the caller to change the LP and go on from it with ``start``.
    tol_feas, tol_gap : float
        Converged when, on the equilibrated data, ``‖r_p‖∞ ≤ tol_feas (1 + ‖b‖∞)``,
        ``‖r_d‖∞ ≤ tol_feas (1 + ‖c‖∞)`` and ``|cᵀz + bᵀλ| ≤ tol_gap (1 + |cᵀz|)``; a
        column left out is priced out when ``c_j + a_jᵀλ ≥ −tol_feas (1 + ‖c‖∞)``.
    max_iter : int
        Iterations from each start at Mehrotra's point (returns to an earlier iterate
        included); with ``columns_hint`` there are at most :data:`HINT_MISSES` + 2 starts.
    max_correctors : int
        Gondzio centrality correctors per iteration [4]_ (0: plain Mehrotra).
    ruiz_passes : int
        Equilibration passes [2]_ (default-size t4t5 first round: 25 iterations with
        0, 3 or 10 passes; coarse: 57 with none, 45 with 3).

    Returns
    -------
    LpSolution
        ``status``: 'optimal', 'infeasible', 'max_iter', 'numerical_error' or 'interrupted'
        (by ``check``).  'infeasible' when the iterates give a Farkas certificate
        (``λ ≥ 0``, ``‖Aᵀλ‖∞ ≤ tol_feas · (−bᵀλ)``) on the whole LP; the start is
        Mehrotra's (:func:`_start`).

    Raises
    ------
    StructureError
        ``a`` is not a dense-column LP (see :func:`find_structure`).
    """
    import scipy.sparse as sp

    t0 = time.perf_counter()
    a0 = sp.csr_matrix(a, dtype=np.float64)
    m, n = a0.shape
    if start is not None:
        z0, s0, lam0 = (np.asarray(v, dtype=np.float64) for v in start)
        if z0.shape != (n,) or s0.shape != (m,) or lam0.shape != (m,) or not np.isfinite(z0).all():
            raise ValueError(f"start: expected (z, s, lam) with z finite of shape ({n},) and s, lam of shape ({m},); "
                             f"got shapes {z0.shape}, {s0.shape}, {lam0.shape}")
    rs, cs = _ruiz(a0, ruiz_passes, shared)
    a_sc = a0.copy()
    a_sc.data *= rs[np.repeat(np.arange(m), np.diff(a0.indptr))] * cs[a0.indices]
    b_sc, c_sc = rs * np.asarray(b, dtype=np.float64), cs * np.asarray(c, dtype=np.float64)
    nb, nc = 1.0 + np.abs(b_sc).max(initial=0.0), 1.0 + np.abs(c_sc).max(initial=0.0)
    shared_sc = None if shared is None else SharedRows(          # the block's columns scaled into u
        block=shared.block, rows=shared.rows, group=shared.group, factor=shared.factor * rs[shared.rows],
        cols=shared.cols)
    full = find_structure(a_sc, shared_sc, None if shared is None else cs[shared.cols])
    del shared_sc
    bcols, brows, bcoef = _bounded_columns(full, b_sc, n)
    bound_row = np.full(n, -1, dtype=np.int64)
    bound_row[bcols] = brows
    bound_col = np.full(m, -1, dtype=np.int64)
    bound_col[brows] = bcols
    u32 = full.u.astype(np.float32)
    whole = _Lp(b_sc, c_sc, full, np.arange(n), np.arange(m), np.empty_like(full.u), u32, np.empty_like(u32))
    base_out = np.zeros(n, bool)          # columns the hint leaves out from the start
    if columns_hint is not None:
        base_out[bcols] = ~np.asarray(columns_hint, dtype=bool)[bcols]
    out = base_out.copy()                 # columns fixed at 0 (left out of the system)
    pinned = np.zeros(n, bool)            # priced back in: never dropped again
    first_drop = None                     # the iterate before the first drop (every column not in base_out in)
    priced_in = hint_misses = 0
    lp = _restrict(whole, out, bound_row) if out.any() else whole
    run = None if start is None else _warm_run(lp, (z0 / cs)[lp.cols], (s0 * rs)[lp.rows], (lam0 / rs)[lp.rows])
    warm = run is not None                # a warm run that fails starts again from Mehrotra's point
    if run is None:
        run = _fresh_run(lp, 0)
    started_at = 0                        # iterations before the last start from Mehrotra's point
    checked = check is None
    while True:
        droppable = np.zeros(m, bool)
        droppable[bound_row[bcols[~out[bcols] & ~pinned[bcols]]]] = True
        status, flagged = _iterate(lp, run, nb=nb, nc=nc, tol_feas=tol_feas, tol_gap=tol_gap,
                                   max_iter=started_at + max_iter, max_correctors=max_correctors,
                                   droppable=droppable[lp.rows], check_gap=-1.0 if checked else check_gap)
        if status == "check":
            checked = True
            z, s, lam = _full(lp, run, n, m, fill=np.nan)
            if check(cs * z, s / rs, rs * lam):
                status = "interrupted"
                break
            continue
        z, s, lam = _full(lp, run, n, m)
        restart = False                       # from Mehrotra's start on the LP restricted to base_out
        resume = False                        # from run's resume point, with the priced-in columns back in
        if warm and status not in ("optimal", "drop"):
            warm, restart = False, True
        elif status == "drop":
            if first_drop is None:
                first_drop = (run.iterations, z, s, lam)
            out[bound_col[lp.rows[flagged]]] = True
        elif not out.any():
            break
        elif status != "optimal":             # the restriction may be what failed: the whole LP, no drops
            pinned[:] = True
            if base_out.any() or first_drop is None:
                base_out[:] = False
                restart = True
            else:
                run.iterations, z, s, lam = first_drop
                run.resume_point = None
                out = base_out.copy()
        else:
            left = np.flatnonzero(out)
            reduced = c_sc[left] + _at_dot(full, lam)[left]
            if not (reduced < -tol_feas * nc).any():
                coef = np.zeros(n)
                coef[bcols] = bcoef
                lam[bound_row[left]] = np.maximum(reduced, 0.0) / coef[left]
                break
            back = left[reduced < PRICE_MARGIN * float(np.median(np.abs(reduced)))]
            priced_in += back.size
            pinned[back] = True
            if base_out[back].any():          # the hint left out a column the optimum needs
                hint_misses += 1
                base_out &= ~pinned
                if hint_misses > HINT_MISSES:
                    base_out[:] = False
                restart = True
            elif back.size > RESUME_MAX_SHARE * lp.st.dense_cols.size:
                run.iterations, z, s, lam = first_drop   # back to before the first drop; the others may drop again
                run.resume_point = None
                out = base_out.copy()
            else:                                  # late in the run that ended, with them back in
                out &= ~pinned
                z, s, lam = _full(*run.resume_point, n, m, fill=np.nan)
                resume = True
        if restart:
            out, first_drop = base_out.copy(), None
        lp = _restrict(whole, out, bound_row, None if lp is whole else lp) if out.any() else whole
        if restart:
            run = _fresh_run(lp, run.iterations)
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
