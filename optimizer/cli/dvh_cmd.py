"""``reirrad dvh``: DVH metrics of DICOM-RT files, through the mock TPS.

The files take the one road (DESIGN §4): :func:`mock_tps.dicom_import.import_dicom`
loads them into the mock as a planning system would, the adapter reads the plan's
``TotalDose`` and each ROI's ``GetRoiGeometryAsVoxels`` on the dose grid, and
:func:`constraints.dvh.compute_dvh` computes the metrics (its D_V rule: no
interpolation, the colder voxel completing V).  With ``--fractions`` and
``--alpha-beta`` the metrics are of the voxel-wise BED of that α/β, with the EQD2
alongside.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from constraints.dvh import compute_dvh
from constraints.errors import InputError
from constraints.lq import bed, eqd2
from constraints.structure import Structure

from ._output import print_json, print_table

DEFAULT_D_PERCENT = (99.0, 95.0, 5.0, 1.0)
DEFAULT_D_CC = (0.03, 0.035, 1.0)


def register(sub: Any) -> None:
    p = sub.add_parser("dvh", help="DVH metrics of an RTSTRUCT + RTDOSE (imported into the mock TPS)",
                       description="Volume, min/mean/max, D_x%% and D_Vcc of each ROI of an RTSTRUCT on an RTDOSE. "
                                   "With --fractions and --alpha-beta the metrics are of the BED (EQD2 alongside).")
    p.add_argument("--rtstruct", required=True, metavar="RS.dcm", help="RTSTRUCT file")
    p.add_argument("--dose", required=True, metavar="RD.dcm", help="RTDOSE file (the plan's dose)")
    p.add_argument("--ct", metavar="DIR", help="directory of the planning CT series (optional)")
    p.add_argument("--roi", nargs="+", metavar="NAME", help="ROIs to report (default: all)")
    p.add_argument("--d-percent", nargs="+", type=float, default=list(DEFAULT_D_PERCENT), metavar="X",
                   dest="d_percent", help="D_x%% levels (default 99 95 5 1)")
    p.add_argument("--d-cc", nargs="+", type=float, default=list(DEFAULT_D_CC), metavar="V", dest="d_cc",
                   help="D_V levels in cm³ (default 0.03 0.035 1)")
    p.add_argument("--fractions", type=int, metavar="N",
                   help="fraction count of the plan (for BED, and for a per-fraction RTDOSE)")
    p.add_argument("--alpha-beta", type=float, metavar="GY", dest="alpha_beta",
                   help="α/β (Gy): report BED and EQD2 of the total dose in --fractions fractions")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_dvh)


def _check_args(args: argparse.Namespace) -> None:
    if args.alpha_beta is not None and args.fractions is None:
        raise InputError("--alpha-beta needs --fractions (the BED depends on the fraction count)")
    if args.alpha_beta is not None and not (np.isfinite(args.alpha_beta) and args.alpha_beta > 0):
        raise InputError(f"--alpha-beta must be > 0 Gy, got {args.alpha_beta:g}")
    if args.fractions is not None and args.fractions < 1:
        raise InputError(f"--fractions must be >= 1, got {args.fractions}")
    for p in args.d_percent:
        if not (0 < p <= 100):
            raise InputError(f"--d-percent {p:g} must be in (0, 100]")
    for v in args.d_cc:
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"--d-cc {v:g} must be > 0 cm³")
    for opt, path in (("--rtstruct", args.rtstruct), ("--dose", args.dose)):
        if not Path(path).is_file():
            raise InputError(f"{opt} {path!r}: no such file")
    if args.ct is not None and not Path(args.ct).is_dir():
        raise InputError(f"--ct {args.ct!r}: no such directory")


def _metrics(values: np.ndarray, structure: Structure, args: argparse.Namespace) -> Dict[str, Any]:
    m = compute_dvh(values, structure).metrics(d_percent=args.d_percent, d_cc=args.d_cc)
    out: Dict[str, Any] = {"min_gy": m["min"], "max_gy": m["max"], "mean_gy": m["mean"],
                           "d_percent": m["d_percent"], "d_cc": m["d_cc"]}
    if "not_evaluable" in m:
        out["not_evaluable"] = m["not_evaluable"]
    return out, m["volume_cc"]


def dvh_report(args: argparse.Namespace) -> Dict[str, Any]:
    """Import the files into the mock and compute the report (the JSON payload)."""
    from mock_tps.dicom_import import import_dicom
    from tps_scripts import adapter

    _check_args(args)
    imported = import_dicom(rtstruct=args.rtstruct, plan_dose=args.dose, ct_dir=args.ct, fractions=args.fractions)
    api = adapter.get_api()
    ctx = adapter.current_context(api)
    total = ctx.plan.TreatmentCourse.TotalDose
    grid = adapter.dose_grid(total)
    dose_gy = adapter.read_dose_gy(total, f"RTDOSE {args.dose!r}", grid)
    n = int(ctx.beam_set.FractionationPattern.NumberOfFractions)
    values, eqd2_values, quantity = dose_gy, None, "physical dose"
    if args.alpha_beta is not None:
        values = bed(dose_gy, n, args.alpha_beta)
        eqd2_values = eqd2(dose_gy, n, args.alpha_beta)
        quantity = f"BED (alpha/beta {args.alpha_beta:g} Gy, {n} fractions); EQD2 under 'eqd2'"
    pm = ctx.case.PatientModel
    ss = pm.StructureSets[ctx.examination.Name]
    names = [r.Name for r in pm.RegionsOfInterest]
    wanted = list(args.roi) if args.roi else names
    unknown = [r for r in wanted if r not in names]
    if unknown:
        raise InputError(f"--roi {unknown}: not in RTSTRUCT {args.rtstruct!r}; its ROIs are {names}")
    kinds = {r.Name: adapter.ORGAN_KIND_FROM_TPS.get(r.OrganData.OrganType, "other") for r in pm.RegionsOfInterest}
    rois: List[Dict[str, Any]] = []
    for name in wanted:
        geom = ss.RoiGeometries[name]
        entry: Dict[str, Any] = {"name": name}
        if not geom.HasContours():
            entry["reason"] = "no contours in the RTSTRUCT (no closed planar contour)"
            rois.append(entry)
            continue
        roi_volume_cc = float(geom.GetRoiVolume())
        mask = adapter.roi_mask(ss, name, total, grid)
        if not mask.any():
            entry["roi_volume_cc"] = roi_volume_cc
            entry["reason"] = "outside the dose grid"
            rois.append(entry)
            continue
        s = Structure(name, kinds[name], mask, grid)
        m, vol = _metrics(values, s, args)
        entry["volume_cc"] = vol
        entry["roi_volume_cc"] = roi_volume_cc
        entry.update(m)
        if vol < 0.99 * roi_volume_cc:
            entry["warning"] = (f"{100.0 * (1 - vol / roi_volume_cc):.1f} % of the ROI lies outside the dose grid; "
                                "metrics are of the part inside")
        if eqd2_values is not None:
            entry["eqd2"], _ = _metrics(eqd2_values, s, args)
        rois.append(entry)
    return {"dose_file": str(args.dose), "rtstruct": str(args.rtstruct), "quantity": quantity,
            "fractions": n, "fractions_source": imported.fractions_source,
            "dose_summation": imported.plan_dose_note, "rois": rois}


def run_dvh(args: argparse.Namespace) -> int:
    payload = dvh_report(args)
    if args.json:
        print_json(payload)
        return 0
    dp = [f"{p:g}" for p in args.d_percent]
    dc = [f"{v:g}" for v in args.d_cc]
    headers = ["ROI", "volume (cc)", "min", "mean", "max"] + [f"D{p}%" for p in dp] + [f"D{v}cc" for v in dc]
    rows = []
    for r in payload["rois"]:
        if "reason" in r:
            rows.append([r["name"], "-", "-", "-", "-"] + ["-"] * (len(dp) + len(dc)) + [])
            continue
        rows.append([r["name"], r["volume_cc"], r["min_gy"], r["mean_gy"], r["max_gy"]]
                    + [r["d_percent"][p] for p in dp] + [r["d_cc"][v] for v in dc])
    print_table(headers, rows, title=f"{payload['dose_file']}: {payload['quantity']} (Gy)")
    for r in payload["rois"]:
        if "reason" in r:
            print(f"{r['name']}: {r['reason']}")
        elif "warning" in r:
            print(f"{r['name']}: {r['warning']}")
    return 0
