"""Bench: whole-process ``reirrad dvh`` against dicompyler-core 0.5.6 on dicompyler-core's example.

Run: ``python bench/bench_dvh_process.py [--repeat 7] [--imports]``.  Needs ``dicompyler_example``
in ``$REIRRAD_SHARED_DATA`` (default ``<repo>/../shared/data``) and, for the comparison,
dicompyler-core in its own venv (it needs pydicom < 3, the project pydicom 3)::

    python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 "pydicom<3"

Without that venv only our times are printed.  Each side is a fresh Python process doing the
whole job, imports included: ours is ``python -m optimizer.cli.main dvh --rtstruct rtss.dcm
--dose rtdose.dcm --json`` (every ROI, sub-voxel DVH, D99/D95/D5/D1 % and D0.03/D0.035/D1 cc);
dicompyler-core's is ``dvhcalc.get_dvh`` for every structure (its default: dose-grid resolution,
no interpolation; the script of ``bench_dvh_dicom.py``).  The two run interleaved, ``--repeat``
times each, so that both see the same machine load; the median (and best) wall and CPU (user +
system, of the child) times are printed, and the ratios of the medians.  On a shared machine
the CPU ratio is the steadier one; the system part of it (page faults: memory first touched) is
what grows most with the machine's load.  ``--compare CHECKOUT`` times a second reirrad checkout in
the same rounds (before/after in one run).  ``--imports`` adds the import time of each top-level
package of our process (``python -X importtime``, one run; wall time, so load-dependent).  Bytecode is cached as in an installed package (in a temporary
``PYTHONPYCACHEPREFIX``, written by one untimed run of each side; ``PYTHONDONTWRITEBYTECODE`` is
dropped for the children): otherwise every process compiles the project's modules from
source (about 0.3 s here).  Not run by the test suite.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dvh_dicom import DATA, DC_SCRIPT, VENV_PY  # noqa: E402


def _timed(cmd: list, env: dict, cwd: "Path | None" = None) -> "tuple[float, float, float, int]":
    """Wall, CPU (user + system) and system seconds, and minor page faults, of one child process
    running ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    system = after.ru_stime - before.ru_stime
    return wall, (after.ru_utime - before.ru_utime) + system, system, after.ru_minflt - before.ru_minflt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs of each side (interleaved)")
    ap.add_argument("--imports", action="store_true", help="print our import time per top-level package")
    ap.add_argument("--data", type=Path, default=DATA, help=f"dicompyler-core's example (default {DATA})")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the reirrad checkout to time (default: this one)")
    ap.add_argument("--compare", type=Path, metavar="CHECKOUT",
                    help="another reirrad checkout (e.g. a `git archive` of main) timed in the same rounds")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"dicompyler example data not found at {args.data} (--data)")
        return 1
    cache = tempfile.mkdtemp(prefix="reirrad_pycache_")
    env = dict(os.environ, PYTHONPATH=str(args.repo), OPENBLAS_NUM_THREADS="1", PYTHONPYCACHEPREFIX=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rtss, rtdose = str(args.data / "rtss.dcm"), str(args.data / "rtdose.dcm")
    ours_cmd = [sys.executable, "-m", "optimizer.cli.main", "dvh", "--rtstruct", rtss, "--dose", rtdose, "--json"]
    other_env = dict(env, PYTHONPATH=str(args.compare)) if args.compare else None
    dc_cmd = [str(VENV_PY), "-c", DC_SCRIPT, rtss, rtdose] if VENV_PY.exists() else None
    bare_cmd = [sys.executable, "-c", "pass"]
    load0 = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    _timed(ours_cmd, env, args.repo)                     # untimed: write the bytecode caches
    if other_env:
        _timed(ours_cmd, other_env, args.compare)
    if dc_cmd:
        _timed(dc_cmd, env)
    ours, other, dc, bare = [], [], [], []
    for k in range(args.repeat):
        bare.append(_timed(bare_cmd, env))
        if other_env and k % 2:                          # the two checkouts take turns going first
            other.append(_timed(ours_cmd, other_env, args.compare))
        ours.append(_timed(ours_cmd, env, args.repo))
        if other_env and not k % 2:
            other.append(_timed(ours_cmd, other_env, args.compare))
        if dc_cmd:
            dc.append(_timed(dc_cmd, env))
    print(f"load average before: {load0}, after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"python startup alone: {_fmt(bare)}")
    print(f"reirrad dvh, whole process: {_fmt(ours)}")
    if other:
        print(f"reirrad dvh of {args.compare}: {_fmt(other)}")
    if args.imports:
        _print_imports(ours_cmd, env, args.repo)
    if not dc:
        print("dicompyler-core venv not found; make it with:\n"
              "  python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 \"pydicom<3\"")
        return 0
    print(f"dicompyler-core 0.5.6, whole process: {_fmt(dc)}")
    print(f"ratio of medians (dicompyler-core / reirrad dvh): {_median(dc, 1) / _median(ours, 1):.1f}x CPU, "
          f"{_median(dc, 0) / _median(ours, 0):.1f}x wall ({args.repeat} runs each)")
    if other:
        print(f"ratio of medians (dicompyler-core / {args.compare}): {_median(dc, 1) / _median(other, 1):.1f}x CPU, "
              f"{_median(dc, 0) / _median(other, 0):.1f}x wall")
    return 0


def _median(runs: list, k: int) -> float:
    return statistics.median(r[k] for r in runs)


def _fmt(runs: list) -> str:
    return (f"median {_median(runs, 1):.3f} s CPU, {_median(runs, 0):.3f} s wall "
            f"(best {min(r[1] for r in runs):.3f} s CPU, {min(r[0] for r in runs):.3f} s wall; "
            f"CPU of each run {', '.join(f'{r[1]:.2f}' for r in runs)}; of the CPU, system "
            f"{_median(runs, 2):.3f} s; page faults {_median(runs, 3):.0f})")


def _print_imports(cmd: list, env: dict, cwd: Path) -> None:
    """Cumulative import time (ms) of each top-level package of one run of ``cmd``."""
    res = subprocess.run([cmd[0], "-X", "importtime"] + cmd[1:], env=env, cwd=cwd, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    top: dict = {}
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  "):        # a module imported at top level
            pkg = name.strip().split(".")[0]
            top[pkg] = top.get(pkg, 0) + int(parts[1])
    total = sum(top.values())
    shown = sorted(top.items(), key=lambda kv: -kv[1])[:8]
    print(f"  imports (one run, -X importtime, wall): {total / 1000:.0f} ms; "
          + ", ".join(f"{k} {v / 1000:.0f}" for k, v in shown))


if __name__ == "__main__":
    sys.exit(main())
