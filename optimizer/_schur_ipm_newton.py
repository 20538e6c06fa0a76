"""The Newton system of the dense-column interior point, its start and correctors (private).

Newton system of each iteration (Θ = s/λ, d = 1/Θ), solved by block elimination [3]_:

    A Δz − Θ Δλ = r̃ := r_p − r_c/λ,      AᵀΔλ = r_d,      Δs = (r_c − s∘Δλ)/λ

    non-linking rows:  Δλ_N = d_N ∘ (A_N Δz − r̃_N)
    M = A_NᵀD_N A_N + δI;   W_i = d_i R_j / M_jj  (row i ∈ P with sparse column j;
        R_j = M_jj − d_i a_ij², summed without row i so that it does not cancel)
    H = A_PDᵀ diag(W) A_PD + δI          (one BLAS syrk of the distinct dense rows)
    [H  Bᵀ; B  −C] [Δz_D; Δλ_L] = ...    (k linking rows; Cholesky of H + BᵀC⁻¹B)

Cost per iteration: ``|P| · n_D²`` for the ``syrk`` plus ``n_D³ / 3`` for the Cholesky, memory
``2 · |P| · n_D`` doubles; at ~10⁴ beamlets a sparse-row solver (HiGHS) is the better choice.

References
----------
.. [1] Mehrotra S. On the implementation of a primal-dual interior point method.
   SIAM J Optim 1992;2(4):575-601.
.. [3] Andersen KD. A modified Schur-complement method for handling dense columns in
   interior-point methods for linear programming. ACM Trans Math Softw 1996;22(3):348-356.
.. [4] Gondzio J. Multiple centrality corrections in a primal-dual method for linear
   programming. Comput Optim Appl 1996;6:137-156.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._schur_ipm_products import _a_dot, _at_dense, _pd_dot, _Rows

if TYPE_CHECKING:
    from ._schur_ipm_products import _Lp


def _sum_h(lp: "_Lp", omega: np.ndarray, precision: str, double_share: float = 1e-7
           ) -> "tuple[np.ndarray, _Rows | None]":
    """``Σ_g ω_g u_gᵀu_g`` (upper triangle, float64, Fortran order) by ``syrk``, and the precision of
    the solves' products that goes with it.

    ``precision``: 'single' (the sum in float32, from ``lp.u32``), 'mixed' (float64 over the rows
    that carry all but ``double_share`` of the trace, float32 over the others) or
    'double'.
    """
    from scipy.linalg import blas

    u = lp.st.u
    n_d = u.shape[1]
    if not u.shape[0]:
        return np.zeros((n_d, n_d), order="F"), None
    if precision == "double" or (precision == "mixed" and double_share <= 0):
        np.multiply(u, np.sqrt(omega)[:, None], out=lp.work)
        return blas.dsyrk(1.0, lp.work.T, trans=0, lower=0), None
    scale32 = np.sqrt(omega).astype(np.float32)
    double = None
    if precision == "mixed":
        share = omega * lp.row_sq
        order = np.argsort(share)
        cut = int(np.searchsorted(np.cumsum(share[order]), double_share * float(share.sum()), side="right"))
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

    def __init__(self, lp: "_Lp", s: np.ndarray, lam: np.ndarray, reg: float, precision: str = "double",
                 double_share: float = 1e-7) -> None:
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
        h, self.rows = _sum_h(lp, omega, precision, double_share)
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


def _start(lp: "_Lp", reg: float, precision: str, double_share: float = 1e-7
           ) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Mehrotra's starting point [1]_ of ``lp``: least-squares ``s = b − A z`` and least-norm ``λ``
    with ``Aᵀλ = −c`` (one factorization at Θ = I, in the ``precision`` of the first iterations),
    shifted into the interior."""
    b, c = lp.b, lp.c
    m = b.size
    ones = np.ones(m)
    newton = _Newton(lp, ones, ones, reg, precision, double_share)
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

