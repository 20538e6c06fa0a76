"""Products with a dense-column LP's parts, equilibration and column restriction (private).

Products with ``A`` go through the parts of :class:`~optimizer._schur_ipm_structure.LpStructure`:
the distinct dense rows by BLAS, the sparse columns as CSR (never the dense block as CSR).
:func:`_restrict` fixes columns at 0 by sub-setting the whole LP's structure (no second
classification), exactly.

References
----------
.. [2] Ruiz D. A scaling algorithm to equilibrate both rows and columns norms in
   matrices. Rutherford Appleton Laboratory report RAL-TR-2001-034, 2001.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._schur_ipm_structure import LpStructure, SharedRows


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

    The shared block's maxima are taken in float32 in one work array: the factors are a
    scaling, not data (they differ from float64's by about 1e-7), and float32 halves the traffic.
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

    Its structure is the whole one's, sub-set (no new classification, which costs a large
    share of a solve).  That stays exact for any row
    that the removal changes: a ``P`` row left with no dense entry has a zero ``a_pd`` row
    (its sparse column is then eliminated as a rest row's would be), and one left with a
    single dense entry adds to ``H`` what a bound row would.

    ``recycle``: an earlier restriction of ``whole`` that is no longer needed; its row arrays
    are reused where the new ones fit (memory already paged in is several times faster to
    write than a fresh copy).
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
