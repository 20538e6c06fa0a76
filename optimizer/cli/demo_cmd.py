"""``reirrad demo``: a phantom patient through the same scripts a RayStation user runs.

Builds the phantom in ``mock_tps`` (default: the T4–T5 esophageal case, the seed's
fatal case), runs the assessment script on the plan as loaded (optimized against the
SBRT-only constraints, as in the seed), the closed-loop tuning script, the assessment
again, and writes the HTML report.  Progress lines go to stderr.
"""
from __future__ import annotations

import argparse
import os
import time

from ._output import print_json, progress_to_stderr, say

DEFAULT_PHANTOM = "t4t5_esophageal"
#: Phantom parameters of the small, fast variant (``--coarse``).
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def register(sub) -> None:
    p = sub.add_parser("demo", help="run assessment, closed-loop optimization and report on a built-in phantom",
                       description="Run the RayStation scripts on a mock_tps phantom and write the report.")
    p.add_argument("--phantom", default=DEFAULT_PHANTOM, help=f"phantom name (default {DEFAULT_PHANTOM})")
    p.add_argument("--out", default="reirrad_demo", metavar="DIR", help="output folder (default ./reirrad_demo)")
    p.add_argument("--grid-mm", type=float, default=None, metavar="MM",
                   help="CT voxel size of the phantom (default: the phantom's own)")
    p.add_argument("--coarse", action="store_true",
                   help="small fast variant: 4 mm CT, 5 mm dose grid, 10 mm beamlets (tests, quick looks)")
    p.add_argument("--max-optimizations", type=int, default=None, metavar="N",
                   help="RunOptimization calls at most (default: the plug-in's max_optimizations)")
    p.add_argument("--rs-version", default=None, metavar="V",
                   help="RayStation version the mock behaves as: 10B, 11B, 12A, 2023B, 2024A, 2024B or 2025 "
                        "(its API spellings and scripting module; default 2024A)")
    p.add_argument("--show-identity", action="store_true", help="show the (synthetic) patient name and ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from constraints.errors import InputError
    from constraints.protocol import load_protocol

    import mock_tps
    if args.phantom not in mock_tps.PHANTOMS:
        raise InputError(f"--phantom {args.phantom!r} is unknown; phantoms: {', '.join(mock_tps.PHANTOMS)}")
    if args.max_optimizations is not None and args.max_optimizations < 1:
        raise InputError("--max-optimizations must be >= 1")
    rs_version = mock_tps.DEFAULT_RS_VERSION if args.rs_version is None else args.rs_version
    if rs_version not in mock_tps.RS_VERSIONS:
        raise InputError(f"--rs-version {rs_version!r} is unknown; versions: {', '.join(mock_tps.RS_VERSIONS)}")
    from optimizer.organ_limits import organ_limits
    from optimizer.report import ReportInputs, write_report
    from tps_scripts.adapter import gather
    from tps_scripts.assess import headlines, run_assessment
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization

    t0 = time.perf_counter()
    with progress_to_stderr(t0, ("tps_scripts.optimize", "mock_tps")):
        params = dict(COARSE) if args.coarse else {}
        if args.grid_mm is not None:
            params["grid_mm"] = args.grid_mm
        say(t0, f"building phantom {args.phantom!r} (dose engine; cached after the first run)")
        mock_tps.load_phantom(args.phantom, rs_version=rs_version, **params)
        from tps_scripts.adapter import get_api
        connect = get_api()   # 'connect' up to 2024B, 'raystation' in 2025
        out = os.path.abspath(args.out)
        runs = {} if args.max_optimizations is None else {"max_optimizations": args.max_optimizations}
        config = PluginConfig(output_dir=os.path.join(out, "records"), show_identity=args.show_identity, **runs)
        protocol = load_protocol(config.protocol)
        say(t0, "assessment of the plan as loaded (optimized against SBRT-only constraints)")
        _, before = run_assessment(api=connect, config=config)
        say(t0, "closed-loop optimization against per-voxel cumulative limits")
        _, opt = run_optimization(api=connect, config=config)
        say(t0, "assessment of the optimized plan")
        _, after = run_assessment(api=connect, config=config)
        final = gather(connect, config, protocol)
        limits = organ_limits(final.case, protocol, unknown_prior=config.unknown_prior)
        report_record = dict(after)
        for key in ("tuning_log", "run_optimization_calls", "stop_reason", "zones", "replaced_constraints",
                    "optimized_plan"):
            report_record[key] = opt[key]
        report = write_report(ReportInputs(protocol, final.case, report_record, limits, before_record=before,
                                           show_identity=args.show_identity, identity=final.identity),
                              os.path.join(out, "report.html"))
        say(t0, f"report written: {report}")
    ev = after["evaluation"]
    rx = protocol.prescription.dose_gy
    cov = opt["ptv_eval"]
    payload = {
        "phantom": args.phantom,
        "rs_version": rs_version,
        "all_pass": bool(ev["all_pass"]),
        "coverage_goals_met": bool(ev["coverage_goals_met"]),
        "gtv": after.get("gtv", []),
        "geometry": [f["message"] for f in after.get("geometry", [])],
        "run_optimization_calls": opt["run_optimization_calls"],
        "ptv_eval": {"v24gy_percent": cov["v_rx_percent"], "d95_gy": cov["d95_gy"]},
        "constraints": [{"roi": c["roi"], "metric": c["metric"], "domain": c["domain"], "limit": c["limit"],
                         "value": c["value"], "pass": c["pass"]} for c in ev["constraints"] if not c["advisory"]],
        "before": {"all_pass": bool(before["evaluation"]["all_pass"]),
                   "coverage_goals_met": bool(before["evaluation"]["coverage_goals_met"]),
                   "failures": [c["id"] for c in before["evaluation"]["constraints"]
                                if not c["pass"] and not c["advisory"]]},
        "report": report,
    }
    if args.json:
        print_json(payload)
    else:
        print(f"phantom {args.phantom}: plan as loaded {'passes' if payload['before']['all_pass'] else 'FAILS'} "
              f"({', '.join(payload['before']['failures']) or 'no failure'})")
        print(f"optimized plan ({payload['run_optimization_calls']} RunOptimization call(s)):")
        for line in headlines(after):
            print("  " + line)
        print(f"report: {report}")
    return 0 if payload["all_pass"] else 1   # coverage is reported, not an error: goals are goals
