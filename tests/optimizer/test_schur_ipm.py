"""Tests of the dense-column interior point (optimizer._schur_ipm) and its cvxpy interface.

Reference values: a textbook LP solved by hand, a one-beamlet FMO solved by hand, and
random FMO-shaped LPs (dense beamlet columns, hinge terms, CVaR caps, per-voxel bounds)
against HiGHS on the same cvxpy problem.  Both solvers stop at relative residuals
1e-8, so objectives agree to 1e-6 (relative) and bounds hold to 1e-6 Gy.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

cp = pytest.importorskip("cvxpy")

from optimizer import _fmo_terms as terms  # noqa: E402
from optimizer import _schur_ipm as ipm  # noqa: E402
from optimizer import _schur_ipm_iterate as ipm_iterate  # noqa: E402
from optimizer import _schur_ipm_newton as ipm_newton  # noqa: E402
from optimizer import _schur_ipm_products as ipm_products  # noqa: E402
from optimizer._schur_ipm import IpmOptions, StructureError, find_structure, solve_lp  # noqa: E402
from optimizer._schur_ipm_cvxpy import SchurIpm  # noqa: E402


def test_textbook_lp():
    """max x1 + x2 s.t. x1 + 2 x2 ≤ 4, 3 x1 + x2 ≤ 6, x ≥ 0: vertex x = (8/5, 6/5), value 14/5."""
    a = sp.csr_matrix(np.array([[1.0, 2.0], [3.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    sol = solve_lp(np.array([-1.0, -1.0]), a, np.array([4.0, 6.0, 0.0, 0.0]))
    assert sol.status == "optimal"
    np.testing.assert_allclose(sol.z, [1.6, 1.2], atol=1e-7)
    assert sol.objective == pytest.approx(-2.8, abs=1e-7)
    np.testing.assert_allclose(sol.lam[:2], [0.4, 0.2], atol=1e-7)   # duals: 0.4·(1,2) + 0.2·(3,1) = (1,1)


def test_one_beamlet_fmo_by_hand():
    """Target voxels get 1 and 2 Gy per unit weight (½ volume each); an OAR voxel 0.5 Gy with 10 Gy max.

    y ≤ 20, so doses are 20 and 40 Gy: under-dose below 24 Gy = ½·4 + ½·0 = 2 Gy at y = 20.
    """
    y = cp.Variable(1, nonneg=True)
    a_t, a_o = np.array([[1.0], [2.0]]), np.array([[0.5]])
    prob = cp.Problem(cp.Minimize(terms.underdose_term(cp, a_t @ y, np.array([0.5, 0.5]), 24.0, "linear")),
                      [terms.max_bound(cp, a_o @ y, np.array([10.0]))])
    prob.solve(solver=SchurIpm())
    assert prob.status == "optimal"
    assert prob.value == pytest.approx(2.0, abs=1e-7)
    assert y.value[0] == pytest.approx(20.0, abs=1e-6)


def _fmo_like(seed: int, n_beamlets: int = 40, n_target: int = 80, n_oar: int = 60):
    """A random FMO-shaped LP: hinge under-dose, ring over-dose, OAR max bounds and two CVaR caps."""
    rng = np.random.default_rng(seed)
    a_t = rng.random((n_target, n_beamlets)) * (rng.random((n_target, n_beamlets)) < 0.7)
    a_r = 0.6 * rng.random((n_target, n_beamlets))
    a_o = 0.5 * rng.random((n_oar, n_beamlets))
    scale = 24.0 / a_t.sum(axis=1).mean()
    y = cp.Variable(n_beamlets, nonneg=True)
    w = rng.random(n_target)
    obj = terms.underdose_term(cp, scale * a_t @ y, w / w.sum(), 24.05, "linear")
    obj = obj + 0.1 * terms.overdose_term(cp, scale * a_r @ y, np.full(n_target, 12.0)) + 1e-3 * cp.sum(y) / n_beamlets
    cons = [terms.max_bound(cp, scale * a_o[:20] @ y, np.full(20, 9.0))]
    cons += terms.cvar_cap(cp, scale * a_o[20:] @ y, np.full(n_oar - 20, 8.0), np.full(n_oar - 20, 0.1), 0.5, "a")
    cons += terms.cvar_cap(cp, scale * a_o[20:] @ y, np.full(n_oar - 20, 6.0), np.full(n_oar - 20, 0.1), 2.0, "b")
    return cp.Problem(cp.Minimize(obj), cons), y, scale * a_o


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_fmo_lp_matches_highs(seed):
    prob, y, a_o = _fmo_like(seed)
    prob.solve(solver="HIGHS")
    ref, y_ref = prob.value, y.value.copy()
    prob.solve(solver=SchurIpm())
    assert prob.status == "optimal"
    assert prob.value == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert (a_o[:20] @ y.value).max() <= 9.0 + 1e-6
    assert y.value.min() >= -1e-9
    # the dose the objective sees agrees too (the optimum may not be unique in y)
    assert np.abs(a_o @ (y.value - y_ref)).max() < 0.5


def test_structure_of_fmo_lp():
    """Beamlets and the CVaR thresholds ζ are dense columns; each CVaR sum is one linking row."""
    prob, _, _ = _fmo_like(0)
    data, _, _ = prob.get_problem_data(cp.CLARABEL)
    st = find_structure(data["A"])
    assert st.dense_cols.size == 40 + 2        # 40 beamlets + 2 ζ
    assert st.link_rows.size == 2
    assert st.bound_rows.size == 40            # y ≥ 0


def test_infeasible_lp_reported():
    """x ≥ 1 and x ≤ 0: a Farkas certificate, status 'infeasible', no primal value."""
    x = cp.Variable(3)
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1, cp.sum(x) <= 0])
    prob.solve(solver=SchurIpm())
    assert prob.status == "infeasible"
    assert x.value is None


def test_equality_rows_rejected_by_name():
    x = cp.Variable(2)
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 0, x[0] + x[1] == 1])
    with pytest.raises(cp.error.SolverError, match="equality"):
        prob.solve(solver=SchurIpm())


def test_quadratic_objective_rejected():
    """cvxpy itself refuses: the solver declares no quadratic objective and no second-order cone."""
    x = cp.Variable(2)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x)), [x >= 1])
    with pytest.raises(cp.error.SolverError, match="SCHUR_IPM cannot solve"):
        prob.solve(solver=SchurIpm())


def test_too_many_linking_rows_is_a_structure_error():
    """Rows each holding many 2-row columns cannot be reduced to the dense block."""
    n = 300
    a = sp.vstack([sp.hstack([sp.eye(n), sp.eye(n)]), -sp.eye(2 * n)]).tocsr()
    with pytest.raises(StructureError, match="rows hold two or more sparse columns"):
        find_structure(a)


def test_correctors_and_equilibration_change_the_path_not_the_optimum():
    """Plain Mehrotra (no Gondzio correctors, no Ruiz scaling) reaches the same optimum."""
    prob, _, _ = _fmo_like(4)
    data, _, _ = prob.get_problem_data(cp.CLARABEL)
    ref = solve_lp(data["c"], data["A"], data["b"])
    plain = solve_lp(data["c"], data["A"], data["b"], options=IpmOptions(max_correctors=0, ruiz_passes=0))
    assert ref.status == plain.status == "optimal"
    assert plain.objective == pytest.approx(ref.objective, rel=1e-6)
    assert ref.iterations < 60 and plain.iterations < 100


#: Beamlets dropped eagerly: any bound row below half the largest s/λ, 5 % of them suffice, from the start.
EAGER = IpmOptions(drop_ratio=0.5, drop_min_fraction=0.05, drop_gap=np.inf)


def _lp_data(seed: int):
    prob, y, _ = _fmo_like(seed)
    data, _, _ = prob.get_problem_data(cp.CLARABEL)
    return prob, y, data["c"], sp.csr_matrix(data["A"]), data["b"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_column_generation_same_optimum_as_whole_lp(seed):
    """Beamlets dropped too eagerly (any bound row below half the largest s/λ, 5 % suffice) are
    priced back in: the optimum is the whole LP's (HiGHS, and SCHUR_IPM with no drop)."""
    prob, _, c, a, b = _lp_data(seed)
    prob.solve(solver="HIGHS")
    ref_value = prob.value
    whole = solve_lp(c, a, b, options=IpmOptions(drop_min_fraction=np.inf))
    eager = solve_lp(c, a, b, options=EAGER)
    assert whole.status == eager.status == "optimal"
    assert whole.columns_out == 0
    assert eager.objective == pytest.approx(whole.objective, rel=1e-6, abs=1e-9)
    prob.solve(solver=SchurIpm())
    assert prob.value == pytest.approx(ref_value, rel=1e-6, abs=1e-9)


def test_column_generation_prices_back_and_returns_a_full_dual(monkeypatch):
    """With eager drops, some beamlets come back by pricing (many at once: back to before the first
    drop; few: resumed late in the restricted run); the columns left out are exactly 0, and the
    assembled (z, s, λ) is primal and dual feasible for the whole LP."""
    resumed = []
    warm_run = ipm._warm_run

    def spy(lp, z, s, lam):                   # without a start, only a resume after pricing calls it
        resumed.append(True)
        return warm_run(lp, z, s, lam)

    monkeypatch.setattr(ipm, "_warm_run", spy)
    priced = 0
    for seed in range(4):
        _, _, c, a, b = _lp_data(seed)
        sol = solve_lp(c, a, b, options=EAGER)
        assert sol.status == "optimal" and sol.columns_out > 0
        priced += sol.columns_priced_in
        assert np.count_nonzero(sol.z == 0.0) >= sol.columns_out
        assert sol.lam.min() >= 0 and sol.s.min() >= 0
        assert np.abs(a @ sol.z + sol.s - b).max() <= 1e-6 * (1 + np.abs(b).max())
        assert np.abs(a.T @ sol.lam + c).max() <= 1e-6 * (1 + np.abs(c).max())
        assert abs(c @ sol.z + b @ sol.lam) <= 1e-6 * (1 + abs(c @ sol.z))
    assert priced > 0
    assert resumed


def test_restriction_recycles_an_earlier_one_into_the_same_values():
    """A restriction written into an earlier restriction's arrays (memory already paged in) equals a fresh one;
    one that does not fit (more columns) gets new arrays."""
    _, _, c, a, b = _lp_data(0)
    st = find_structure(a)
    u32 = st.u.astype(np.float32)
    whole = ipm_products._Lp(b, c, st, np.arange(a.shape[1]), np.arange(a.shape[0]), np.empty_like(st.u), u32,
                    np.empty_like(u32))
    bcols, brows, _ = ipm_products._bounded_columns(st, b, a.shape[1])
    bound_row = np.full(a.shape[1], -1, dtype=np.int64)
    bound_row[bcols] = brows
    out_a = np.zeros(a.shape[1], bool)
    out_a[bcols[::3]] = True
    out_b = out_a.copy()
    out_b[bcols[1::3]] = True                      # fewer columns: fits into the first one's arrays
    first = ipm_products._restrict(whole, out_a, bound_row)
    fresh = ipm_products._restrict(whole, out_b, bound_row)
    reused = ipm_products._restrict(whole, out_b, bound_row, first)
    assert np.shares_memory(reused.st.u, first.st.u) and np.shares_memory(reused.u32, first.u32)
    np.testing.assert_array_equal(reused.st.u, fresh.st.u)
    np.testing.assert_array_equal(reused.u32, fresh.u32)
    np.testing.assert_array_equal(reused.row_sq, fresh.row_sq)
    assert reused.work.shape == fresh.work.shape and reused.work32.shape == fresh.work32.shape
    assert not np.shares_memory(reused.st.u, reused.work) and not np.shares_memory(reused.u32, reused.work32)
    back = ipm_products._restrict(whole, out_a, bound_row, reused)   # more columns than it holds: new arrays
    assert not np.shares_memory(back.st.u, reused.st.u)
    np.testing.assert_array_equal(back.st.u, ipm_products._restrict(whole, out_a, bound_row).st.u)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_restriction_exact_for_rows_left_with_one_or_no_beamlet(seed):
    """Hinge rows over only 1–2 beamlets each: when eager drops remove those beamlets, the restricted
    LP's structure (the whole one's, sub-set) keeps rows with one or no dense entry; the optimum is
    still HiGHS's."""
    rng = np.random.default_rng(seed)
    n, m = 40, 200
    a = np.zeros((m, n))
    for i in range(m):
        a[i, rng.choice(n, size=rng.integers(1, 3), replace=False)] = rng.uniform(0.5, 2.0)
    y = cp.Variable(n, nonneg=True)
    cost = rng.uniform(0.0, 0.2, n) * (rng.random(n) < 0.5) + rng.uniform(0.0, 3.0, n) * (rng.random(n) < 0.5)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.pos(1.0 - a @ y)) / m + cost @ y), [cp.sum(y) <= 0.5 * n])
    prob.solve(solver="HIGHS")
    ref = prob.value
    data, _, _ = prob.get_problem_data(cp.CLARABEL)
    sol = solve_lp(data["c"], sp.csr_matrix(data["A"]), data["b"], options=EAGER)
    assert sol.status == "optimal"
    assert sol.objective + float(data.get("offset", 0.0)) == pytest.approx(ref, rel=1e-6, abs=1e-8)
    big = sp.csr_matrix(data["A"])
    st = find_structure(big)
    beamlets = ipm_products._bounded_columns(st, data["b"], big.shape[1])[0]
    dropped = beamlets[sol.z[beamlets] == 0.0]
    assert sol.columns_out > 0 and dropped.size == sol.columns_out
    kept = np.setdiff1d(st.dense_cols, dropped)
    dense_left = (big[st.p_rows][:, kept] != 0).sum(axis=1).A1        # hinge rows: beamlets left in each
    assert (dense_left == 0).any() and (dense_left == 1).any()


def _shared_lp(seed: int):
    """Hinge under-dose rows of 30 voxels over 12 beamlets, an upper bound on 10 of the same voxels (factor +1)
    and a scaled copy of 5 of those bounds (factor 2.5), y ≥ 0: (c, CSR part, b, SharedRows, whole matrix)."""
    rng = np.random.default_rng(seed)
    n_vox, n = 30, 12
    u = rng.random((n_vox, n)) * (rng.random((n_vox, n)) < 0.8)
    u *= 24.0 / u.sum(axis=1).mean()
    bound = rng.choice(n_vox, 10, replace=False)
    m = 2 * n_vox + 10 + 5 + n
    n_z = n + n_vox
    rows = np.concatenate([np.arange(n_vox), 2 * n_vox + np.arange(15)])
    group = np.concatenate([np.arange(n_vox), bound, bound[:5]])
    factor = np.concatenate([-np.ones(n_vox), np.ones(10), np.full(5, 2.5)])
    shared = ipm.SharedRows(block=u, rows=rows, group=group, factor=factor, cols=np.arange(n))
    a = sp.lil_matrix((m, n_z))
    for v in range(n_vox):
        a[v, n + v] = -1.0                       # −u_v y − t_v ≤ −24
        a[n_vox + v, n + v] = -1.0               # −t_v ≤ 0
    for j in range(n):
        a[2 * n_vox + 15 + j, j] = -1.0          # −y ≤ 0
    limit = rng.uniform(20.0, 30.0, 10)
    b = np.concatenate([np.full(n_vox, -24.0), np.zeros(n_vox), limit, 2.5 * limit[:5] * 0.98, np.zeros(n)])
    c = np.concatenate([np.full(n, 1e-3), rng.uniform(0.5, 1.5, n_vox) / n_vox])
    a = a.tocsr()
    return c, a, b, shared, (a + shared.tocsr(a.shape)).tocsr()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_rows_same_path_as_written_out(seed):
    """Rows given once in SharedRows (factors −1, +1, 2.5 on the same voxel rows) enter the normal matrix once with
    the summed weight: the same iterates as the matrix written out (same iterations and objective), the optimum of
    HiGHS, and one dense row per voxel."""
    from scipy.optimize import linprog

    c, a, b, shared, whole = _shared_lp(seed)
    ref = linprog(c, A_ub=whole, b_ub=b, bounds=(None, None), method="highs")
    written = solve_lp(c, whole, b)
    given = solve_lp(c, a, b, shared=shared)
    assert ref.status == 0 and written.status == given.status == "optimal"
    assert given.iterations == written.iterations
    assert given.objective == pytest.approx(written.objective, rel=1e-9)
    assert given.objective == pytest.approx(ref.fun, rel=1e-7)
    st = find_structure(a, shared)
    assert st.u.shape[0] == 30 and st.p_rows.size == 45


def test_block_scale_scales_the_shared_columns_into_u():
    """find_structure's block_scale gives the u of a block scaled beforehand, whether the shared columns sit in a
    run of the dense columns (copied by a slice) or not (here reversed: a fancy index)."""
    c, a, b, shared, whole = _shared_lp(0)
    scale = np.random.default_rng(5).uniform(0.5, 2.0, shared.cols.size)
    for cols, block, sc in ((shared.cols, shared.block, scale), (shared.cols[::-1], shared.block[:, ::-1], scale[::-1])):
        given = ipm.SharedRows(block=block, rows=shared.rows, group=shared.group, factor=shared.factor, cols=cols)
        scaled = ipm.SharedRows(block=block * sc, rows=shared.rows, group=shared.group, factor=shared.factor,
                                cols=cols)
        np.testing.assert_array_equal(find_structure(a, given, sc).u, find_structure(a, scaled).u)
    assert not np.array_equal(find_structure(a, shared, scale).u, find_structure(a, shared).u)


def test_float32_products_within_range_else_float64():
    """The solves' products in float32 agree with float64's to float32 precision; the rows named double are
    exact; a vector beyond float32's range (a diverging iterate) is multiplied in float64 instead of
    becoming inf."""
    rng = np.random.default_rng(0)
    u = rng.random((300, 40))
    x, v = rng.random(40), rng.random(300)
    single = ipm_products._Rows(u.astype(np.float32))
    np.testing.assert_allclose(single.dot(u, x), u @ x, rtol=1e-6)
    np.testing.assert_allclose(single.tdot(u, v), u.T @ v, rtol=1e-6)
    assert not np.array_equal(single.dot(u, x), u @ x)             # float32 indeed
    double = np.arange(0, 300, 7)
    mixed = ipm_products._Rows(u.astype(np.float32), double, u[double])
    np.testing.assert_array_equal(mixed.dot(u, x)[double], u[double] @ x)
    np.testing.assert_allclose(mixed.dot(u, x), u @ x, rtol=1e-6)
    only = np.zeros(300)
    only[double] = v[double]
    np.testing.assert_allclose(mixed.tdot(u, only), u.T @ only, rtol=1e-12)   # no float32 share left
    np.testing.assert_allclose(mixed.tdot(u, v), u.T @ v, rtol=1e-6)
    for rows in (single, mixed):
        big = x * 1e39
        out = rows.dot(u, big)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, u @ big)
        out = rows.tdot(u, v * 1e39)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, u.T @ (v * 1e39))


def test_mixed_precision_sum_keeps_float64_where_the_trace_is():
    """Below the single-precision gap, H = Σ ω_g u_gᵀu_g is summed in float64 over the rows carrying all but
    double_precision_share of its trace and in float32 over the rest: within float64's error of the float64
    sum, far inside float32's; share 0 is the float64 sum itself."""
    from types import SimpleNamespace

    rng = np.random.default_rng(1)
    k, n = 400, 30
    u = rng.random((k, n))
    omega = 10.0 ** rng.uniform(-14, 0, k)           # a solve's tail: most rows nearly inactive
    u32 = u.astype(np.float32)
    lp = SimpleNamespace(st=SimpleNamespace(u=u), work=np.empty_like(u), u32=u32, work32=np.empty_like(u32),
                         row_sq=np.einsum("ij,ij->i", u, u))
    exact, none = ipm_newton._sum_h(lp, omega, "double")
    assert none is None
    upper = np.triu_indices(n)
    h64 = exact[upper]
    single, _ = ipm_newton._sum_h(lp, omega, "single")
    err_single = np.abs(single[upper] - h64).max() / np.abs(h64).max()
    assert 1e-9 < err_single < 1e-5
    mixed, rows = ipm_newton._sum_h(lp, omega, "mixed")
    err_mixed = np.abs(mixed[upper] - h64).max() / np.abs(h64).max()
    assert err_mixed < 1e-13 and err_mixed < 1e-4 * err_single
    share = omega * lp.row_sq
    in32 = np.ones(k, bool)
    in32[rows.double] = False
    assert 0 < in32.sum() < k
    assert share[in32].sum() <= IpmOptions().double_precision_share * share.sum()
    assert share[in32].max() <= share[rows.double].min()           # the smallest shares go to float32
    same, none = ipm_newton._sum_h(lp, omega, "mixed", 0.0)
    assert none is None
    np.testing.assert_array_equal(same[upper], h64)


def test_shared_rows_checked():
    c, a, b, shared, whole = _shared_lp(0)
    with pytest.raises(StructureError, match="CSR part has entries"):
        find_structure(whole, shared)
    with pytest.raises(StructureError, match="block must be"):
        ipm.SharedRows(block=shared.block[:, :5], rows=shared.rows, group=shared.group, factor=shared.factor,
                       cols=shared.cols)
    with pytest.raises(StructureError, match="distinct"):
        ipm.SharedRows(block=shared.block, rows=np.zeros_like(shared.rows), group=shared.group,
                       factor=shared.factor, cols=shared.cols)
    with pytest.raises(StructureError, match="block_scale: expected one factor per shared column"):
        find_structure(a, shared, np.ones(shared.cols.size - 1))
    with pytest.raises(StructureError, match="block_scale: given without shared rows"):
        find_structure(whole, None, np.ones(3))


@pytest.mark.parametrize("seed", [0, 3])
def test_single_precision_early_iterations_same_optimum(seed, monkeypatch):
    """H summed in float32 while the gap is large (inexact directions), and in part after it, reaches the
    optimum of float64 throughout."""
    _, _, c, a, b = _lp_data(seed)
    used = []

    class Spy(ipm_newton._Newton):
        def __init__(self, lp, s, lam, reg, precision="double", double_share=1e-7):
            used.append(precision == "single")
            super().__init__(lp, s, lam, reg, precision, double_share)

    monkeypatch.setattr(ipm_iterate, "_Newton", Spy)
    exact = solve_lp(c, a, b, options=IpmOptions(single_precision_gap=np.inf, double_precision_share=0.0))
    assert not any(used)                                                # float64 throughout
    for gap in (1e-2, 1e-4):
        used.clear()
        sol = solve_lp(c, a, b, options=IpmOptions(single_precision_gap=gap))
        assert sol.status == "optimal" and any(used) and not all(used)
        assert sol.objective == pytest.approx(exact.objective, rel=1e-7, abs=1e-9)
    for share in (0.0, 1e-3):                   # float64 tail; a tail with 0.1 % of H's trace in float32
        sol = solve_lp(c, a, b, options=IpmOptions(double_precision_share=share))
        assert sol.status == "optimal"
        assert sol.objective == pytest.approx(exact.objective, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 2])
def test_check_interrupts_and_start_resumes_the_same_path(seed):
    """A check that returns False changes nothing; one that returns True stops at the first iterate with gap ≤
    check_gap, and a start from that iterate finishes the same path: same iterations in all, same optimum.  A
    start whose slacks and duals of some rows are unknown (NaN, as rows new to the LP) reaches it too."""
    _, _, c, a, b = _lp_data(seed)
    whole = solve_lp(c, a, b)
    seen = []
    same = solve_lp(c, a, b, check=lambda *point: seen.append(point) is not None, check_gap=0.2)
    assert len(seen) == 1 and [v.shape for v in seen[0]] == [c.shape, b.shape, b.shape]
    assert (same.status, same.iterations, same.objective) == (whole.status, whole.iterations, whole.objective)
    stop = solve_lp(c, a, b, check=lambda *point: True, check_gap=0.2)
    assert stop.status == "interrupted" and stop.gap <= 0.2 and 0 < stop.iterations < whole.iterations
    for given, returned in zip(seen[0], (stop.z, stop.s, stop.lam)):       # the same iterate both ways
        np.testing.assert_array_equal(given, returned)
    resumed = solve_lp(c, a, b, start=(stop.z, stop.s, stop.lam))
    assert resumed.status == "optimal"
    assert stop.iterations + resumed.iterations == whole.iterations
    assert resumed.objective == pytest.approx(whole.objective, rel=1e-12, abs=1e-12)
    s, lam = stop.s.copy(), stop.lam.copy()
    unknown = np.random.default_rng(seed).random(b.size) < 0.2
    s[unknown] = lam[unknown] = np.nan
    centred = solve_lp(c, a, b, start=(stop.z, s, lam))
    assert centred.status == "optimal"
    assert centred.objective == pytest.approx(whole.objective, rel=1e-6, abs=1e-9)


def test_bad_start_raises_naming_it():
    _, _, c, a, b = _lp_data(0)
    with pytest.raises(ValueError, match="start"):
        solve_lp(c, a, b, start=(np.zeros(c.size), np.ones(b.size - 1), np.ones(b.size)))
    with pytest.raises(ValueError, match="start"):
        solve_lp(c, a, b, start=(np.full(c.size, np.nan), np.ones(b.size), np.ones(b.size)))
