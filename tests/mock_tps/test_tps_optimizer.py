"""Tests of the mock TPS optimizer core: penalties checked by hand, gradients against
finite differences, constrained optima of tiny problems worked out on paper, and a
random feasible problem whose constraints must hold."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse

from constraints.errors import InputError
from mock_tps._tps_optimizer import (
    FUNCTION_TYPES,
    FunctionSpec,
    constraint_violation_gy,
    objective_value_and_gradient,
    optimize_beamlet_weights,
    penalty_value_and_dose_gradient,
)


def spec(ftype, index, **kwargs):
    index = np.asarray(index)
    kwargs.setdefault("voxel_volume_weight", np.ones(index.size))
    return FunctionSpec(ftype, index, **kwargs)


# ----------------------------------------------------------------- hand values
def test_max_dose_value_and_gradient_by_hand():
    s = spec("MaxDose", [0, 1, 2], dose_level_gy=10.0, voxel_volume_weight=np.array([1.0, 1.0, 2.0]))
    value, grad = penalty_value_and_dose_gradient(s, np.array([12.0, 9.0, 13.0]))
    # weights 1/4, 1/4, 1/2: 0.25 * 2**2 + 0.5 * 3**2 = 5.5
    assert value == pytest.approx(0.25 * 4 + 0.5 * 9)
    np.testing.assert_allclose(grad, [2 * 0.25 * 2, 0.0, 2 * 0.5 * 3])


def test_min_and_uniform_dose_by_hand():
    dose = np.array([18.0, 22.0])
    assert penalty_value_and_dose_gradient(spec("MinDose", [0, 1], dose_level_gy=20.0), dose)[0] == pytest.approx(
        0.5 * 2 ** 2)
    assert penalty_value_and_dose_gradient(spec("UniformDose", [0, 1], dose_level_gy=20.0), dose)[0] == \
        pytest.approx(0.5 * 4 + 0.5 * 4)


def test_dvh_values_and_violations_by_hand():
    dose = np.array([30.0, 25.0, 15.0, 5.0])
    # MaxDvh 10 Gy at 25 %: hottest voxel (25 % of the volume) exempt; 25 and 15 Gy penalized.
    max_dvh = spec("MaxDvh", [0, 1, 2, 3], dose_level_gy=10.0, percent_volume=25.0)
    assert penalty_value_and_dose_gradient(max_dvh, dose)[0] == pytest.approx((15 ** 2 + 5 ** 2) / 4)
    assert constraint_violation_gy(max_dvh, dose) == pytest.approx(25.0 - 10.0)
    # MinDvh 20 Gy at 75 %: the three hottest make up 75 %; only 15 Gy is short, by 5 Gy.
    min_dvh = spec("MinDvh", [0, 1, 2, 3], dose_level_gy=20.0, percent_volume=75.0)
    assert penalty_value_and_dose_gradient(min_dvh, dose)[0] == pytest.approx(5 ** 2 / 4)
    assert constraint_violation_gy(min_dvh, dose) == pytest.approx(20.0 - 15.0)


def test_dose_fall_off_reference_by_hand():
    # high 20, low 4, low-dose distance 20 mm: reference 20 - 16 * s / 20, floored at 4 -> [20, 16, 12, 4, 4]
    s = spec("DoseFallOff", [0, 1, 2, 3, 4], high_dose_level_gy=20.0, low_dose_level_gy=4.0,
             low_dose_distance_mm=20.0, distance_mm=np.array([0.0, 5.0, 10.0, 20.0, 30.0]))
    reference = np.array([20.0, 16.0, 12.0, 4.0, 4.0])
    assert penalty_value_and_dose_gradient(s, reference)[0] == 0.0
    assert penalty_value_and_dose_gradient(s, reference + 1.0)[0] == pytest.approx(1.0)
    assert penalty_value_and_dose_gradient(s, reference - 1.0)[0] == 0.0
    assert constraint_violation_gy(s, reference + np.array([0, 0, 3.0, 0, 0])) == pytest.approx(3.0)


def test_eud_by_hand():
    # a = 2, doses 3 and 4 Gy of equal volume: EUD = sqrt((9 + 16) / 2)
    eud = math.sqrt(12.5)
    dose = np.array([3.0, 4.0])
    assert penalty_value_and_dose_gradient(spec("MaxEud", [0, 1], dose_level_gy=3.0, eud_parameter_a=2.0),
                                           dose)[0] == pytest.approx((eud - 3.0) ** 2)
    assert penalty_value_and_dose_gradient(spec("MinEud", [0, 1], dose_level_gy=4.0, eud_parameter_a=2.0),
                                           dose)[0] == pytest.approx((4.0 - eud) ** 2)
    assert constraint_violation_gy(spec("MinEud", [0, 1], dose_level_gy=4.0, eud_parameter_a=2.0),
                                   dose) == pytest.approx(4.0 - eud)


# ----------------------------------------------------------------- gradients
GRADIENT_CASES = {
    "MaxDose": dict(dose_level_gy=20.0),
    "MinDose": dict(dose_level_gy=25.0),
    "MaxDvh": dict(dose_level_gy=18.0, percent_volume=30.0),
    "MinDvh": dict(dose_level_gy=26.0, percent_volume=60.0),
    "UniformDose": dict(dose_level_gy=22.0),
    "DoseFallOff": dict(high_dose_level_gy=24.0, low_dose_level_gy=6.0, low_dose_distance_mm=15.0),
    "MaxEud": dict(dose_level_gy=15.0, eud_parameter_a=8.0),
    "MinEud": dict(dose_level_gy=28.0, eud_parameter_a=-10.0),
    "UniformityConstraint": dict(percent_std_deviation=5.0),
}


def test_every_function_type_has_a_gradient_case():
    assert set(GRADIENT_CASES) == set(FUNCTION_TYPES)


@pytest.mark.parametrize("ftype", sorted(GRADIENT_CASES))
def test_dose_gradient_matches_finite_differences(ftype):
    rng = np.random.default_rng(1)
    n = 40
    dose = rng.uniform(10.0, 30.0, n)  # distinct doses: the DVH sets do not change under a 1e-6 step
    kwargs = dict(GRADIENT_CASES[ftype])
    if ftype == "DoseFallOff":
        kwargs["distance_mm"] = rng.uniform(0.0, 25.0, n)
    s = spec(ftype, np.arange(n), voxel_volume_weight=rng.uniform(0.2, 1.0, n), **kwargs)
    value, grad = penalty_value_and_dose_gradient(s, dose)
    assert value > 0
    step = 1e-6
    numeric = np.array([(penalty_value_and_dose_gradient(s, dose + step * e)[0]
                         - penalty_value_and_dose_gradient(s, dose - step * e)[0]) / (2 * step)
                        for e in np.eye(n)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_weight_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    influence = scipy.sparse.random(60, 8, density=0.5, random_state=rng, format="csr")
    weights = rng.uniform(1.0, 3.0, 8)
    functions = [spec("MinDose", np.arange(0, 20), dose_level_gy=8.0, weight=5.0),
                 spec("MaxDvh", np.arange(20, 60), dose_level_gy=1.0, percent_volume=20.0, weight=2.0),
                 spec("MaxEud", np.arange(10, 40), dose_level_gy=0.5, eud_parameter_a=3.0),
                 spec("MaxDose", np.arange(30, 60), dose_level_gy=0.0, is_constraint=True)]  # not in objective
    value, grad = objective_value_and_gradient(influence, functions, weights, fractions=3)
    step = 1e-6
    numeric = np.array([(objective_value_and_gradient(influence, functions, weights + step * e, fractions=3)[0]
                         - objective_value_and_gradient(influence, functions, weights - step * e, fractions=3)[0])
                        / (2 * step) for e in np.eye(8)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)
    # the constraint is not part of the objective: dropping it leaves the value unchanged
    assert objective_value_and_gradient(influence, functions[:3], weights, fractions=3)[0] == value


# ----------------------------------------------------------------- optima by hand
def test_identity_influence_reaches_levels_over_fractions():
    influence = scipy.sparse.identity(3, format="csr")  # 1 Gy per fraction per unit weight
    functions = [spec("MinDose", [0], dose_level_gy=24.0), spec("MaxDose", [0], dose_level_gy=24.0),
                 spec("MaxDose", [1], dose_level_gy=10.0),
                 spec("UniformDose", [2], dose_level_gy=9.0)]
    result = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(3))
    # voxel 0 pinned at 24 Gy = 2 fx x 12; voxel 1 has no reason to rise; voxel 2 at 9 Gy = 2 x 4.5
    np.testing.assert_allclose(result.weights, [12.0, 0.0, 4.5], atol=1e-4)
    assert result.converged
    assert result.objective_values[-1] == pytest.approx(0.0, abs=1e-6)


def test_shared_beamlet_objective_trade_off_by_hand():
    # One beamlet, 1 Gy/fx to the target voxel and 0.5 Gy/fx to the OAR voxel, 2 fx: d0 = 2w, d1 = w.
    # F = 1 (20 - 2w)^2 + 4 (w - 6)^2 -> dF/dw = -4 (20 - 2w) + 8 (w - 6) = 0 -> w = 8, F = 16 + 16
    influence = scipy.sparse.csr_matrix(np.array([[1.0], [0.5]]))
    functions = [spec("MinDose", [0], dose_level_gy=20.0, weight=1.0),
                 spec("MaxDose", [1], dose_level_gy=6.0, weight=4.0)]
    result = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(1))
    assert result.weights[0] == pytest.approx(8.0, abs=1e-3)
    assert result.objective_values[-1] == pytest.approx(32.0, abs=1e-3)
    assert result.function_values == pytest.approx((16.0, 4.0), abs=1e-3)


def test_shared_beamlet_max_dose_constraint_holds():
    # Same geometry, OAR MaxDose 6 Gy as a constraint: w <= 6 -> d0 = 12 Gy, objective (20 - 12)^2 = 64.
    influence = scipy.sparse.csr_matrix(np.array([[1.0], [0.5]]))
    functions = [spec("MinDose", [0], dose_level_gy=20.0, weight=1.0),
                 spec("MaxDose", [1], dose_level_gy=6.0, is_constraint=True)]
    result = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(1),
                                      constraint_tolerance_gy=0.05)
    oar_dose_gy = 2 * 0.5 * result.weights[0]
    assert oar_dose_gy <= 6.0 + 0.05
    assert oar_dose_gy == pytest.approx(6.0, abs=0.05)
    assert result.objective_values[-1] == pytest.approx(64.0, abs=2 * 8 * 0.1)
    assert result.constraint_satisfied == (None, True)
    assert result.constraint_violations_gy[1] <= 0.05


def test_max_dvh_constraint_leaves_the_hottest_volume_by_hand():
    # 10 independent voxels want 20 Gy; at most 30 % of the volume may exceed 10 Gy.
    # Optimum: the 3 voxels that start hottest stay at 20 Gy, 7 drop to 10 Gy; F = 0.7 * 10^2 = 70.
    influence = scipy.sparse.identity(10, format="csr")
    functions = [spec("MinDose", np.arange(10), dose_level_gy=20.0),
                 spec("MaxDvh", np.arange(10), dose_level_gy=10.0, percent_volume=30.0, is_constraint=True)]
    start = np.linspace(1.0, 10.0, 10)
    result = optimize_beamlet_weights(influence, functions, fractions=1, initial_weights=start,
                                      max_iterations=300)
    dose = result.weights
    assert result.constraint_satisfied[1]
    np.testing.assert_allclose(dose[7:], 20.0, atol=0.05)
    assert dose[:7].max() <= 10.05
    assert result.objective_values[-1] == pytest.approx(70.0, rel=0.02)


def test_min_dvh_and_max_eud_constraints_by_hand():
    # MinDvh: 10 voxels want 0 Gy, 40 % must get >= 15 Gy -> the 4 starting hottest at 15 Gy, F = 0.4 * 225
    influence = scipy.sparse.identity(10, format="csr")
    functions = [spec("MaxDose", np.arange(10), dose_level_gy=0.0),
                 spec("MinDvh", np.arange(10), dose_level_gy=15.0, percent_volume=40.0, is_constraint=True)]
    result = optimize_beamlet_weights(influence, functions, fractions=1, initial_weights=np.linspace(1, 10, 10),
                                      max_iterations=300)
    assert result.constraint_satisfied[1]
    np.testing.assert_allclose(result.weights[6:], 15.0, atol=0.05)
    np.testing.assert_allclose(result.weights[:6], 0.0, atol=0.05)
    # MaxEud with a = 1 is the mean dose: two voxels want 20 Gy, mean <= 10 Gy -> both at 10 Gy, F = 100
    functions = [spec("MinDose", [0, 1], dose_level_gy=20.0),
                 spec("MaxEud", [0, 1], dose_level_gy=10.0, eud_parameter_a=1.0, is_constraint=True)]
    result = optimize_beamlet_weights(scipy.sparse.identity(2, format="csr"), functions, fractions=1,
                                      initial_weights=np.array([1.0, 2.0]), max_iterations=200)
    assert result.constraint_satisfied[1]
    np.testing.assert_allclose(result.weights, [10.0, 10.0], atol=0.05)


# ----------------------------------------------------------------- iteration cap, progress, determinism
def _random_problem(seed=0, n_voxels=2000, n_beamlets=100):
    """Target 0-399 (3x dose), OAR 400-599, tissue 600- (0.3x); 70 % of beamlets give the OAR 0.3x."""
    rng = np.random.default_rng(seed)
    values = np.where(rng.random((n_voxels, n_beamlets)) < 0.2, rng.random((n_voxels, n_beamlets)) * 0.05, 0.0)
    values[:400] *= 3.0
    values[400:600, :70] *= 0.3
    values[600:] *= 0.3
    influence = scipy.sparse.csr_matrix(values)
    target, oar, tissue = np.arange(400), np.arange(400, 600), np.arange(600, n_voxels)
    functions = [spec("MinDose", target, dose_level_gy=24.0, weight=100.0),
                 spec("MaxDose", target, dose_level_gy=28.0, weight=10.0),
                 spec("MaxDose", oar, dose_level_gy=6.0, is_constraint=True),
                 spec("MaxDvh", tissue, dose_level_gy=12.0, percent_volume=5.0, is_constraint=True),
                 spec("MaxEud", tissue, dose_level_gy=6.0, eud_parameter_a=4.0, is_constraint=True),
                 spec("DoseFallOff", tissue, high_dose_level_gy=24.0, low_dose_level_gy=4.0,
                      low_dose_distance_mm=20.0, distance_mm=np.linspace(0, 40, tissue.size), weight=1.0)]
    return influence, functions


def test_max_iterations_is_a_total_cap_and_progress_reports_each_iteration():
    influence, functions = _random_problem()
    calls = []
    result = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(100),
                                      max_iterations=3, progress=lambda i, value: calls.append((i, value)))
    assert result.iterations == 3      # the problem needs 7 (converged at max_iterations=7)
    assert len(result.objective_values) == 4
    assert [i for i, _ in calls] == list(range(1, 4))
    assert [v for _, v in calls] == list(result.objective_values[1:])
    assert not result.converged
    assert "3 of 3 iterations" in result.message


def test_random_feasible_problem_meets_constraints_and_covers_target():
    influence, functions = _random_problem()
    result = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(100),
                                      max_iterations=300)
    assert result.constraint_satisfied == (None, None, True, True, True, None)
    dose = 2 * influence @ result.weights
    assert dose[400:600].max() <= 6.0 + 0.05
    # coverage (V95% of 24 Gy) stays within 10 % of the plan optimized without the constraints
    free = optimize_beamlet_weights(influence, [f for f in functions if not f.is_constraint], fractions=2,
                                    initial_weights=np.zeros(100), max_iterations=300)
    free_dose = 2 * influence @ free.weights
    assert free_dose[400:600].max() > 6.0 + 0.05   # the OAR constraint does bind
    assert np.mean(dose[:400] >= 0.95 * 24.0) >= 0.9 * np.mean(free_dose[:400] >= 0.95 * 24.0)
    assert result.iterations <= 300
    assert np.all(result.weights >= 0)
    assert result.objective_values[-1] < result.objective_values[0]
    # deterministic
    again = optimize_beamlet_weights(influence, functions, fractions=2, initial_weights=np.zeros(100),
                                     max_iterations=300)
    np.testing.assert_array_equal(again.weights, result.weights)


def test_infeasible_constraints_are_reported_not_hidden():
    # one beamlet: MinDose 10 Gy and MaxDose 5 Gy constraints on the same voxel cannot both hold
    functions = [spec("MinDose", [0], dose_level_gy=10.0, is_constraint=True),
                 spec("MaxDose", [0], dose_level_gy=5.0, is_constraint=True)]
    result = optimize_beamlet_weights(scipy.sparse.identity(1, format="csr"), functions, fractions=1,
                                      initial_weights=np.zeros(1), max_iterations=50)
    assert not result.converged
    assert False in result.constraint_satisfied
    assert "not satisfied" in result.message
    assert result.weights.flags.writeable is False


# ----------------------------------------------------------------- input errors
@pytest.mark.parametrize("kwargs, pattern", [
    (dict(function_type="MaxDos"), "function_type"),
    (dict(voxel_index=np.array([0.0, 1.0])), "voxel_index"),
    (dict(voxel_index=np.array([0, 0])), "voxel_index must not repeat"),
    (dict(voxel_index=np.array([-1, 0])), "voxel_index must be >= 0"),
    (dict(voxel_volume_weight=np.ones(3)), r"voxel_volume_weight must have shape \(2,\)"),
    (dict(voxel_volume_weight=np.array([1.0, np.nan])), "voxel_volume_weight must be finite"),
    (dict(voxel_volume_weight=np.zeros(2)), "voxel_volume_weight must have a positive sum"),
    (dict(dose_level_gy=-1.0), r"dose_level_gy must lie in \[0, inf\] Gy, got -1"),
    (dict(dose_level_gy=None), "dose_level_gy is required for function_type 'MaxDose'"),
    (dict(dose_level_gy=float("inf")), "dose_level_gy must be a finite"),
    (dict(weight=-2.0), "weight must lie in"),
    (dict(is_constraint="yes"), "is_constraint must be True or False, got 'yes'"),
    (dict(function_type="MaxDvh", percent_volume=100.0), r"percent_volume must lie in \[0, 100\) %, got 100"),
    (dict(function_type="MinDvh", percent_volume=0.0), r"percent_volume must lie in \(0, 100\] %, got 0"),
    (dict(function_type="MaxDvh"), "percent_volume is required"),
    (dict(function_type="MaxEud", eud_parameter_a=0.0), "eud_parameter_a must be non-zero"),
    (dict(function_type="DoseFallOff", high_dose_level_gy=10.0, low_dose_level_gy=12.0,
          low_dose_distance_mm=5.0, distance_mm=np.ones(2)), r"low_dose_level_gy must lie in \[0, 10\] Gy, got 12"),
    (dict(function_type="DoseFallOff", high_dose_level_gy=10.0, low_dose_level_gy=2.0,
          low_dose_distance_mm=0.0, distance_mm=np.ones(2)), "low_dose_distance_mm"),
    (dict(function_type="DoseFallOff", high_dose_level_gy=10.0, low_dose_level_gy=2.0,
          low_dose_distance_mm=5.0), "distance_mm is required"),
    (dict(function_type="DoseFallOff", high_dose_level_gy=10.0, low_dose_level_gy=2.0,
          low_dose_distance_mm=5.0, distance_mm=np.array([1.0, -1.0])), "distance_mm must be finite and >= 0"),
])
def test_function_spec_rejects_bad_fields(kwargs, pattern):
    fields = dict(function_type="MaxDose", voxel_index=np.array([0, 1]), voxel_volume_weight=np.ones(2),
                  dose_level_gy=10.0)
    fields.update(kwargs)
    with pytest.raises(InputError, match=pattern):
        FunctionSpec(**fields)


def test_function_spec_is_frozen_and_read_only():
    s = spec("MaxDose", [0, 1], dose_level_gy=10.0)
    with pytest.raises(AttributeError):
        s.dose_level_gy = 5.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.voxel_index[0] = 3


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(influence_gy=np.eye(2)), "influence_gy must be a 2-D scipy.sparse matrix"),
    (dict(fractions=0), "fractions must be an integer >= 1, got 0"),
    (dict(fractions=2.0), "fractions must be an integer >= 1"),
    (dict(initial_weights=np.zeros(3)), r"initial_weights must have shape \(2,\)"),
    (dict(initial_weights=np.array([-1.0, 0.0])), "initial_weights must be finite and >= 0"),
    (dict(max_iterations=0), "max_iterations must be an integer >= 1"),
    (dict(constraint_tolerance_gy=0.0), "constraint_tolerance_gy"),
    (dict(functions=[]), "functions must hold at least one FunctionSpec"),
    (dict(functions=[{"function_type": "MaxDose"}]), r"functions\[0\] must be a FunctionSpec"),
    (dict(functions=[spec("MaxDose", [5], dose_level_gy=1.0)]), r"functions\[0\].voxel_index reaches row 5"),
])
def test_optimize_rejects_bad_arguments(kwargs, pattern):
    arguments = dict(influence_gy=scipy.sparse.identity(2, format="csr"),
                     functions=[spec("MinDose", [0], dose_level_gy=1.0)], fractions=1,
                     initial_weights=np.zeros(2))
    arguments.update(kwargs)
    influence = arguments.pop("influence_gy")
    functions = arguments.pop("functions")
    with pytest.raises(InputError, match=pattern):
        optimize_beamlet_weights(influence, functions, **arguments)


def test_optimize_rejects_a_generator_of_functions():
    with pytest.raises(InputError, match="functions must be a sequence of FunctionSpec, got generator"):
        optimize_beamlet_weights(scipy.sparse.identity(1, format="csr"),
                                 (spec("MinDose", [0], dose_level_gy=1.0) for _ in range(1)), fractions=1,
                                 initial_weights=np.zeros(1))


# ----------------------------------------------------------------- convergence against an exact solver
@pytest.fixture(scope="module")
def coarse_gap_problem():
    """The coarse T4-T5 gap problem and Clarabel's exact minimum of it (computed once: ~40 s)."""
    pytest.importorskip("pyRadPlan")
    pytest.importorskip("cvxpy")
    from mock_tps._optimizer_reference import gap_problem, reference_objective
    influence, functions, start, fractions = gap_problem("t4t5_esophageal", grid_mm=4.0, dose_grid_mm=5.0,
                                                         bixel_mm=10.0)
    reference, _, _ = reference_objective(influence, functions, fractions=fractions)
    return influence, functions, start, fractions, reference


@pytest.mark.slow
@pytest.mark.parametrize("exact_limit", [1200, 500], ids=["exact", "conjugate_gradients_then_exact"])
def test_objective_within_one_percent_of_cvxpy_on_a_coarse_phantom(coarse_gap_problem, exact_limit):
    """Convex set (MinDose, MaxDose, UniformDose, DoseFallOff, MaxDose constraints) on the
    coarse T4-T5 phantom: the mock's objective within 1 % of Clarabel's exact minimum, the
    constraints met within the mock's tolerance (0.05 Gy), in at most 100 iterations, with
    the Newton systems solved exactly (the default at 1074 beamlets) or by conjugate
    gradients while more than 500 beamlets are free and exactly after, as the default-size
    problems run (2650 beamlets, limit 1200). Clarabel 2204.70 Gy²; measured with OpenBLAS'
    Haswell / SkylakeX kernels: exact +0.38 / +0.39 %, 22 / 27 iterations; conjugate
    gradients first +0.41 / +0.32 %, 26 / 29 iterations. Default size:
    bench/bench_optimizer_gap.py."""
    from mock_tps._tps_newton import NewtonOptions
    influence, functions, start, fractions, reference = coarse_gap_problem
    assert {s.function_type for s in functions} == {"MinDose", "MaxDose", "UniformDose", "DoseFallOff"}
    assert sum(s.is_constraint for s in functions) == 2
    result = optimize_beamlet_weights(influence, functions, fractions=fractions, initial_weights=start,
                                      max_iterations=100, optimality_tolerance=1e-5,
                                      newton=NewtonOptions(exact_beamlet_limit=exact_limit))
    assert result.iterations <= 100
    assert result.converged, result.message
    assert all(ok is not False for ok in result.constraint_satisfied)
    assert max(v for v, s in zip(result.constraint_violations_gy, functions) if s.is_constraint) <= 0.05
    # the tolerance lets the mock undercut the exact optimum only by what 0.05 Gy buys
    assert 0.98 * reference <= result.objective_values[-1] <= 1.01 * reference


@pytest.mark.slow
def test_screened_reference_equals_the_whole_coarse_phantom(coarse_gap_problem):
    """Screened from the mock's plan (as the default-size bench does), the reference keeps a
    fraction of the beamlets and equals the whole problem's minimum. Measured 2026-12-07:
    1464 of 4352 voxels, 187 of 1074 beamlets, 3 rounds, 2204.70248 Gy² both ways."""
    from mock_tps._optimizer_reference import reference_solution
    influence, functions, start, fractions, reference = coarse_gap_problem
    mock = optimize_beamlet_weights(influence, functions, fractions=fractions, initial_weights=start,
                                    max_iterations=100, optimality_tolerance=1e-5).weights
    screened = reference_solution(influence, functions, fractions=fractions, screen_weights=mock)
    assert screened.objective_gy2 == pytest.approx(reference, rel=1e-6)
    assert reference * (1 - 1e-5) <= screened.lower_bound_gy2 <= reference * (1 + 1e-9)
    assert screened.rounds >= 2
    assert screened.beamlets < influence.shape[1] // 2


@pytest.mark.parametrize("left_out", [0, 15], ids=["oar_bound_left_out", "beamlets_left_out_too"])
def test_screened_reference_equals_the_whole_problem(left_out):
    """The reference solved on screened voxels and beamlets (grown until the KKT conditions
    of the whole problem hold) is the exact minimum of the whole problem. Screened from a
    plan optimized without the OAR bound (its voxels left out at first), and from the same
    plan with beamlets 0-14 zeroed (they must rejoin); 5 beamlets that miss the target
    (optimal weight 0) must stay out."""
    pytest.importorskip("cvxpy")
    from mock_tps._optimizer_reference import reference_solution
    influence, functions = _random_problem(seed=3, n_voxels=900, n_beamlets=30)
    misses = np.zeros((900, 5))
    misses[400:] = 0.02                              # OAR and tissue only
    influence = scipy.sparse.hstack([influence, scipy.sparse.csr_matrix(misses)]).tocsr()
    convex = [f for f in functions if f.function_type in ("MinDose", "MaxDose", "DoseFallOff")]
    whole = reference_solution(influence, convex, fractions=2)
    unbounded = optimize_beamlet_weights(influence, [f for f in convex if not f.is_constraint], fractions=2,
                                         initial_weights=np.ones(35)).weights
    assert not unbounded[30:].any()
    start = np.where(np.arange(35) >= left_out, unbounded, 0.0)
    screened = reference_solution(influence, convex, fractions=2, screen_weights=start, screen_margin_gy=0.1)
    assert screened.objective_gy2 == pytest.approx(whole.objective_gy2, rel=1e-6)
    assert whole.objective_gy2 * (1 - 1e-6) <= screened.lower_bound_gy2 <= whole.objective_gy2 * (1 + 1e-9)
    assert screened.rounds >= 2 and screened.voxels < 900
    assert screened.beamlets == 30                  # 0-14 rejoined, the 5 that miss stayed out
    dose = 2 * influence @ screened.weights
    assert dose[400:600].max() <= 6.0 + 1e-6          # the OAR bound, left out at first, holds


def test_reference_and_its_dual_bound_match_the_kkt_point_by_hand():
    # The two-beamlet problem below: d0 = w0, d1 = w1, d2 = (w0 + w1)/2, MinDose 20 Gy on
    # {0, 1} (v = 1/2 each), d2 <= 6 Gy. Optimum w = (6, 6): F = 1/2 (14² + 14²) = 196.
    # Dual: y_i = ∂f/∂d_i = -2 v r = -2 · 1/2 · 14 = -14 on voxels 0 and 1; stationarity in
    # w0: -14 + λ/2 = 0, so λ = 28 on voxel 2. Bound -Σ f*(y): MinDose f* = Σ (20 y + y²/(4 v))
    # = 2 (-280 + 98) = -364; the bound's λu = 28 · 6 = 168; -(-364 + 168) = 196.
    pytest.importorskip("cvxpy")
    from mock_tps._optimizer_reference import reference_solution
    influence = scipy.sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    functions = [spec("MinDose", [0, 1], dose_level_gy=20.0),
                 spec("MaxDose", [2], dose_level_gy=6.0, is_constraint=True)]
    solution = reference_solution(influence, functions, fractions=1)
    np.testing.assert_allclose(solution.weights, [6.0, 6.0], rtol=1e-6)
    assert solution.objective_gy2 == pytest.approx(196.0, rel=1e-8)
    assert 196.0 * (1 - 1e-8) <= solution.lower_bound_gy2 <= 196.0 * (1 + 1e-12)


def test_reference_rejects_screen_weights_of_the_wrong_length():
    pytest.importorskip("cvxpy")
    from mock_tps._optimizer_reference import reference_objective
    influence, functions = _random_problem(seed=3, n_voxels=900, n_beamlets=30)
    with pytest.raises(InputError, match=r"screen_weights must have shape \(30,\), got \(29,\)"):
        reference_objective(influence, functions[:3], fractions=2, screen_weights=np.ones(29))


def test_converges_on_a_convex_problem_and_matches_the_kkt_point_by_hand():
    # Two beamlets, three voxels (1 Gy/fx per unit weight, 1 fx):
    #   d0 = w0 (target), d1 = w1 (target), d2 = 0.5 w0 + 0.5 w1 (OAR).
    # MinDose 20 Gy on {0, 1} (weight 1, v = 1/2 each), MaxDose constraint d2 <= 6 Gy.
    # Symmetric optimum: w0 = w1 = 6 (d2 = 6 binding), F = 1/2 (14² + 14²) = 196.
    influence = scipy.sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    functions = [spec("MinDose", [0, 1], dose_level_gy=20.0),
                 spec("MaxDose", [2], dose_level_gy=6.0, is_constraint=True)]
    result = optimize_beamlet_weights(influence, functions, fractions=1, initial_weights=np.array([1.0, 3.0]),
                                      max_iterations=100, optimality_tolerance=1e-8)
    assert result.converged, result.message
    np.testing.assert_allclose(result.weights, [6.0, 6.0], atol=0.05)
    assert result.objective_values[-1] == pytest.approx(196.0, rel=0.01)
    assert result.iterations < 100


def test_a_zero_dose_bound_switches_off_every_beamlet_that_reaches_the_voxel():
    # Voxel 2 (an exhausted cord) must get 0 Gy; beamlet 0 gives it 0.1 Gy/unit, beamlet 1 nothing.
    # d2 = 0.1 w0 <= 0 -> w0 = 0; the target voxel 0 (1 Gy/unit from w0, 0.5 from w1) is covered by w1 alone:
    # MinDose 10 Gy on voxel 0 -> 0.5 w1 = 10 -> w1 = 20, F = 0.
    influence = scipy.sparse.csr_matrix(np.array([[1.0, 0.5], [0.0, 0.0], [0.1, 0.0]]))
    functions = [spec("MinDose", [0], dose_level_gy=10.0), spec("MaxDose", [2], dose_level_gy=0.0, is_constraint=True)]
    result = optimize_beamlet_weights(influence, functions, fractions=1, initial_weights=np.ones(2))
    assert result.weights[0] == 0.0
    assert result.weights[1] == pytest.approx(20.0, abs=0.01)
    assert result.constraint_violations_gy[1] <= 0.0


def test_the_dense_working_copy_is_reused_only_for_the_same_matrix_and_rows():
    from mock_tps._tps_merit import _restricted_matrix

    a = scipy.sparse.csr_matrix(np.arange(1.0, 13.0, dtype=np.float32).reshape(4, 3))
    rows = np.array([0, 2, 3])
    first = _restricted_matrix(a, rows, True)
    assert _restricted_matrix(a, rows, True) is first
    assert np.array_equal(first[0], a.toarray()[rows]) and not first[0].flags.writeable
    other_rows = _restricted_matrix(a, np.array([0, 1, 3]), True)
    assert other_rows is not first and np.array_equal(other_rows[0], a.toarray()[[0, 1, 3]])
    b = a.copy()
    b.data[0] = 99.0
    assert _restricted_matrix(b, rows, True)[0][0, 0] == 99.0     # another matrix object: made anew
