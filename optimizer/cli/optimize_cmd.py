"""``reirrad optimize``: offline FMO ceiling of a phantom (cvxpy; see :mod:`optimizer.fmo`).

Writes into ``--out``: ``plan_<strategy>.npz`` (total SBRT dose in Gy, shape (nz, ny, nx),
with ``corner_mm``, ``spacing_mm``, ``fractions``, per-fraction ``weights``),
``metrics_<strategy>.json`` (the ``--json`` payload plus solver details), and with
``--sweep`` ``sweep.json`` and ``sweep.png``.  RTDOSE export uses
``mock_tps.dicom_export`` when that module exists (otherwise the record says so).

``--json`` prints one object::

    {"phantom", "strategy", "status", "solve_s", "voxels", "beamlets",
     "ptv_eval": {"v24gy_percent", "d95_gy"},
     "constraints": [{"roi", "metric", "domain", "limit", "value", "pass"}, ...]}

With ``--sweep`` it prints ``{"phantom": ..., "sweep": [<one such object per
strategy and margin, plus "margin_gy">]}``.  A solve that gives no plan prints its
status with ``ptv_eval`` values null and no constraints, and exits with status 1.
Progress lines (phantom build, matrix size, each strategy and margin, each solver
round) go to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Tuple

from constraints.errors import InputError
from optimizer._fmo_options import SOLVER_DEFAULTS, FmoOptions   # not optimizer.fmo: light to import for --help

from ._output import print_json, print_table, progress_to_stderr, say

STRATEGY_CHOICES = ("exact", "zones", "sbrt-only")
SOLVER_CHOICES = tuple(SOLVER_DEFAULTS)


def register(sub) -> None:
    p = sub.add_parser("optimize", help="offline FMO: best PTVeval coverage under per-voxel cumulative limits")
    p.add_argument("--phantom", required=True, help="mock_tps phantom name (e.g. t4t5_esophageal)")
    p.add_argument("--strategy", default="exact", choices=STRATEGY_CHOICES)
    p.add_argument("--sweep", action="store_true", help="all strategies x the --sweep-margins-gy")
    p.add_argument("--sweep-margins-gy", type=float, nargs="+", default=None, metavar="GY",
                   help="safety margins of --sweep, Gy (default 0 0.5 1 2)")
    p.add_argument("--grid-mm", type=float, default=None, metavar="X", help="CT and dose-grid voxel size, mm")
    p.add_argument("--dose-grid-mm", type=float, default=None, metavar="X",
                   help="dose-grid voxel size, mm (default: --grid-mm)")
    p.add_argument("--bixel-mm", type=float, default=None, metavar="X", help="beamlet width, mm")
    p.add_argument("--coarse", action="store_true",
                   help="4 mm CT, 5 mm dose grid, 10 mm beamlets (seconds; the default size takes "
                        "0.3-1.5 min per strategy with SCHUR_IPM)")
    p.add_argument("--margin-gy", type=float, default=0.0, help="safety margin on esophagus/cord limits, Gy")
    p.add_argument("--solver", default=FmoOptions.solver, choices=SOLVER_CHOICES,
                   help="LP solver (default: SCHUR_IPM, this project's dense-column interior point; "
                        "HIGHS: the reference)")
    p.add_argument("--protocol", default="koide2024")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def _payload(phantom: str, plan: Any) -> Dict[str, Any]:
    r = plan.result
    cons: List[Dict[str, Any]] = []
    if plan.evaluation is not None:
        for c in plan.evaluation.results:
            cons.append({"roi": c.roi_name, "metric": c.metric, "domain": c.domain, "limit": c.limit,
                         "value": c.value, "pass": bool(c.passed)})
    return {"phantom": phantom, "strategy": plan.strategy, "status": r.status, "solve_s": round(r.solve_s, 3),
            "voxels": r.n_voxels, "beamlets": r.n_beamlets,
            "ptv_eval": {"v24gy_percent": plan.v_rx_percent, "d95_gy": plan.d95_gy}, "all_pass": plan.all_pass,
            "coverage_goals_met": None if plan.evaluation is None else plan.evaluation.coverage_goals_met,
            "constraints": cons}


def _write_plan(out: str, fcase: Any, plan: Any, payload: Dict[str, Any]) -> None:
    import numpy as np

    r = plan.result
    tag = plan.strategy.replace("-", "_") + (f"_m{plan.margin_gy:g}" if plan.margin_gy else "")
    record = dict(payload, margin_gy=plan.margin_gy, rounds=plan.rounds, build_s=r.build_s, nnz=r.nnz,
                  n_opt_rows=r.n_opt_rows, objective=r.objective, solver=r.solver,
                  solver_settings={k: v for k, v in r.solver_settings}, params=fcase.params,
                  all_pass=plan.all_pass, cumulative_pass=plan.cumulative_pass,
                  coverage_goals_met=None if plan.evaluation is None else plan.evaluation.coverage_goals_met)
    if r.has_plan:
        g = fcase.case.grid
        path = os.path.join(out, f"plan_{tag}.npz")
        np.savez_compressed(path, dose_gy=r.dose_gy.reshape(g.shape_zyx), corner_mm=np.array(g.corner_mm),
                            spacing_mm=np.array(g.spacing_xyz_mm), fractions=fcase.fractions,
                            weights_per_fraction=r.weights)
        record["dose_file"] = os.path.basename(path)
        record["rtdose"] = _rtdose(out, tag, fcase, r)
    with open(os.path.join(out, f"metrics_{tag}.json"), "w") as fh:
        json.dump(record, fh, indent=2, default=str)


def _rtdose(out: str, tag: str, fcase: Any, r: Any) -> str:
    """Write the plan dose as RTDOSE on the phantom's planning frame of reference."""
    from mock_tps.dicom_export import export_dose
    g = fcase.case.grid
    path, _ = export_dose(os.path.join(out, f"plan_{tag}.dcm"), r.dose_gy.reshape(g.shape_zyx), g,
                          frame_of_reference_uid=fcase.frame_of_reference_uid, kind="physical",
                          description=f"reirrad FMO {tag}")
    return os.path.basename(str(path))


def run(args: argparse.Namespace) -> int:
    from constraints.protocol import load_protocol
    from optimizer.cli.phantom_case import case_from_phantom
    from optimizer.sweep import DEFAULT_MARGINS_GY

    from mock_tps._phantoms import PHANTOM_BUILDERS

    if args.phantom not in PHANTOM_BUILDERS:
        raise InputError(f"--phantom: unknown phantom {args.phantom!r}; expected one of {sorted(PHANTOM_BUILDERS)}")
    if args.grid_mm is not None and not 1.0 <= args.grid_mm <= 4.0:
        raise InputError(f"--grid-mm must be in [1, 4] mm, got {args.grid_mm:g}")
    if not args.margin_gy >= 0:
        raise InputError(f"--margin-gy must be >= 0 Gy, got {args.margin_gy:g}")
    margins = tuple(DEFAULT_MARGINS_GY if not getattr(args, "sweep_margins_gy", None) else args.sweep_margins_gy)
    if not all(m >= 0 for m in margins):
        raise InputError(f"--sweep-margins-gy must be >= 0 Gy, got {list(margins)}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out!r} exists and is not a directory")
    os.makedirs(args.out, exist_ok=True)
    protocol = load_protocol(args.protocol)
    params = {}
    grid_mm = args.grid_mm
    if getattr(args, "coarse", False):
        from .demo_cmd import COARSE
        grid_mm = COARSE["grid_mm"] if grid_mm is None else grid_mm
        params = {"dose_grid_mm": COARSE["dose_grid_mm"], "bixel_mm": COARSE["bixel_mm"]}
    if args.dose_grid_mm is not None:
        params["dose_grid_mm"] = args.dose_grid_mm
    if args.bixel_mm is not None:
        params["bixel_mm"] = args.bixel_mm
    t0 = time.perf_counter()
    with progress_to_stderr(t0, ("optimizer.fmo",)):
        say(t0, f"building phantom {args.phantom!r} (dose engine; cached after the first run)")
        fcase = case_from_phantom(args.phantom, protocol, grid_mm=grid_mm, **params)
        n_vox, n_beamlets = fcase.influence_gy.shape
        say(t0, f"influence matrix {n_vox} voxels x {n_beamlets} beamlets, {fcase.influence_gy.nnz} non-zeros")
        return _optimize(args, fcase, protocol, margins, t0)


def _optimize(args: argparse.Namespace, fcase: Any, protocol: Any, margins: Tuple[float, ...], t0: float) -> int:
    """Solve the strategy (or the sweep) on the built case, write the files, print; exit status."""
    from optimizer.fmo_strategies import plan_strategy
    from optimizer.sweep import SweepPoint, plot_sweep, sweep_table

    options = FmoOptions(solver=args.solver)
    if not args.sweep:
        say(t0, f"strategy {args.strategy}, margin {args.margin_gy:g} Gy")
        plan = plan_strategy(fcase, protocol, args.strategy, margin_gy=args.margin_gy, options=options)
        payload = _payload(args.phantom, plan)
        _write_plan(args.out, fcase, plan, payload)
        if args.json:
            print_json(payload)
        else:
            print_table(["strategy", "status", "solve_s", "V24Gy_%", "D95_gy", "all_pass"],
                        [[plan.strategy, plan.result.status, plan.result.solve_s, plan.v_rx_percent, plan.d95_gy,
                          plan.all_pass]], title=f"{args.phantom}: FMO ceiling")
        return 0 if plan.result.has_plan else 1
    entries, points = [], []
    for strategy in STRATEGY_CHOICES:
        for m in sorted(set(margins)):
            say(t0, f"strategy {strategy}, margin {m:g} Gy")
            plan = plan_strategy(fcase, protocol, strategy, margin_gy=m, options=options)
            payload = dict(_payload(args.phantom, plan), margin_gy=m)
            _write_plan(args.out, fcase, plan, payload)
            entries.append(payload)
            points.append(SweepPoint(strategy, m, plan.result.status, plan.result.solve_s, plan.v_rx_percent,
                                     plan.d95_gy, plan.cumulative_pass, plan.all_pass))
    with open(os.path.join(args.out, "sweep.json"), "w") as fh:
        json.dump({"phantom": args.phantom, "sweep": entries}, fh, indent=2)
    plot_sweep(points, os.path.join(args.out, "sweep.png"), title=f"{args.phantom}: FMO coverage vs margin")
    if args.json:
        print_json({"phantom": args.phantom, "sweep": entries})
    else:
        headers, rows = sweep_table(points)
        print_table(headers, rows, title=f"{args.phantom}: coverage vs margin")
    return 0 if all(p.status == "optimal" for p in points) else 1
