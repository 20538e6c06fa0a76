"""Bench: the mock optimizer's objective against an exact cvxpy solution of the same problem.

Usage::

    python bench/bench_optimizer_gap.py [--phantom t4t5_esophageal] [--coarse] [--solver CLARABEL]
                                        [--threads 1,2]

Builds :func:`mock_tps._optimizer_reference.gap_problem` on the phantom (PTVeval MinDose and
MaxDose, GTV UniformDose, a ring DoseFallOff, cord PRV and esophagus MaxDose constraints),
runs ``optimize_beamlet_weights`` (100 iterations) once per BLAS thread count (each in its
own process, as OpenBLAS reads the count at start-up), and prints per run: iterations,
converged, time, objective, largest constraint violation, PTVeval V24Gy; then the cvxpy
objective and the gap in %.  The CI test (tests/mock_tps/test_tps_optimizer.py) checks the
same at the coarse size.  Not run by the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def _run(phantom: str, params: dict, reference: bool, solver: str) -> dict:
    import numpy as np

    from mock_tps._optimizer_reference import gap_problem, reference_objective
    from mock_tps._tps_optimizer import optimize_beamlet_weights

    influence, functions, start, fractions = gap_problem(phantom, **params)
    result = optimize_beamlet_weights(influence, functions, fractions=fractions, initial_weights=start,
                                      max_iterations=100, optimality_tolerance=1e-5)
    target = functions[0]                      # PTVeval MinDose 24 Gy
    dose = fractions * (influence[target.voxel_index] @ result.weights)
    v = target.voxel_volume_weight
    row = {"threads": os.environ.get("OPENBLAS_NUM_THREADS"), "iterations": result.iterations,
           "converged": result.converged, "seconds": round(result.time_s, 1),
           "objective": result.objective_values[-1],
           "max_violation_gy": max(x for x, s in zip(result.constraint_violations_gy, functions) if s.is_constraint),
           "ptv_eval_v24gy_percent": float(100.0 * v[dose >= 24.0].sum() / v.sum()),
           "voxels": int(influence.shape[0]), "beamlets": int(influence.shape[1])}
    if reference:
        value, _, seconds = reference_objective(influence, functions, fractions=fractions, solver=solver)
        row.update(reference_objective=value, reference_seconds=round(seconds, 1),
                   gap_percent=100.0 * (row["objective"] - value) / value)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantom", default="t4t5_esophageal")
    ap.add_argument("--coarse", action="store_true")
    ap.add_argument("--solver", default="CLARABEL")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    params = dict(COARSE) if args.coarse else {}
    if args.child:
        print(json.dumps(_run(args.phantom, params, args.child == "reference", args.solver)), flush=True)
        return 0
    rows = []
    for k, threads in enumerate(args.threads.split(",")):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, __file__, "--phantom", args.phantom, "--solver", args.solver,
               "--child", "reference" if k == 0 else "mock"] + (["--coarse"] if args.coarse else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    first = rows[0]
    print(f"\n{args.phantom} ({'coarse' if args.coarse else 'default'} size, {first['voxels']} voxels x "
          f"{first['beamlets']} beamlets): mock {first['objective']:.2f} vs {args.solver} "
          f"{first['reference_objective']:.2f} Gy2 -> gap {first['gap_percent']:+.2f} %, "
          f"{first['iterations']} iterations, max violation {first['max_violation_gy']:.3f} Gy")
    for row in rows[1:]:
        print(f"threads {row['threads']} vs {first['threads']}: V24Gy {row['ptv_eval_v24gy_percent']:.3f} vs "
              f"{first['ptv_eval_v24gy_percent']:.3f} %, objective {row['objective']:.4f} vs {first['objective']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
