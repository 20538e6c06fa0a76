"""Time ``reirrad demo`` from an empty cache, stage by stage (issue #21: <= 3 min on 2 cores).

Runs the demo in this process (the same :func:`optimizer.cli.demo_cmd.run_demo` the CLI runs)
with a new, empty dose-matrix cache, and prints per stage the wall time and the CPU time
(user + system, this process and its finished worker processes).  The machine is shared:
compare CPU times; the wall time is what a user on an idle 2-core machine waits only when the
load average is under 2 (printed at the start and the end).

Stages (nested ones indented): the phantom (anatomy, the SBRT dose matrix, the prior-course
doses, loading it into the mock with the plan-as-loaded optimization), the two assessments,
the closed loop, and the report.  ``RunOptimization`` (the mock's optimizer,
``mock_tps._tps_optimizer.optimize_beamlet_weights``) is summed over every call, in the
phantom load and in the loop.

Usage::

    PYTHONPATH=. python bench/bench_demo.py [--phantom NAME] [--coarse] [--warm]

``--warm`` keeps ``REIRRAD_CACHE_DIR`` (default ``~/.cache/reirrad``) instead of an empty one.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from typing import Callable, Dict, Iterator, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class StageTimer:
    """Accumulates wall and CPU seconds and call counts per stage name."""

    def __init__(self) -> None:
        self.wall: Dict[str, float] = OrderedDict()
        self.cpu: Dict[str, float] = OrderedDict()
        self.calls: Dict[str, int] = OrderedDict()
        self.order: List[str] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name not in self.wall:
            self.wall[name], self.cpu[name], self.calls[name] = 0.0, 0.0, 0
            self.order.append(name)
        w0, c0 = time.perf_counter(), _cpu_s()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - w0
            self.cpu[name] += _cpu_s() - c0
            self.calls[name] += 1

    def wrap(self, owner: object, attr: str, name: Callable[[], str]) -> None:
        """Replace ``owner.attr`` by a timed wrapper; ``name()`` gives the stage at call time."""
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*a, **kw):
            with self.stage(name()):
                return fn(*a, **kw)

        setattr(owner, attr, timed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantom", default="t4t5_esophageal")
    ap.add_argument("--coarse", action="store_true", help="the demo's --coarse variant")
    ap.add_argument("--warm", action="store_true", help="use the existing cache (default: a new, empty one)")
    ap.add_argument("--out", default=None, help="demo output folder (default: a temporary one, deleted)")
    args = ap.parse_args(argv)
    tmp_cache = None
    if not args.warm:
        tmp_cache = tempfile.mkdtemp(prefix="rr_demo_cache_")
        os.environ["REIRRAD_CACHE_DIR"] = tmp_cache
    out = args.out or tempfile.mkdtemp(prefix="rr_demo_out_")

    w_start, c_start = time.perf_counter(), _cpu_s()
    load0 = os.getloadavg()[0]
    tm = StageTimer()
    with tm.stage("imports"):
        import mock_tps
        from mock_tps import _phantoms, _tps_optimizer, dose_engine
        import optimizer.report
        import tps_scripts.assess
        import tps_scripts.optimize
        from optimizer.cli import demo_cmd
        from optimizer.cli.main import build_parser

    n_matrix = [0]

    def matrix_stage() -> str:
        n_matrix[0] += 1
        return "  SBRT dose matrix" if n_matrix[0] == 1 else "  prior-course doses"

    state = {"in_loop": False}
    tm.wrap(mock_tps, "load_phantom", lambda: "phantom (build + load)")
    tm.wrap(_phantoms, "build_anatomy", lambda: "  anatomy")
    tm.wrap(dose_engine, "influence_matrix", matrix_stage)
    tm.wrap(_tps_optimizer, "optimize_beamlet_weights",
            lambda: "    RunOptimization (loop)" if state["in_loop"] else "  RunOptimization (plan as loaded)")
    tm.wrap(tps_scripts.assess, "run_assessment", lambda: "assessments (2)")

    run_opt = tps_scripts.optimize.run_optimization

    def loop(*a, **kw):
        state["in_loop"] = True
        try:
            with tm.stage("closed loop"):
                return run_opt(*a, **kw)
        finally:
            state["in_loop"] = False

    tps_scripts.optimize.run_optimization = loop
    tm.wrap(optimizer.report, "write_report", lambda: "report")

    argv_demo = ["demo", "--phantom", args.phantom, "--out", out, "--json"] + (["--coarse"] if args.coarse else [])
    ns = build_parser().parse_args(argv_demo)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        with tm.stage("demo (whole)"):
            rc = demo_cmd.run_demo(ns)
    wall, cpu = time.perf_counter() - w_start, _cpu_s() - c_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    peak_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0

    print(f"reirrad demo --phantom {args.phantom}{' --coarse' if args.coarse else ''}, "
          f"{'warm' if args.warm else 'empty'} cache; exit status {rc}")
    print(f"load average (1 min) at start {load0:.1f}, at end {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    print(f"{'stage':36s} {'calls':>5s} {'wall s':>8s} {'CPU s':>8s}")
    names = [n for n in tm.order if n != "demo (whole)"]
    for n in names + ["demo (whole)"]:
        print(f"{n:36s} {tm.calls[n]:>5d} {tm.wall[n]:>8.1f} {tm.cpu[n]:>8.1f}")
    print(f"{'total (process)':36s} {'':>5s} {wall:>8.1f} {cpu:>8.1f}")
    print(f"peak RSS: main process {peak_mb:.0f} MB, largest worker {peak_children_mb:.0f} MB")
    if tmp_cache:
        shutil.rmtree(tmp_cache, ignore_errors=True)
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
