"""The dense-column LP solver (optimizer._schur_ipm) against HiGHS, in CI.

HiGHS (scipy.optimize.linprog(method="highs")) is the reference on the same LP,
``min cᵀz s.t. A z ≤ b`` (free z; bounds as rows, as the solver takes them): small standard
LPs whose status or optimum is known by hand, seeded random FMO-shaped LPs, and one coarse
phantom's FMO LP.  Both stop at relative residuals 1e-8 (the solver on its equilibrated
data), so optimal objectives agree to 1e-6 relative.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from _blas_kernels import blas_kernels
from optimizer._schur_ipm import IpmOptions, LpStatus, solve_lp

#: linprog's status codes.
HIGHS_OPTIMAL, HIGHS_INFEASIBLE, HIGHS_UNBOUNDED = 0, 2, 3


def _highs(c, a, b):
    return linprog(c, A_ub=sp.csr_matrix(a), b_ub=b, bounds=(None, None), method="highs")


def _both(c, a, b, **kw):
    a = sp.csr_matrix(np.asarray(a, dtype=float)) if not sp.issparse(a) else a
    return solve_lp(np.asarray(c, float), a, np.asarray(b, float), **kw), _highs(c, a, b)


def test_textbook_optimum_and_duals():
    """max x1 + x2 s.t. x1 + 2 x2 ≤ 4, 3 x1 + x2 ≤ 6, x ≥ 0: vertex (8/5, 6/5), value 14/5; the duals
    (2/5, 1/5) solve (1, 2) y1 + (3, 1) y2 = (1, 1)."""
    sol, ref = _both([-1, -1], [[1, 2], [3, 1], [-1, 0], [0, -1]], [4, 6, 0, 0])
    assert sol.status is LpStatus.OPTIMAL and ref.status == HIGHS_OPTIMAL
    assert sol.objective == pytest.approx(-2.8, abs=1e-8) == pytest.approx(ref.fun, abs=1e-8)
    np.testing.assert_allclose(sol.lam[:2], [0.4, 0.2], atol=1e-7)


def test_infeasible_returns_its_status_with_a_farkas_certificate():
    """x1 + x2 ≥ 2 and x1 + x2 ≤ 1 (x ≥ 0): no point; λ ≥ 0 with Aᵀλ ≈ 0 and bᵀλ < 0 proves it
    (λ = (1, 1, 0, 0): rows 1 + 2 sum to 0 ≤ −1)."""
    a = np.array([[-1.0, -1], [1, 1], [-1, 0], [0, -1]])
    b = np.array([-2.0, 1, 0, 0])
    sol, ref = _both([1, 1], a, b)
    assert ref.status == HIGHS_INFEASIBLE
    assert sol.status is LpStatus.INFEASIBLE
    lam = sol.lam
    assert lam.min() >= 0 and b @ lam < 0
    assert np.abs(a.T @ lam).max() <= 1e-6 * -(b @ lam)


def test_unbounded_returns_its_status_with_a_ray():
    """min −x1 − x2 s.t. x1 − x2 ≤ 1, x ≥ 0: feasible, and (1, 1) is a ray (A·(1, 1) = (0, −1, −1) ≤ 0,
    cost −2 < 0); HiGHS says unbounded too."""
    a = np.array([[1.0, -1], [-1, 0], [0, -1]])
    sol, ref = _both([-1, -1], a, [1, 0, 0])
    assert ref.status == HIGHS_UNBOUNDED
    assert sol.status is LpStatus.UNBOUNDED
    z = sol.z
    assert np.array([-1.0, -1]) @ z < 0 and (a @ z).max() <= 1e-6 * -(np.array([-1.0, -1]) @ z)


def test_unbounded_free_variable():
    """min x s.t. x ≤ 3: x → −∞."""
    sol, ref = _both([1.0], [[1.0]], [3.0])
    assert ref.status == HIGHS_UNBOUNDED and sol.status is LpStatus.UNBOUNDED


def test_infeasible_with_a_ray_is_infeasible_not_unbounded():
    """x ≥ 1, x ≤ 0, min −y over y ≥ 0: y has a ray, but there is no feasible point."""
    sol, ref = _both([0.0, -1], [[-1.0, 0], [1, 0], [0, -1]], [-1, 0, 0])
    assert ref.status in (HIGHS_INFEASIBLE, 4)        # HiGHS's presolve may say "infeasible or unbounded" (4)
    assert sol.status is LpStatus.INFEASIBLE


@pytest.mark.parametrize("redundant", [0, 3])
def test_degenerate_optimal_face_and_vertex(redundant):
    """min −x1 − x2 s.t. x1 + x2 ≤ 1, x1 ≤ 1, x2 ≤ 1, x ≥ 0: a whole edge is optimal (value −1); the
    vertices (1, 0) and (0, 1) are degenerate (three active rows in 2-D), more so with copies of the
    first row (``redundant``)."""
    a = [[1.0, 1], [1, 0], [0, 1], [-1, 0], [0, -1]] + [[1.0, 1]] * redundant
    b = [1.0, 1, 1, 0, 0] + [1.0] * redundant
    sol, ref = _both([-1, -1], a, b)
    assert sol.status is LpStatus.OPTIMAL and ref.status == HIGHS_OPTIMAL
    assert sol.objective == pytest.approx(-1.0, abs=1e-7) and ref.fun == pytest.approx(-1.0, abs=1e-9)
    assert sol.z.sum() == pytest.approx(1.0, abs=1e-7) and sol.z.min() >= -1e-8


def test_degenerate_zero_objective():
    """c = 0: every feasible point is optimal (value 0); the solver must still stop optimal."""
    sol, ref = _both([0.0, 0.0], [[1.0, 1], [-1, 0], [0, -1]], [1, 0, 0])
    assert sol.status is LpStatus.OPTIMAL and ref.status == HIGHS_OPTIMAL
    assert sol.objective == pytest.approx(0.0, abs=1e-9)


def test_equality_rows_refused_by_the_cvxpy_interface():
    """The solver takes inequality rows only; through cvxpy an equality row is refused by name (use HiGHS)."""
    cp = pytest.importorskip("cvxpy")
    from optimizer._schur_ipm_cvxpy import SchurIpm

    x = cp.Variable(2)
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 0, x[0] + x[1] == 1])
    with pytest.raises(cp.error.SolverError, match="1 equality rows.*HIGHS"):
        prob.solve(solver=SchurIpm())


def test_iteration_limit_returns_its_status():
    sol, _ = _both([-1, -1], [[1, 2], [3, 1], [-1, 0], [0, -1]], [4, 6, 0, 0], options=IpmOptions(max_iter=1))
    assert sol.status is LpStatus.ITERATION_LIMIT and sol.iterations == 1


def _fmo_shaped(seed: int, n_beamlets: int = 30, n_target: int = 60, n_oar: int = 40):
    """A random FMO-shaped LP in standard form, over z = (y, t): minimize mean hinge under-dose
    Σ w_i t_i + ε Σ y, with t_i ≥ R − a_i y, t ≥ 0, OAR rows a_o y ≤ L, y ≥ 0; dense beamlet columns
    (70 % filled), one sparse column per target row."""
    rng = np.random.default_rng(seed)
    a_t = rng.random((n_target, n_beamlets)) * (rng.random((n_target, n_beamlets)) < 0.7)
    a_o = 0.5 * rng.random((n_oar, n_beamlets))
    scale = 24.0 / a_t.sum(axis=1).mean()
    a_t, a_o = scale * a_t, scale * a_o
    w = rng.random(n_target)
    c = np.concatenate([np.full(n_beamlets, 1e-3 / n_beamlets), w / w.sum()])
    eye_t = sp.identity(n_target)
    a = sp.vstack([sp.hstack([-sp.csr_matrix(a_t), -eye_t]),                 # R − a_t y − t ≤ 0
                   sp.hstack([sp.csr_matrix((n_target, n_beamlets)), -eye_t]),   # t ≥ 0
                   sp.hstack([sp.csr_matrix(a_o), sp.csr_matrix((n_oar, n_target))]),   # a_o y ≤ L
                   sp.hstack([-sp.identity(n_beamlets), sp.csr_matrix((n_beamlets, n_target))])]).tocsr()
    b = np.concatenate([np.full(n_target, -24.05), np.zeros(n_target), rng.uniform(6.0, 12.0, n_oar),
                        np.zeros(n_beamlets)])
    return c, a, b


@pytest.mark.parametrize("seed", range(6))
def test_random_fmo_shaped_lps_match_highs(seed):
    c, a, b = _fmo_shaped(seed)
    sol, ref = _both(c, a, b)
    assert ref.status == HIGHS_OPTIMAL and sol.status is LpStatus.OPTIMAL
    assert sol.objective == pytest.approx(ref.fun, rel=1e-6)
    assert (a @ sol.z - b).max() <= 1e-6 * (1 + np.abs(b).max())


def test_random_fmo_shaped_lp_made_infeasible():
    """The same LP with one OAR limit below 0 Gy (y ≥ 0 cannot reach it): infeasible for both."""
    c, a, b = _fmo_shaped(0)
    b = b.copy()
    b[2 * 60] = -1.0
    sol, ref = _both(c, a, b)
    assert ref.status == HIGHS_INFEASIBLE and sol.status is LpStatus.INFEASIBLE


def test_coarse_phantom_fmo_lp_matches_highs(monkeypatch):
    """The last LP of the coarse C3 ``exact`` FMO (4 mm CT, 5 mm dose grid, 10 mm beamlets; the LP
    the solver finished on, voxel rows shared): the solver's optimum is HiGHS's within 1e-6 relative."""
    import optimizer._fmo_lp as fmo_lp
    from constraints.protocol import load_protocol
    from optimizer.fmo import FmoOptions, solve_fmo
    from optimizer.cli.phantom_case import case_from_phantom
    from optimizer.fmo_strategies import build_spec

    protocol = load_protocol("koide2024")
    fcase = case_from_phantom("c3_cervical", protocol, grid_mm=4.0, dose_grid_mm=5.0, bixel_mm=10.0)
    spec = build_spec(fcase, protocol, "exact")
    lps = []
    assemble = fmo_lp.assemble_lp

    def spy(*args, **kw):
        lps.append(assemble(*args, **kw))
        return lps[-1]

    monkeypatch.setattr(fmo_lp, "assemble_lp", spy)
    result = solve_fmo(spec, FmoOptions())
    assert result.status == "optimal"
    lp = lps[-1]
    sol = solve_lp(lp.c, lp.a, lp.b, shared=lp.shared)
    ref = _highs(lp.c, lp.matrix(), lp.b)
    assert sol.status is LpStatus.OPTIMAL and ref.status == HIGHS_OPTIMAL
    assert sol.objective == pytest.approx(ref.fun, rel=1e-6)
    assert result.objective == pytest.approx(ref.fun, rel=1e-6)


@pytest.mark.parametrize("bad", [{"tol_feas": 0.0}, {"max_iter": 0}, {"max_iter": 2.5}, {"step_fraction": 1.0},
                                 {"drop_ratio": -1.0}, {"ruiz_passes": float("nan")}])
def test_bad_options_refused_by_name(bad):
    from constraints.errors import InputError

    with pytest.raises(InputError, match=next(iter(bad))):
        IpmOptions(**bad)


def test_options_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        IpmOptions().tol_gap = 1e-3


def test_non_finite_newton_system_returns_numerical_error(monkeypatch):
    """A Newton system that overflows (scipy's check_finite raises ValueError) ends the solve with
    ``numerical_error`` and the last iterate, not with scipy's exception."""
    import optimizer._schur_ipm_newton as newton

    def overflow(self, r_p, r_d, r_c):
        raise ValueError("array must not contain infs or NaNs")
    monkeypatch.setattr(newton._Newton, "solve", overflow)
    c, a, b = _fmo_shaped(0)
    sol = solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float))
    assert sol.status is LpStatus.NUMERICAL_ERROR and np.isfinite(sol.z).all()


def test_diverging_iterates_take_float64_directions():
    """Above ``divergence_gap`` the directions are float64, so that the Farkas certificate of the
    infeasible FMO-shaped LP reaches ``tol_feas``; with the float32 directions it stalled at
    2-5e-8 (and overflowed at λ ≈ 1e38 with OpenBLAS' SkylakeX kernels)."""
    c, a, b = _fmo_shaped(0)
    b = b.copy()
    b[2 * 60] = -1.0
    sol = solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float))
    assert sol.status is LpStatus.INFEASIBLE and sol.iterations <= 20
    stalled = solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float),
                       options=IpmOptions(divergence_gap=np.inf, max_iter=20))
    assert stalled.status is LpStatus.ITERATION_LIMIT


_KERNEL_CHILD = r"""
import json, sys
import numpy as np, scipy.sparse as sp
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from test_lp_solver_vs_highs import _fmo_shaped
from optimizer._schur_ipm import solve_lp
out = []
for seed in range(3):
    c, a, b = _fmo_shaped(seed)
    sol = solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float))
    out.append([str(sol.status), float(sol.objective)])
c, a, b = _fmo_shaped(0)
b = b.copy()
b[2 * 60] = -1.0
out.append([str(solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float)).status), 0.0])
print(json.dumps(out))
"""


def test_every_blas_kernel_gives_the_same_statuses_and_optima():
    """On each OpenBLAS kernel the CPU runs, three random FMO-shaped LPs are optimal with HiGHS'
    optimum (1e-6 relative) and the infeasible one infeasible (float32 directions once
    overflowed on SkylakeX alone)."""
    kernels = blas_kernels()
    if len(kernels) < 2:
        pytest.skip("this CPU runs fewer than two OpenBLAS kernels")
    root = Path(__file__).resolve().parents[2]
    expected = [_highs(*_fmo_shaped(seed)).fun for seed in range(3)]
    for kernel in kernels:
        env = dict(os.environ, OPENBLAS_CORETYPE=kernel,
                   PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run([sys.executable, "-c", _KERNEL_CHILD, str(Path(__file__).parent),
                              str(Path(__file__).parents[1])], env=env,
                             cwd=str(root), capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        assert [status for status, _ in result] == ["optimal"] * 3 + ["infeasible"], kernel
        for (_, objective), reference in zip(result, expected):
            assert objective == pytest.approx(reference, rel=1e-6), kernel


def test_other_value_errors_are_not_read_as_numerical_error(monkeypatch):
    """Only scipy's refusal of inf/NaN is a numerical status; another ValueError is a fault."""
    import optimizer._schur_ipm_newton as newton

    def broken(self, r_p, r_d, r_c):
        raise ValueError("shapes (3,) and (4,) not aligned")
    monkeypatch.setattr(newton._Newton, "solve", broken)
    c, a, b = _fmo_shaped(0)
    with pytest.raises(ValueError, match="not aligned"):
        solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float))


def test_singular_newton_system_returns_numerical_error(monkeypatch):
    """A Newton system that is not positive definite in float64 either (LinAlgError, itself a
    ValueError) ends the solve with ``numerical_error``, not the exception."""
    import numpy.linalg
    import optimizer._schur_ipm_newton as newton

    def singular(self, r_p, r_d, r_c):
        raise numpy.linalg.LinAlgError("2-th leading minor of the array is not positive definite")
    monkeypatch.setattr(newton._Newton, "solve", singular)
    c, a, b = _fmo_shaped(0)
    sol = solve_lp(np.asarray(c, float), sp.csr_matrix(a), np.asarray(b, float))
    assert sol.status is LpStatus.NUMERICAL_ERROR
