"""Bench: the TPS loop with exact per-voxel limits (MaxRefDose on reference doses) against
the same loop with limit zones, per phantom, on the RayStation 2025 profile.

Usage::

    python bench/bench_reference_limits.py [--phantoms t4t5_esophageal,...] [--coarse]
                                           [--modes reference,zones] [--max-iterations N]

``reference``: :func:`tps_scripts.optimize.run_optimization` with
``TuningSettings(reference_doses=True)`` (the limit maps of the organs without a volume
budget as ``rr_ref_*`` doses, one MaxRefDose constraint each; zones for the others);
``zones``: the default loop (zones only, as on every version).  Same phantom build, beams and influence matrix.
Prints one JSON line per (phantom, mode) and a table of PTVeval V24Gy, D95, pass and
RunOptimization calls.  Not run by the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PHANTOMS = ("t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses")
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def run(name: str, mode: str, params: dict, max_iterations: int = 0) -> dict:
    import importlib

    import mock_tps
    from tps_scripts import optimize
    from tps_scripts.config import PluginConfig

    mock_tps.load_phantom(name, rs_version="2025", **params)
    api = importlib.import_module("raystation")
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as out:
            settings = optimize.TuningSettings(reference_doses=(mode == "reference"),
                                               **({"max_iterations": max_iterations} if max_iterations else {}))
            _, rec = optimize.run_optimization(api=api, config=PluginConfig(output_dir=out), settings=settings)
    finally:
        mock_tps.unload()
    return {"phantom": name, "mode": mode, "v24gy_percent": rec["ptv_eval"]["v24gy_percent"],
            "d95_gy": rec["ptv_eval"]["d95_gy"], "all_pass": rec["evaluation"]["all_pass"],
            "calls": rec["run_optimization_calls"], "seconds": time.perf_counter() - t0,
            "kinds": sorted({z["kind"] for z in rec["zones"]}), "stop": rec["stop_reason"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantoms", default=",".join(PHANTOMS))
    ap.add_argument("--coarse", action="store_true")
    ap.add_argument("--modes", default="reference,zones")
    ap.add_argument("--max-iterations", type=int, default=0,
                    help="TuningSettings.max_iterations (0: the loop's default)")
    a = ap.parse_args()
    params = dict(COARSE) if a.coarse else {}
    rows = []
    for name in a.phantoms.split(","):
        for mode in a.modes.split(","):
            r = run(name, mode, params, a.max_iterations)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print(f"\n{'phantom':18s} {'mode':10s} {'V24Gy %':>8s} {'D95 Gy':>7s} {'pass':>5s} {'calls':>5s} {'s':>6s}")
    for r in rows:
        print(f"{r['phantom']:18s} {r['mode']:10s} {r['v24gy_percent']:8.1f} {r['d95_gy']:7.2f} "
              f"{str(r['all_pass']):>5s} {r['calls']:5d} {r['seconds']:6.0f}")


if __name__ == "__main__":
    main()
