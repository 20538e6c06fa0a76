"""The mock optimizer gives the same plan with 1 and 2 BLAS threads (issue #21), and converges
on every OpenBLAS kernel this CPU runs (float32 products round differently on each).

Needs threadpoolctl (the offline extra): the optimizer pins BLAS to one thread with it.

OpenBLAS reads its thread count when it starts, so each run is its own process with
``OPENBLAS_NUM_THREADS`` set; the problem (the coarse T4-T5 gap problem of
:func:`mock_tps._optimizer_reference.gap_problem`) is built once and handed over in a
pickle. Both ways of solving the Newton system are checked: exact (the default at this
size, 1074 beamlets) and conjugate gradients while more than 500 beamlets are free
(``exact_beamlet_limit=500``, the way the default-size problems run).
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _blas_kernels import blas_kernels

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, pickle, sys
import numpy as np
from mock_tps._tps_newton import NewtonOptions
from mock_tps._tps_optimizer import optimize_beamlet_weights
influence, functions, start, fractions = pickle.load(open(sys.argv[1], "rb"))
result = optimize_beamlet_weights(influence, functions, fractions=fractions, initial_weights=start,
                                  max_iterations=100, optimality_tolerance=1e-5,
                                  newton=NewtonOptions(exact_beamlet_limit=int(sys.argv[2])))
target = functions[0]                                   # PTVeval MinDose 24 Gy
dose = fractions * (influence[target.voxel_index] @ result.weights)
v = target.voxel_volume_weight
print(json.dumps({"weights": result.weights.tolist(), "iterations": result.iterations,
                  "converged": result.converged, "objective": result.objective_values[-1],
                  "v24_percent": float(100.0 * v[dose >= 24.0].sum() / v.sum())}))
"""


@pytest.fixture(scope="module")
def problem_file(tmp_path_factory):
    pytest.importorskip("pyRadPlan")
    pytest.importorskip("threadpoolctl")
    from mock_tps._optimizer_reference import gap_problem
    problem = gap_problem("t4t5_esophageal", grid_mm=4.0, dose_grid_mm=5.0, bixel_mm=10.0)
    path = tmp_path_factory.mktemp("threads") / "problem.pkl"
    with open(path, "wb") as handle:
        pickle.dump(problem, handle)
    return path


def _run(path: Path, threads: int, exact_limit: int, kernel: str = "") -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(exact_limit)], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("exact_limit", [1200, 500], ids=["exact", "conjugate_gradients_then_exact"])
def test_one_and_two_blas_threads_give_the_same_plan(problem_file, exact_limit):
    one, two = _run(problem_file, 1, exact_limit), _run(problem_file, 2, exact_limit)
    assert one["converged"] and two["converged"]
    # issue #21: PTVeval V24Gy within 0.1 point (one coarse voxel of 640 is 0.16 point)
    assert abs(one["v24_percent"] - two["v24_percent"]) <= 0.1, (one["v24_percent"], two["v24_percent"])
    # the optimizer runs BLAS on one thread whatever the environment says: the same weights to
    # the last bit (unpinned, 2 threads moved them by 10 % of the largest weight, a voxel by 0.8 Gy)
    np.testing.assert_array_equal(np.array(one["weights"]), np.array(two["weights"]))


@pytest.mark.slow
@pytest.mark.parametrize("exact_limit", [1200, 500], ids=["exact", "conjugate_gradients_then_exact"])
def test_every_blas_kernel_converges_to_the_same_objective(problem_file, exact_limit):
    """Each kernel's run converges within 100 iterations with its constraints met, and the
    objectives agree within 0.5 % (measured: Haswell 2213.17 / SkylakeX 2220.40 Gy² exact,
    2213.69 / 2211.85 CG first; Clarabel 2204.70)."""
    kernels = blas_kernels()
    if len(kernels) < 2:
        pytest.skip("this CPU runs fewer than two OpenBLAS kernels")
    runs = {k: _run(problem_file, 1, exact_limit, kernel=k) for k in kernels}
    for kernel, run in runs.items():
        assert run["converged"] and run["iterations"] <= 100, (kernel, run["iterations"])
    objectives = [run["objective"] for run in runs.values()]
    assert max(objectives) <= 1.005 * min(objectives), {k: r["objective"] for k, r in runs.items()}
