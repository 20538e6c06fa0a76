"""Bench: the TPS loop's final PTVeval coverage against the offline FMO ceiling, per phantom.

Usage::

    python bench/bench_tps_vs_fmo.py [--phantoms t4t5_esophageal,...] [--coarse | --grid-mm 3 --dose-grid-mm 4
                                     --bixel-mm 7] [--solver SCHUR_IPM] [--skip-fmo | --strategies exact,...]
                                     [--skip-tps] [--target-design min_dvh] [--rs-version 10B]

For every phantom, on one built phantom (one influence matrix):

- ``sbrt_only``: the planner's plan as loaded (the seed's SBRT-only constraints), checked
  against the whole protocol;
- ``tps_loop``: ``tps_scripts.optimize.run_optimization`` in the mock TPS (limit zones,
  MaxDose constraints, the mock's RunOptimization), i.e. what a RayStation user gets
  (``--target-design`` picks :class:`tps_scripts.optimize.TuningSettings` ``target_design``);
- ``fmo_exact`` / ``fmo_zones`` / ``fmo_sbrt-only``: :func:`optimizer.fmo_strategies.plan_strategy`
  (cvxpy) — ``exact`` is the ceiling: the best V24Gy the beam arrangement allows under the
  exact per-voxel limits.

Prints one JSON line per (phantom, method), this machine's speed at the start and the end
(:mod:`machine_speed`: times are comparable across runs only next to it) and a table.  Not run
by the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PHANTOMS = ("t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses")
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def _cumulative_pass(constraints) -> bool:
    cum = [c for c in constraints if c["organ"] == "esophagus" and c["domain"].startswith("cumulative_")
           and not c["advisory"]]
    return all(c["pass"] for c in cum) if cum else None


def tps_rows(name: str, data, target_design=None, rs_version=None) -> list:
    import tempfile

    import mock_tps
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import TuningSettings, run_optimization

    settings = TuningSettings() if target_design is None else TuningSettings(target_design=target_design)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PluginConfig(output_dir=tmp)
        t0 = time.perf_counter()
        mock_tps.load_patient_data(data, initial_plan="sbrt_only",
                                   **({"rs_version": rs_version} if rs_version else {}))
        try:
            import connect
            _, a = run_assessment(connect, cfg)
            goals = {g["id"]: g["value"] for g in a["evaluation"]["coverage_goals"]}
            rows.append({"phantom": name, "method": "sbrt_only", "v24gy_percent": goals.get("ptv_eval_v24"),
                         "d95_gy": goals.get("ptv_eval_d95"), "all_pass": a["evaluation"]["all_pass"],
                         "esophagus_cumulative_pass": _cumulative_pass(a["evaluation"]["constraints"]),
                         "seconds": round(time.perf_counter() - t0, 1)})
            t0 = time.perf_counter()
            _, rec = run_optimization(api=connect, config=cfg, settings=settings)
        finally:
            mock_tps.unload()
        rows.append({"phantom": name, "method": "tps_loop", "v24gy_percent": rec["ptv_eval"]["v_rx_percent"],
                     "d95_gy": rec["ptv_eval"]["d95_gy"], "all_pass": rec["evaluation"]["all_pass"],
                     "esophagus_cumulative_pass": _cumulative_pass(rec["evaluation"]["constraints"]),
                     "run_optimization_calls": rec["run_optimization_calls"],
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def fmo_rows(name: str, data, solver: str, strategies: tuple, truncation=None) -> list:
    from constraints.protocol import load_protocol
    from optimizer.fmo import FmoOptions
    from optimizer.cli.phantom_case import case_from_phantom_data
    from optimizer.fmo_strategies import plan_strategy

    protocol = load_protocol("koide2024")
    fcase = case_from_phantom_data(data, protocol)
    rows = []
    for strategy in strategies:
        t0 = time.perf_counter()
        plan = plan_strategy(fcase, protocol, strategy,
                             options=FmoOptions(solver=solver, objective_truncation=truncation))
        rows.append({"phantom": name, "method": f"fmo_{strategy}", "status": plan.result.status,
                     "v24gy_percent": plan.v_rx_percent, "d95_gy": plan.d95_gy, "all_pass": plan.all_pass,
                     "esophagus_cumulative_pass": plan.cumulative_pass, "rounds": plan.rounds,
                     "solve_s": round(plan.result.solve_s, 1), "seconds": round(time.perf_counter() - t0, 1),
                     "objective": plan.result.objective})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantoms", default=",".join(PHANTOMS))
    ap.add_argument("--coarse", action="store_true", help="4 mm CT, 5 mm dose grid, 10 mm beamlets")
    ap.add_argument("--grid-mm", type=float, help="CT voxel size, mm")
    ap.add_argument("--dose-grid-mm", type=float, help="dose-grid voxel size, mm")
    ap.add_argument("--bixel-mm", type=float, help="beamlet width, mm")
    ap.add_argument("--solver", default="SCHUR_IPM")
    ap.add_argument("--objective-truncation", type=float,
                    help="FmoOptions.objective_truncation (default: the solver's; 0 to compare solvers on one LP)")
    ap.add_argument("--skip-fmo", action="store_true")
    ap.add_argument("--strategies", help="FMO strategies, comma-separated (default: all)")
    ap.add_argument("--skip-tps", action="store_true", help="FMO rows only (the TPS loop takes minutes per phantom)")
    ap.add_argument("--target-design", help="TuningSettings.target_design of the TPS loop (default: its default)")
    ap.add_argument("--rs-version", help="mock RayStation version profile of the TPS rows (default: the mock's)")
    args = ap.parse_args()
    from machine_speed import syrk_reference_s
    from mock_tps._phantoms import build_phantom
    from optimizer.fmo_strategies import STRATEGIES

    strategies = tuple(args.strategies.split(",")) if args.strategies else STRATEGIES
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--strategies: {unknown} not among {', '.join(STRATEGIES)}")

    params = dict(COARSE) if args.coarse else {}
    for key in ("grid_mm", "dose_grid_mm", "bixel_mm"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    print(json.dumps({"params": params}), flush=True)
    print(json.dumps({"machine_syrk_reference_s": round(syrk_reference_s(), 3), "at": "start"}), flush=True)
    rows = []
    for name in args.phantoms.split(","):
        data = build_phantom(name, **params)
        got = (([] if args.skip_tps else tps_rows(name, data, args.target_design, args.rs_version))
               + ([] if args.skip_fmo else fmo_rows(name, data, args.solver, strategies, args.objective_truncation)))
        for r in got:
            print(json.dumps(r), flush=True)
        rows += got
    print(json.dumps({"machine_syrk_reference_s": round(syrk_reference_s(), 3), "at": "end"}), flush=True)
    print(f"\n{'phantom':18s} {'method':16s} {'V24Gy %':>8s} {'D95 Gy':>7s} {'all pass':>8s} {'esoph cum':>9s} "
          f"{'calls':>5s} {'dV24 vs exact':>13s}")
    exact = {r["phantom"]: r for r in rows if r["method"] == "fmo_exact"}
    for r in rows:
        v = "-" if r["v24gy_percent"] is None else f"{r['v24gy_percent']:.1f}"
        d = "-" if r.get("d95_gy") is None else f"{r['d95_gy']:.2f}"
        ref = exact.get(r["phantom"])
        gap = "-" if ref is None or r["v24gy_percent"] is None or ref["v24gy_percent"] is None else \
            f"{r['v24gy_percent'] - ref['v24gy_percent']:+.1f}"
        print(f"{r['phantom']:18s} {r['method']:16s} {v:>8s} {d:>7s} {str(r['all_pass']):>8s} "
              f"{str(r['esophagus_cumulative_pass']):>9s} {str(r.get('run_optimization_calls', '-')):>5s} {gap:>13s}")
    print(f"\nper phantom, V24Gy % / D95 Gy (calls): plan as loaded | loop | ceiling (exact) | zones | sbrt-only")
    for name in dict.fromkeys(r["phantom"] for r in rows):
        cells = []
        for method in ("sbrt_only", "tps_loop", "fmo_exact", "fmo_zones", "fmo_sbrt-only"):
            r = next((x for x in rows if x["phantom"] == name and x["method"] == method), None)
            if r is None or r["v24gy_percent"] is None:
                cells.append("-")
                continue
            calls = f" ({r['run_optimization_calls']})" if "run_optimization_calls" in r else ""
            cells.append(f"{r['v24gy_percent']:.1f} / {r['d95_gy']:.2f}{calls}")
        print(f"{name:18s} " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
