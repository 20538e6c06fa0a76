"""``reirrad cohort``: the assessment (and the FMO strategies) over a folder of patients, on Dask.

::

    reirrad cohort --synthetic N --seed S --out DIR              # a synthetic cohort as DICOM
    reirrad cohort --patients DIR --out DIR [--strategies exact,zones,sbrt-only] [--bixel-mm X]
                   [--workers N | --scheduler tcp://HOST:8786] [--resume] [--protocol P] [--json]

Exit status: 0 when every patient completed, 1 when some failed (the outputs are
written and list them), 2 for bad arguments (one line on stderr).  ``--json`` prints
``{patients, completed, failed, outputs, wall_s, ...}``; progress goes to stderr.
See :mod:`optimizer.cli.cohort` for the layout of the folders and the outputs.
"""
from __future__ import annotations

import argparse
from typing import Tuple

from constraints.errors import InputError

from ._output import print_json

STRATEGY_NAMES = ("exact", "zones", "sbrt-only")


def register(sub) -> None:
    p = sub.add_parser("cohort", help="assess a cohort of patients (DICOM folders) on Dask; Table 3, Fig. 4",
                       description="Assess one folder per patient (CT, RTSTRUCT, SBRT RTDOSE + RTPLAN, prior "
                                   "RTDOSEs, optional reirrad.toml) the way `reirrad assess` does, in parallel on "
                                   "a Dask cluster; or write a synthetic cohort (--synthetic).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--patients", metavar="DIR", help="folder of patient folders")
    src.add_argument("--synthetic", type=int, metavar="N", help="write N synthetic patients (phantom variants)")
    p.add_argument("--seed", type=int, default=None, help="seed of --synthetic (default 0)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--strategies", default="", metavar="LIST",
                   help="comma-separated FMO strategies to solve per patient (exact,zones,sbrt-only)")
    p.add_argument("--bixel-mm", type=float, default=10.0, metavar="X",
                   help="FMO beamlet width, mm (default 10, the coarse size)")
    p.add_argument("--protocol", default="koide2024")
    eng = p.add_mutually_exclusive_group()
    eng.add_argument("--workers", type=int, metavar="N", help="worker processes of the embedded Dask cluster "
                                                              "(default: the machine's cores)")
    eng.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (tcp://HOST:8786)")
    p.add_argument("--resume", action="store_true", help="keep the records of patients whose inputs are unchanged")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def parse_strategies(text: str) -> Tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STRATEGY_NAMES]
    if bad:
        raise InputError(f"--strategies: unknown {bad}; choose from {','.join(STRATEGY_NAMES)}")
    if len(set(names)) != len(names):
        raise InputError(f"--strategies {text!r} names a strategy twice")
    return names


def run(args: argparse.Namespace) -> int:
    from .cohort.engine import EngineOptions
    from .cohort.run import CohortOptions, generate_synthetic, run_cohort

    engine = EngineOptions(workers=args.workers, scheduler=args.scheduler)
    if args.synthetic is not None:
        if args.strategies or args.resume:
            raise InputError("--strategies and --resume apply to --patients, not to --synthetic")
        summary = generate_synthetic(args.synthetic, 0 if args.seed is None else args.seed, args.out, engine,
                                     progress=not args.no_progress)
        return _finish(summary, args.json, lambda: (
            f"{summary['written']} of {summary['patients']} synthetic patients written to "
            f"{summary['outputs']['patients']} in {summary['wall_s']:.1f} s"))
    if args.seed is not None:
        raise InputError("--seed applies to --synthetic only")
    if not 2.0 <= args.bixel_mm <= 10.0:
        raise InputError(f"--bixel-mm must be in [2, 10] mm, got {args.bixel_mm:g}")
    opts = CohortOptions(args.patients, args.out, args.protocol, parse_strategies(args.strategies), args.bixel_mm,
                         args.resume, not args.no_progress)
    summary = run_cohort(opts, engine)
    return _finish(summary, args.json, lambda: (
        f"{summary['completed']} of {summary['patients']} patients assessed ({summary['reused']} kept from a "
        f"previous run), {summary['failed']} failed, {summary['wall_s']:.1f} s; tables in {args.out}"))


def _finish(summary, as_json: bool, headline) -> int:
    """Print the summary (JSON, or the headline and one line per failure); 0 if none failed, else 1."""
    if as_json:
        print_json(summary)
    else:
        print(headline())
        for name, msg in summary["failures"].items():
            print(f"  FAILED {name}: {msg}")
    return 0 if not summary["failed"] else 1
