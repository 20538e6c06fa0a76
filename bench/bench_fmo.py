"""Benchmark of the offline FMO (optimizer.fmo): sizes, build and solve times per solver.

Usage::

    python bench/bench_fmo.py [--phantoms all|t4t5_esophageal,...] [--grid-mm 4] [--dose-grid-mm 5]
                              [--bixel-mm 10] [--solvers SCHUR_IPM,HIGHS] [--sizes 1,2,4] [--portpy-style]

For every phantom (default: all four) and every solver: voxels, beamlets, non-zeros
of the full matrix, then for the ``exact`` strategy's spec (one :func:`solve_fmo`
call with default options) the build time, cvxpy canonicalization time, total solve
time, rounds, rows and non-zeros in the last round, status, PTVeval V24Gy and
whether the exact protocol check passes.  ``--sizes`` repeats the first phantom with
the dose-grid voxel count scaled ×1, ×2, ×4 (spacing / factor^(1/3)).  ``--portpy-style`` also times a
**re-implementation, for timing only,** of the PortPy formulation (``A_s @ x`` repeated
in every term, no dose variables, no screening, no truncation); PortPy itself
(pip ``portpy`` 1.2.0) cannot be driven with an external matrix here: its
``Optimization`` needs a ``Plan``/``InfluenceMatrix`` built from its HDF5 patient
data by ``DataExplorer``, and importing it fails without ``natsort`` and its other
dependencies.  No PortPy code is copied (Apache-2.0 + Commons Clause).

Results go to stdout as JSON lines.  Not run by the test suite.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def portpy_style_solve(spec, solver: str, options) -> dict:
    """Same objective and constraints as :func:`optimizer.fmo.build_fmo_problem`, written with
    ``A_s @ x`` inside each term (the formulation the optimizer anchors found slow)."""
    import cvxpy as cp
    import scipy.sparse as sp

    from optimizer import _fmo_terms as terms

    t0 = time.perf_counter()
    a = sp.csr_matrix(spec.influence_gy, dtype=np.float64) * float(spec.fractions)
    tgt = spec.regions[spec.target]
    x = cp.Variable(a.shape[1], nonneg=True)
    eps = options.bound_backoff_gy
    w = tgt.coverage / tgt.coverage.sum()
    obj = w @ cp.pos(spec.prescription_gy + options.coverage_headroom_gy - a[tgt.rows] @ x)
    if spec.falloff is not None:
        ring = spec.regions[spec.falloff.region]
        obj = obj + options.falloff_weight * cp.sum(cp.pos(a[ring.rows] @ x - spec.falloff.limit_gy)) / ring.rows.size
    cons = []
    if spec.target_max_gy is not None:
        cons.append(a[tgt.rows] @ x <= spec.target_max_gy)
    for b in spec.max_bounds:
        cons.append(a[spec.regions[b.region].rows] @ x <= np.maximum(b.limit_gy - eps, 0))
    for c in spec.volume_caps:
        r = spec.regions[c.region]
        cons += terms.cvar_cap(cp, a[r.rows] @ x, c.limit_gy - eps, r.coverage * spec.voxel_volume_cc, c.volume_cc,
                               "pp")
    prob = cp.Problem(cp.Minimize(obj), cons)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        prob.solve(solver=solver, **options.solve_kwargs())
        status = prob.status
    except cp.error.SolverError as exc:
        status = f"solver_error: {exc}".splitlines()[0]
    return {"formulation": "portpy-style (re-implementation, timing only)", "solver": solver, "status": status,
            "build_s": round(build_s, 3), "solve_s": round(time.perf_counter() - t0, 3),
            "objective": None if prob.value is None else float(prob.value)}


def main() -> None:
    from constraints import load_protocol
    from optimizer.fmo import FmoOptions, solve_fmo
    from optimizer.cli.phantom_case import case_from_phantom
    from optimizer.fmo_strategies import build_spec, evaluate_dose

    ap = argparse.ArgumentParser()
    ap.add_argument("--phantoms", default="all")
    ap.add_argument("--grid-mm", type=float, default=4.0)
    ap.add_argument("--dose-grid-mm", type=float, default=5.0)
    ap.add_argument("--bixel-mm", type=float, default=10.0)
    ap.add_argument("--solvers", default="SCHUR_IPM")
    ap.add_argument("--sizes", default="1")
    ap.add_argument("--portpy-style", action="store_true")
    args = ap.parse_args()
    proto = load_protocol("koide2024")
    names = (["t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses"] if args.phantoms == "all"
             else args.phantoms.split(","))
    runs = [(p, 1.0) for p in names]
    runs += [(runs[0][0], float(f)) for f in args.sizes.split(",") if float(f) != 1.0]
    for name, factor in runs:
        dg = args.dose_grid_mm / factor ** (1.0 / 3.0)
        t0 = time.perf_counter()
        fc = case_from_phantom(name, proto, grid_mm=args.grid_mm, dose_grid_mm=dg, bixel_mm=args.bixel_mm)
        case_s = time.perf_counter() - t0
        spec = build_spec(fc, proto, "exact")
        a = fc.influence_gy
        base = {"phantom": name, "size_factor": factor, "dose_grid_mm": round(dg, 3), "voxels": a.shape[0],
                "beamlets": a.shape[1], "nnz": int(a.nnz), "case_build_s": round(case_s, 2)}
        for solver in args.solvers.split(","):
            opts = FmoOptions(solver=solver)
            r = solve_fmo(spec, opts)
            trunc = f"objective rows truncated at {opts.truncation:g}" if opts.truncation else "full objective rows"
            row = dict(base, formulation=f"reirrad (row generation, {trunc})",
                       solver=solver, status=r.status, build_s=round(r.build_s, 3),
                       compile_s=round(r.compile_s, 3), solve_s=round(r.solve_s, 3), rounds=r.rounds,
                       opt_rows=r.n_opt_rows, opt_nnz=r.opt_nnz, objective=r.objective,
                       v24_percent=None if r.metrics is None else round(r.metrics.target_v_rx_percent, 2))
            if r.has_plan:
                row["all_pass"] = evaluate_dose(fc, proto, r.dose_gy).all_pass
            print(json.dumps(row), flush=True)
            if args.portpy_style:
                one = FmoOptions(solver=solver, objective_truncation=0.0, screen_fraction=0.0, max_rounds=1)
                r1 = solve_fmo(spec, one)
                print(json.dumps(dict(base, formulation="reirrad, one round, full rows", solver=solver,
                                      status=r1.status, build_s=round(r1.build_s, 3),
                                      solve_s=round(r1.solve_s, 3), objective=r1.objective)), flush=True)
                print(json.dumps(dict(base, **portpy_style_solve(spec, solver, one))), flush=True)


if __name__ == "__main__":
    main()
