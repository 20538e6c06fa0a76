"""``reirrad assess``: DICOM exports in, the same assessment and report out.

The files are imported into ``mock_tps`` the way a planning system imports them
(``mock_tps.dicom_import``), then the RayStation assessment script's code runs on that
patient (one road into the neutral model).  Besides the record and the HTML report it
writes RTDOSE files of the cumulative EQD2 (one per α/β of the protocol's organs) and of
each organ's per-voxel SBRT limit map, on the planning frame of reference.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
from typing import Any, Dict, List, Tuple

import numpy as np

from constraints.errors import InputError

from ._output import print_json

_PRIOR = re.compile(r"^(?P<path>.+):(?P<fx>\d+)(?:@(?P<rec>[0-9]*\.?[0-9]+))?$")


def register(sub) -> None:
    p = sub.add_parser("assess", help="cumulative assessment of DICOM exports (plan + prior courses) with report",
                       description="Import RTSTRUCT, plan RTDOSE, RTPLAN (and CT) plus prior RTDOSEs, assess the "
                                   "plan against the protocol, write the record, the report and RTDOSE maps.")
    p.add_argument("--rtstruct", required=True, metavar="RS")
    p.add_argument("--plan-dose", required=True, metavar="RD")
    p.add_argument("--plan", metavar="RP", help="RTPLAN (fraction count, prescription)")
    p.add_argument("--fractions", type=int, metavar="N", help="plan fractions when there is no RTPLAN")
    p.add_argument("--ct", metavar="DIR")
    p.add_argument("--prior", action="append", default=[], metavar="RD_PRIOR:FRACTIONS[@RECOVERY]",
                   help="a prior course's RTDOSE with its fraction count (and recovery); repeat per course")
    p.add_argument("--registration", metavar="REG|MATRIX",
                   help="DICOM REG file, or 16 comma-separated numbers (row-major 4x4, prior -> planning frame)")
    p.add_argument("--protocol", default="koide2024")
    p.add_argument("--unknown-prior", choices=("refuse", "organ_max"), default="refuse")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--show-identity", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_assess)


def parse_prior(text: str) -> Tuple[str, int, float]:
    m = _PRIOR.match(text)
    if not m:
        raise InputError(f"--prior {text!r} must look like RD_PRIOR.dcm:FRACTIONS or RD_PRIOR.dcm:FRACTIONS@RECOVERY")
    rec = float(m.group("rec") or 0.0)
    if int(m.group("fx")) < 1 or not 0 <= rec < 1:
        raise InputError(f"--prior {text!r}: fractions must be >= 1 and recovery in [0, 1)")
    if not os.path.exists(m.group("path")):
        raise InputError(f"--prior {text!r}: file {m.group('path')!r} does not exist")
    return m.group("path"), int(m.group("fx")), rec


def parse_registration(text: str):
    if text is None:
        return None
    if os.path.exists(text):
        return text
    try:
        values = [float(v) for v in text.replace(";", ",").split(",")]
    except ValueError:
        raise InputError(f"--registration {text!r} is neither a file nor 16 comma-separated numbers") from None
    if len(values) != 16:
        raise InputError(f"--registration needs 16 numbers (row-major 4x4), got {len(values)}")
    return np.array(values).reshape(4, 4)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _input_files(args: argparse.Namespace, priors: List[Tuple[str, int, float]]) -> Dict[str, Any]:
    """SHA-256 of every input file, for the audit record (a CT directory: each file, sorted by name)."""
    files: Dict[str, Any] = {}
    for role, path in (("rtstruct", args.rtstruct), ("plan_dose", args.plan_dose), ("rtplan", args.plan),
                       ("registration", args.registration if args.registration and os.path.isfile(args.registration)
                        else None)):
        if path is not None:
            files[role] = {"path": os.path.abspath(path), "sha256": _sha256(path)}
    if args.ct is not None:
        names = sorted(f for f in os.listdir(args.ct) if os.path.isfile(os.path.join(args.ct, f)))
        files["ct"] = {"path": os.path.abspath(args.ct),
                       "files": {f: _sha256(os.path.join(args.ct, f)) for f in names}}
    files["priors"] = [{"path": os.path.abspath(p), "sha256": _sha256(p), "fractions": fx, "recovery": rec}
                       for p, fx, rec in priors]
    return files


def run_assess(args: argparse.Namespace) -> int:
    for opt, path in (("--rtstruct", args.rtstruct), ("--plan-dose", args.plan_dose), ("--plan", args.plan),
                      ("--ct", args.ct)):
        if path is not None and not os.path.exists(path):
            raise InputError(f"{opt} {path!r} does not exist")
    priors = [parse_prior(p) for p in args.prior]
    registration = parse_registration(args.registration)
    from constraints.accumulate import cumulative_eqd2
    from constraints.protocol import load_protocol
    from mock_tps.dicom_export import export_dose
    from mock_tps.dicom_import import import_dicom
    from optimizer.organ_limits import organ_limits
    from optimizer.report import ReportInputs, write_report
    from tps_scripts.adapter import gather
    from tps_scripts.assess import headlines, run_assessment
    from tps_scripts.config import PluginConfig, PriorConfig

    protocol = load_protocol(args.protocol)
    import_dicom(rtstruct=args.rtstruct, plan_dose=args.plan_dose, plan=args.plan, ct_dir=args.ct,
                 priors=priors, registration=registration, fractions=args.fractions)
    import connect
    out = os.path.abspath(args.out)
    # the evaluation doses carry generated names: hand the fraction counts over by configuration
    prior_names = [d.Name for fe in connect.get_current("Case").TreatmentDelivery.FractionEvaluations
                   for doe in fe.DoseOnExaminations for d in doe.DoseEvaluations]
    config = PluginConfig(protocol=args.protocol, output_dir=os.path.join(out, "records"),
                          show_identity=args.show_identity, unknown_prior=args.unknown_prior,
                          priors=tuple(PriorConfig(n, fx, rec) for n, (_, fx, rec) in zip(prior_names, priors)))
    path, record = run_assessment(api=connect, config=config, input_files=_input_files(args, priors))
    g = gather(connect, config, protocol)
    limits = organ_limits(g.case, protocol, unknown_prior=config.unknown_prior)
    frame = connect.get_current("Examination").EquipmentInfo.FrameOfReference
    files: List[str] = []
    courses = list(g.case.priors) + [g.case.sbrt]
    for ab in sorted({o.alpha_beta_gy for k, o in protocol.organs.items() if k in g.case.structures}):
        eqd2 = np.nan_to_num(cumulative_eqd2(courses, ab), nan=0.0)
        f, _ = export_dose(os.path.join(out, f"cumulative_eqd2_ab{ab:g}.dcm"), eqd2, g.case.grid,
                           frame_of_reference_uid=frame, kind="eqd2", alpha_beta_gy=ab,
                           description=f"cumulative EQD2 a/b {ab:g} (unknown voxels written as 0)")
        files.append(str(f))
    for key, ol in limits.items():
        inside = g.case.structures[key].mask > 0
        f, _ = export_dose(os.path.join(out, f"sbrt_limit_{key}.dcm"), np.where(inside, ol.strict_gy, 0.0),
                           g.case.grid, frame_of_reference_uid=frame, kind="limit",
                           description=f"per-voxel SBRT limit {protocol.organs[key].display_name} "
                                       f"(0 outside the organ)")
        files.append(str(f))
    report = write_report(ReportInputs(protocol, g.case, record, limits, title="reirrad — assessment of DICOM exports",
                                       show_identity=args.show_identity, identity=g.identity),
                          os.path.join(out, "report.html"))
    ev = record["evaluation"]
    payload = {"all_pass": bool(ev["all_pass"]), "coverage_goals_met": bool(ev["coverage_goals_met"]),
               "gtv": record.get("gtv", []), "geometry": [f["message"] for f in record.get("geometry", [])],
               "record": path, "report": report, "rtdose_files": files,
               "constraints": [{"roi": c["roi"], "metric": c["metric"], "domain": c["domain"], "limit": c["limit"],
                                "value": c["value"], "value_subvoxel": c["value_subvoxel"], "pass": c["pass"]}
                              for c in ev["constraints"]],
               "unmatched_rois": record["inputs"]["unmatched_rois"]}
    if args.json:
        print_json(payload)
    else:
        for line in headlines(record):
            print(line)
        print(f"report {report}")
        for c in payload["constraints"]:
            print(f"  {'pass' if c['pass'] else 'FAIL'}  {c['roi']} {c['metric']} {c['domain']}: "
                  f"{'-' if c['value'] is None else format(c['value'], '.2f')} vs {c['limit']}")
    return 0
