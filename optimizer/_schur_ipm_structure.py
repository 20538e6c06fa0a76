"""Row and column classes of a dense-column LP (private; :mod:`optimizer._schur_ipm`).

Fluence-map LPs have a few thousand **dense columns** (the beamlet weights and the CVaR
thresholds, each in thousands of rows) and many **sparse columns** (the epigraph variables
of the hinge terms, in two or three rows each).  :func:`find_structure` classifies them once:

* dense columns ``D``: any column in more than ``sparse_column_max_nnz`` rows, plus every
  sparse candidate that would couple two dense rows;
* linking rows ``L``: rows holding two or more sparse columns (the CVaR sums
  ``ζ + Σ w t ≤ 0``); they stay in the reduced system as extra unknowns (k × k);
* ``P``: the other rows touching a dense column; each holds at most one sparse column, and
  every sparse column sits in at most one ``P`` row.  Under these rules ``M_SS`` (the sparse
  block of ``AᵀΘ⁻¹A``) is diagonal and the elimination is exact.

**Shared rows** (:class:`SharedRows`): an FMO voxel's influence row is the dense part of its
hinge row, its bound row and its CVaR rows, up to a factor (±1); given once, it enters the
normal matrix once, weighted by the sum over those rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StructureError", "SharedRows", "LpStructure", "find_structure"]


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
    """Row and column classes of ``A`` (see :mod:`optimizer._schur_ipm_structure`).

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


def find_structure(a: Any, shared: "SharedRows | None" = None, block_scale: "np.ndarray | None" = None, *,
                   sparse_column_max_nnz: int = 4, max_linking_rows: int = 200) -> LpStructure:
    """Classify the rows and columns of ``a`` (scipy.sparse, m × n), plus ``shared`` rows if given.

    ``block_scale`` (one factor per ``shared.cols``) scales the block's columns as it is copied
    into :attr:`LpStructure.u` (an equilibrated copy without a second copy of the block).
    ``sparse_column_max_nnz`` and ``max_linking_rows``: see :class:`optimizer._schur_ipm.IpmOptions`.

    Raises
    ------
    StructureError
        More than ``max_linking_rows`` linking rows, ``a`` has entries where
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
    sparse = (count <= sparse_column_max_nnz) & ~forced_dense
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
    if link.sum() > max_linking_rows:
        raise StructureError(f"{int(link.sum())} rows hold two or more sparse columns (at most "
                             f"{max_linking_rows} allowed): not a dense-column LP")
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

