"""Bench: whole-process ``reirrad dvh`` against dicompyler-core 0.5.6 on dicompyler-core's example.

Run: ``python bench/bench_dvh_process.py [--repeat 5]``.  Needs
``<repo>/../shared/data/dicompyler_example`` and, for the comparison, dicompyler-core in its own
venv (it needs pydicom < 3, the project pydicom 3)::

    python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 "pydicom<3"

Without that venv only our times are printed.  Each side is a fresh Python process doing the
whole job, imports included: ours is ``python -m optimizer.cli.main dvh --rtstruct rtss.dcm
--dose rtdose.dcm --json`` (every ROI, sub-voxel DVH, D99/D95/D5/D1 % and D0.03/D0.035/D1 cc);
dicompyler-core's is ``dvhcalc.get_dvh`` for every structure (its default: dose-grid resolution,
no interpolation; the script of ``bench_dvh_dicom.py``).  The two run interleaved, ``--repeat``
times each, so that both see the same machine load; the best wall and CPU (user + system, of
the child) times are printed, and their ratios.  On a shared machine the CPU ratio is the
steadier one.  Bytecode is cached as in an installed package (in a temporary
``PYTHONPYCACHEPREFIX``, written by one untimed run of each side; ``PYTHONDONTWRITEBYTECODE`` is
dropped for the children): otherwise every process compiles the project's modules from
source (about 0.3 s here).  Not run by the test suite.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dvh_dicom import DATA, DC_SCRIPT, VENV_PY  # noqa: E402


def _timed(cmd: list, env: dict, cwd: "Path | None" = None) -> "tuple[float, float]":
    """Wall and CPU (user + system) seconds of one child process running ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each side (interleaved)")
    ap.add_argument("--data", type=Path, default=DATA, help=f"dicompyler-core's example (default {DATA})")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the reirrad checkout to time (default: this one)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"dicompyler example data not found at {args.data} (--data)")
        return 1
    cache = tempfile.mkdtemp(prefix="reirrad_pycache_")
    env = dict(os.environ, PYTHONPATH=str(args.repo), OPENBLAS_NUM_THREADS="1", PYTHONPYCACHEPREFIX=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rtss, rtdose = str(args.data / "rtss.dcm"), str(args.data / "rtdose.dcm")
    ours_cmd = [sys.executable, "-m", "optimizer.cli.main", "dvh", "--rtstruct", rtss, "--dose", rtdose, "--json"]
    dc_cmd = [str(VENV_PY), "-c", DC_SCRIPT, rtss, rtdose] if VENV_PY.exists() else None
    bare_cmd = [sys.executable, "-c", "pass"]
    _timed(ours_cmd, env, args.repo)                     # untimed: write the bytecode caches
    if dc_cmd:
        _timed(dc_cmd, env)
    ours, dc, bare = [], [], []
    for _ in range(args.repeat):
        bare.append(_timed(bare_cmd, env))
        ours.append(_timed(ours_cmd, env, args.repo))
        if dc_cmd:
            dc.append(_timed(dc_cmd, env))
    best = lambda runs, k: min(r[k] for r in runs)      # noqa: E731
    print(f"python startup alone: {best(bare, 0):.3f} s wall, {best(bare, 1):.3f} s CPU")
    print(f"reirrad dvh, whole process: {best(ours, 0):.3f} s wall, {best(ours, 1):.3f} s CPU "
          f"(best of {args.repeat}; walls {', '.join(f'{r[0]:.2f}' for r in ours)})")
    if not dc:
        print("dicompyler-core venv not found; make it with:\n"
              "  python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 \"pydicom<3\"")
        return 0
    print(f"dicompyler-core 0.5.6, whole process: {best(dc, 0):.3f} s wall, {best(dc, 1):.3f} s CPU "
          f"(best of {args.repeat}; walls {', '.join(f'{r[0]:.2f}' for r in dc)})")
    print(f"ratio (dicompyler-core / reirrad dvh): {best(dc, 0) / best(ours, 0):.1f}x wall, "
          f"{best(dc, 1) / best(ours, 1):.1f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
