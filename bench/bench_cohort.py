"""Bench: ``reirrad cohort`` throughput (patients per minute) with 1 and 2 Dask worker processes.

Run: ``python bench/bench_cohort.py [--patients DIR] [--repeat K] [--skip-strategies]``.
Without ``--patients`` it writes the four coarse phantoms (their default parameters)
as a synthetic cohort in a temporary folder and lists each one ``K`` times (default 3:
12 patients; symbolic links, each a patient of its own).  A first, untimed pass with
the strategies fills the dose-engine cache (the influence matrices of the imported
CTs: the "cold" cost of a new anatomy, printed).  Then for each worker count it runs
the assessment only, and with the three FMO strategies at the coarse size (10 mm
beamlets, the plan's 5 mm dose grid), and prints wall time (cluster start included),
patients per minute, the mean task time per patient (s), the peak resident memory of
a worker process (MB), the cluster's start time, and what 1 000 patients would take
on N workers at the measured per-patient cost.  The machine's speed is printed at the
start and the end (:mod:`machine_speed`): times are comparable only next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_speed import syrk_reference_s  # noqa: E402


def _synthetic(root: str) -> str:
    from optimizer.cli.cohort.synthetic import COARSE, SyntheticPatient, write_patient

    defaults = {"c3_cervical": 2.0, "c7t1_head_neck": 0.0, "t4t5_esophageal": 0.0, "t8_two_courses": 3.0}
    folder = os.path.join(root, "patients")
    os.makedirs(folder)
    for k, (name, gap) in enumerate(sorted(defaults.items())):
        write_patient(SyntheticPatient(f"B{k + 1:03d}", name, tuple(sorted(dict(COARSE, esophagus_gap_mm=gap).items())),
                                       0.0, "refuse"), folder)
    return folder


def _replicate(folder: str, root: str, repeat: int) -> str:
    out = os.path.join(root, f"x{repeat}")
    os.makedirs(out)
    for k in range(repeat):
        for name in sorted(os.listdir(folder)):
            if os.path.isdir(os.path.join(folder, name)) and not name.startswith("."):
                os.symlink(os.path.join(folder, name), os.path.join(out, f"{name}_{k + 1}"))
    return out


def _cluster_start_s(workers: int) -> float:
    from optimizer.cli.cohort.engine import EngineOptions, open_client

    t0 = time.perf_counter()
    with open_client(EngineOptions(workers=workers)) as client:
        client.run(lambda: None)
        return time.perf_counter() - t0


def _run(patients: str, root: str, workers: int, strategies: tuple, tag: str = "") -> dict:
    from optimizer.cli.cohort.engine import EngineOptions
    from optimizer.cli.cohort.run import CohortOptions, run_cohort

    out = os.path.join(root, f"out_w{workers}_{'s' if strategies else 'a'}{tag}")
    t0 = time.perf_counter()
    s = run_cohort(CohortOptions(patients, out, strategies=strategies, progress=False), EngineOptions(workers=workers))
    wall = time.perf_counter() - t0
    recs = [json.load(open(os.path.join(out, "records", f))) for f in sorted(os.listdir(os.path.join(out, "records")))
            if f.endswith(".json")]
    task_s = [r["timing"]["elapsed_s"] for r in recs]
    cpu_s = [r["timing"]["cpu_s"] for r in recs]
    return {"workers": workers, "strategies": ",".join(strategies) or "-", "patients": s["patients"],
            "failed": s["failed"], "wall_s": wall, "per_min": 60.0 * s["patients"] / wall,
            "task_s_mean": statistics.mean(task_s), "task_s": task_s,
            "cpu_s_mean": statistics.mean(cpu_s),
            "rss_mb_max": max(r["timing"]["peak_rss_mb"] for r in recs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", help="an existing cohort folder (default: the four coarse phantoms)")
    ap.add_argument("--skip-strategies", action="store_true")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3, help="list each patient folder this many times")
    args = ap.parse_args()
    print(f"machine speed (syrk reference): {syrk_reference_s():.3f} s", flush=True)
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        patients = args.patients or _synthetic(root)
        if not args.patients:
            print(f"synthetic cohort of 4 written in {time.perf_counter() - t0:.1f} s", flush=True)
        if not args.skip_strategies:
            r = _run(patients, root, 1, ("exact", "zones", "sbrt-only"), "_cold")
            print(f"cold pass (dose-engine cache filled): task {', '.join(f'{t:.1f}' for t in r['task_s'])} s; "
                  f"worker peak RSS {r['rss_mb_max']:.0f} MB", flush=True)
        patients = _replicate(patients, root, args.repeat)
        for w in args.workers:
            print(f"cluster start, {w} worker(s): {_cluster_start_s(w):.1f} s", flush=True)
        results = []
        for strategies in ((),) + (() if args.skip_strategies else (("exact", "zones", "sbrt-only"),)):
            for w in args.workers:
                r = _run(patients, root, w, strategies)
                results.append(r)
                print(f"workers {w}, strategies {r['strategies']}: {r['patients']} patients ({r['failed']} failed) "
                      f"in {r['wall_s']:.1f} s = {r['per_min']:.1f} patients/min; task {r['task_s_mean']:.1f} s "
                      f"mean ({', '.join(f'{t:.1f}' for t in r['task_s'])}), CPU {r['cpu_s_mean']:.1f} s mean; "
                      f"worker peak RSS {r['rss_mb_max']:.0f} MB",
                      flush=True)
    print("\nestimate for 1 000 patients on N workers with a core each (per-patient CPU time of the 1-worker run,"
          " x 1000 / N; the wall time of a loaded machine is longer):")
    for r in results:
        if r["workers"] != min(args.workers):
            continue
        for n in (2, 8, 32, 128):
            print(f"  strategies {r['strategies']}: {n:4d} workers ~ {1000 * r['cpu_s_mean'] / n / 60:.1f} min")
    print(f"machine speed (syrk reference): {syrk_reference_s():.3f} s")


if __name__ == "__main__":
    main()
