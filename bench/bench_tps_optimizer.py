"""Benchmark of the mock TPS optimizer core (``mock_tps._tps_optimizer``).

Prints, for a small and a realistic synthetic problem, the time of one objective/
gradient evaluation, of a whole ``optimize_beamlet_weights`` call, and per iteration.

Realistic size: 60 000 voxels in function ROIs × 1 500 beamlets, influence matrix
~20 % dense (~18 million non-zeros, ~220 MB as CSR float64), 2 fractions, a target
with MinDose/MaxDose objectives, a cord-like MaxDose constraint (6 Gy, binding), a MaxDvh constraint
and a DoseFallOff objective on the surrounding tissue.

Run: ``PYTHONPATH=. python bench/bench_tps_optimizer.py [--small-only]``.

OpenBLAS is limited to one thread (unless ``OPENBLAS_NUM_THREADS`` is already set):
L-BFGS-B's small dense BLAS calls otherwise spin threads and, on a busy 2-core
machine, took ~3 ms per iteration of the small problem instead of ~0.05 ms.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS; see docstring

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402

from mock_tps._tps_optimizer import (  # noqa: E402
    FunctionSpec, objective_value_and_gradient, optimize_beamlet_weights)


def synthetic_problem(n_voxels: int, n_beamlets: int, density: float, seed: int = 0):
    """Influence matrix (Gy per fraction per unit weight) and function specs.

    Voxels: first 25 % target, next 10 % cord-like OAR, the rest surrounding tissue.
    Beamlets: the first 70 % give the OAR 0.3x their dose (so the target can be covered
    while the OAR constraint binds), the rest reach everything. Non-zeros are uniform in [0, 0.05) Gy, targets get 3x.
    """
    rng = np.random.default_rng(seed)
    n_target, n_oar = n_voxels // 4, n_voxels // 10
    oar = np.arange(n_target, n_target + n_oar)
    avoiding = int(0.7 * n_beamlets)
    blocks = []
    chunk = 5000
    for first in range(0, n_voxels, chunk):
        rows = np.arange(first, min(first + chunk, n_voxels))
        mask = rng.random((rows.size, n_beamlets)) < density
        in_oar = (rows >= oar[0]) & (rows <= oar[-1])
        values = np.where(mask, rng.random(mask.shape) * 0.05, 0.0)
        values[np.ix_(in_oar, np.arange(avoiding))] *= 0.3
        values[rows < n_target] *= 3.0
        blocks.append(scipy.sparse.csr_matrix(values))
    influence = scipy.sparse.vstack(blocks, format="csr")
    target = np.arange(n_target)
    tissue = np.arange(n_target + n_oar, n_voxels)
    distance_mm = np.linspace(0.0, 40.0, tissue.size)
    specs = [
        FunctionSpec("MinDose", target, np.ones(target.size), dose_level_gy=24.0, weight=100.0),
        FunctionSpec("MaxDose", target, np.ones(target.size), dose_level_gy=28.0, weight=10.0),
        FunctionSpec("MaxDose", oar, np.ones(oar.size), dose_level_gy=6.0, is_constraint=True),
        FunctionSpec("MaxDvh", tissue, np.ones(tissue.size), dose_level_gy=20.0, percent_volume=5.0,
                     is_constraint=True),
        FunctionSpec("DoseFallOff", tissue, np.ones(tissue.size), high_dose_level_gy=24.0,
                     low_dose_level_gy=8.0, low_dose_distance_mm=20.0, distance_mm=distance_mm, weight=1.0),
    ]
    return influence, specs


def run(label: str, n_voxels: int, n_beamlets: int, density: float, max_iterations: int) -> None:
    t0 = time.perf_counter()
    influence, specs = synthetic_problem(n_voxels, n_beamlets, density)
    build_s = time.perf_counter() - t0
    weights = np.full(n_beamlets, 1.0)
    repeats = 5
    t0 = time.perf_counter()
    for _ in range(repeats):
        objective_value_and_gradient(influence, specs, weights, fractions=2)
    eval_s = (time.perf_counter() - t0) / repeats
    result = optimize_beamlet_weights(influence, specs, fractions=2, initial_weights=np.zeros(n_beamlets),
                                      max_iterations=max_iterations)
    print(f"{label}: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; {n_voxels} voxels x {n_beamlets} beamlets, nnz {influence.nnz:,} "
          f"(built in {build_s:.1f} s)")
    print(f"  objective+gradient incl. setup: {eval_s * 1e3:.1f} ms per call")
    print(f"  optimize: {result.time_s:.2f} s, {result.iterations} iterations, "
          f"{result.function_evaluations} evaluations, {result.outer_iterations} outer loops -> "
          f"{result.time_s / max(result.iterations, 1) * 1e3:.1f} ms per iteration, "
          f"{result.time_s / max(result.function_evaluations, 1) * 1e3:.1f} ms per evaluation")
    print(f"  converged={result.converged}; constraint violations (Gy): "
          + ", ".join(f"{v:.3f}" for v, s in zip(result.constraint_violations_gy, specs) if s.is_constraint))
    print(f"  {result.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-only", action="store_true")
    args = parser.parse_args()
    run("small", 2000, 100, 0.2, 100)
    if not args.small_only:
        run("realistic", 60000, 1500, 0.2, 100)


if __name__ == "__main__":
    main()
