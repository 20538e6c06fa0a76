"""Bench: the mock optimizer's objective against an exact cvxpy solution of the same problem.

Usage::

    python bench/bench_optimizer_gap.py [--phantom t4t5_esophageal] [--coarse] [--solver CLARABEL]
                                        [--direct-solve-method faer] [--threads 1,2] [--no-reference]

Builds :func:`mock_tps._optimizer_reference.gap_problem` on the phantom once (PTVeval
MinDose and MaxDose, GTV UniformDose, a ring DoseFallOff, cord PRV and esophagus MaxDose
constraints), then runs ``optimize_beamlet_weights`` (100 iterations, as RayStation's
default) once per BLAS thread count, each in its own process (OpenBLAS reads the count
at start-up), and prints per run: iterations, converged, wall and CPU time, objective,
largest constraint violation, PTVeval V24Gy, peak memory; then the cvxpy objective
(first run's process, screened from the mock's weights and certified exact by
:func:`mock_tps._optimizer_reference.reference_solution`) with its dual lower bound, the
gap in %, and how far the runs' weights are apart. The CI tests
(tests/mock_tps/test_tps_optimizer.py, test_tps_optimizer_threads.py) check the same at
the coarse size. Not run by the test suite; the default size needs ~3 GB and, for
Clarabel, minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def _child(problem_path: str, weights_path: str, reference: bool, solver: str, method: str) -> dict:
    import resource
    import time

    import numpy as np

    from mock_tps._optimizer_reference import reference_solution
    from mock_tps._tps_penalties import reference_level
    from mock_tps._tps_optimizer import optimize_beamlet_weights

    with open(problem_path, "rb") as handle:
        influence, functions, start, fractions = pickle.load(handle)
    cpu = time.process_time()
    result = optimize_beamlet_weights(influence, functions, fractions=fractions, initial_weights=start,
                                      max_iterations=100, optimality_tolerance=1e-5)
    cpu = time.process_time() - cpu
    np.save(weights_path, result.weights)
    target = functions[0]                      # PTVeval MinDose 24 Gy
    dose = fractions * (influence[target.voxel_index] @ result.weights)
    v = target.voxel_volume_weight
    row = {"threads": os.environ.get("OPENBLAS_NUM_THREADS"), "iterations": result.iterations,
           "outer_loops": result.outer_iterations, "converged": result.converged,
           "seconds": round(result.time_s, 1), "cpu_seconds": round(cpu, 1),
           "objective": result.objective_values[-1],
           "max_violation_gy": max(x for x, s in zip(result.constraint_violations_gy, functions) if s.is_constraint),
           "ptv_eval_v24gy_percent": float(100.0 * v[dose >= 24.0].sum() / v.sum()),
           "voxels": int(influence.shape[0]), "beamlets": int(influence.shape[1])}
    if reference:
        options = {"direct_solve_method": method} if solver == "CLARABEL" and method else {}
        cpu = time.process_time()
        exact = reference_solution(influence, functions, fractions=fractions, solver=solver,
                                   screen_weights=result.weights, **options)
        on = np.flatnonzero(exact.weights > 0)
        dose = fractions * (influence[:, on] @ exact.weights[on])
        worst = max(float(np.max(dose[s.voxel_index] - reference_level(s))) for s in functions if s.is_constraint)
        row.update(reference_objective=exact.objective_gy2, reference_seconds=round(exact.solve_s, 1),
                   reference_cpu_seconds=round(time.process_time() - cpu, 1), reference_voxels=exact.voxels,
                   reference_beamlets=exact.beamlets, reference_rounds=exact.rounds,
                   reference_max_violation_gy=worst, reference_lower_bound=exact.lower_bound_gy2,
                   gap_percent=100.0 * (row["objective"] - exact.objective_gy2) / exact.objective_gy2)
    row["max_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantom", default="t4t5_esophageal")
    ap.add_argument("--coarse", action="store_true")
    ap.add_argument("--solver", default="CLARABEL")
    ap.add_argument("--direct-solve-method", default="faer", help="Clarabel's factorization ('' for its default)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)    # problem weights reference|mock
    args = ap.parse_args()
    if args.child:
        problem_path, weights_path, role = args.child
        print(json.dumps(_child(problem_path, weights_path, role == "reference", args.solver,
                                args.direct_solve_method)), flush=True)
        return 0

    import numpy as np

    from mock_tps._optimizer_reference import gap_problem
    params = dict(COARSE) if args.coarse else {}
    with tempfile.TemporaryDirectory(prefix="bench_gap_") as tmp:
        problem_path = os.path.join(tmp, "problem.pkl")
        with open(problem_path, "wb") as handle:
            pickle.dump(gap_problem(args.phantom, **params), handle)
        rows, weights = [], []
        for k, threads in enumerate(args.threads.split(",")):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
            weights_path = os.path.join(tmp, f"weights_{k}.npy")
            role = "reference" if k == 0 and not args.no_reference else "mock"
            cmd = [sys.executable, __file__, "--solver", args.solver, "--direct-solve-method",
                   args.direct_solve_method, "--child", problem_path, weights_path, role]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            rows.append(row)
            weights.append(np.load(weights_path))
    first = rows[0]
    size = "coarse" if args.coarse else "default"
    print(f"\n{args.phantom} ({size} size, {first['voxels']} voxels x {first['beamlets']} beamlets): "
          f"{first['iterations']} iterations ({first['outer_loops']} outer loops), {first['seconds']} s "
          f"({first['cpu_seconds']} s CPU), max violation {first['max_violation_gy']:.3f} Gy, "
          f"objective {first['objective']:.2f} Gy2")
    if "reference_objective" in first:
        print(f"{args.solver} {first['reference_objective']:.2f} Gy2 in {first['reference_seconds']} s "
              f"({first['reference_cpu_seconds']} s CPU; {first['reference_voxels']} voxels x "
              f"{first['reference_beamlets']} beamlets after {first['reference_rounds']} rounds; max violation "
              f"{first['reference_max_violation_gy']:.1e} Gy; peak {first['max_rss_gb']} GB; dual bound "
              f"{first['reference_lower_bound']:.4f}) -> gap {first['gap_percent']:+.2f} %")
    for row, w in zip(rows[1:], weights[1:]):
        spread = float(np.max(np.abs(w - weights[0])) / max(float(np.max(weights[0])), 1e-300))
        print(f"threads {row['threads']} vs {first['threads']}: V24Gy {row['ptv_eval_v24gy_percent']:.3f} vs "
              f"{first['ptv_eval_v24gy_percent']:.3f} %, objective {row['objective']:.4f} vs "
              f"{first['objective']:.4f}, max weight difference {spread:.2e} of the largest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
