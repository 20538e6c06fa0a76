"""``reirrad dvh``: DVH metrics of DICOM-RT files, on a sub-voxel grid.

The files take the product's one road (DESIGN §4): they are imported into the mock
TPS (:func:`mock_tps.dicom_import.import_dicom`, with its checks and refusals), and
every number is read back through the scripting API by the adapter — the dose with
``DoseValues.DoseData`` (cGy → Gy), each ROI's extent with ``GetBoundingBox`` and its
coverage on the refined grid with ``GetRoiGeometryAsVoxels`` (the mock voxelizes
contoured ROIs from their contours on the grid asked for, RTSTRUCT rule of
:mod:`mock_tps._dicom_voxelize`: even-odd in plane, ½-spacing end caps).

The DVH rule (:mod:`constraints.dvh_subvoxel`)
-----------------------------------------------
Each ROI is voxelized directly from its contours on the dose grid refined by an
integer factor per axis, over the box of dose voxels it touches: sub-voxels of
0.5 mm, or the finest that keeps the box within 250 000 sub-voxels (a body contour
stays on the dose grid).  A dose voxel wholly inside the ROI is one element; each
covered sub-voxel of a surface voxel is one, with the trilinearly interpolated dose
at its centre.  Each element's dose is spread uniformly over ± half the dose change
across it (local gradient × its size, capped within [0, the grid's highest dose]),
so the DVH is continuous and D_V is read off it without rounding to a voxel:
D0.035cc is the dose above which exactly 0.035 cm³ of this model lies.

**This differs from the assessment** (``reirrad assess``, :mod:`constraints.dvh`),
which uses the dose-grid voxels, each carrying its centre dose, the colder voxel
completing V: on a 3 mm grid in a 1 Gy/mm gradient the two can differ by up to
~3 Gy in D_V.  Definitions here: ``volume_cc`` = covered volume inside the dose
grid (Σ coverage × element volume); ``roi_volume_cc`` = the whole ROI: the same
when it lies inside the dose grid, else its contour stack (plane areas × slab
thickness), with a ``warning`` when less than 99 % of it is inside;
``min_gy``/``max_gy`` = the bottom/top of the DVH (lowest d − h / highest d + h over
the elements; never above the grid's highest dose); ``mean_gy`` = coverage-weighted
mean of the element centre doses.

With ``--fractions`` and ``--alpha-beta`` the metrics are of the voxel-wise BED of
that α/β (a monotone function of the dose: D_V of the BED is the BED of D_V; the
mean is the mean BED over each element's spread), with the EQD2 alongside.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from constraints.dvh_subvoxel import SubvoxelDvh, compute_subvoxel_dvh
from constraints.subvoxel_sampling import (DEFAULT_MAX_SUBVOXELS, DEFAULT_TARGET_MM, DoseField, subvoxel_elements,
                                          subvoxel_factors)
from constraints.errors import InputError
from constraints.grid import Grid
from constraints.lq import bed, eqd2

from ._output import print_json, print_table
from .dvh_imports import import_pydicom_without_extras

DEFAULT_D_PERCENT = (99.0, 95.0, 5.0, 1.0)
DEFAULT_D_CC = (0.03, 0.035, 1.0)


def register(sub: Any) -> None:
    p = sub.add_parser("dvh", help="DVH metrics of an RTSTRUCT + RTDOSE (sub-voxel DVH)",
                       description="Volume, min/mean/max, D_x%% and D_Vcc of each ROI of an RTSTRUCT on an RTDOSE. "
                                   "Sub-voxel rule: each ROI is voxelized from its contours on the dose grid refined "
                                   "to sub-voxels of about 0.5 mm (coarser for large ROIs), the dose is interpolated "
                                   "trilinearly at their centres and spread over each sub-voxel's width, and D_V is "
                                   "read off the resulting continuous DVH. This differs from the assessment "
                                   "(reirrad assess), which uses the dose-grid voxels with their centre dose. "
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


def _index_range(lo_mm: float, hi_mm: float, corner_mm: float, step_mm: float, n: int) -> Tuple[int, int]:
    """Dose voxels [i0, i1) overlapping [lo_mm, hi_mm], clipped to the grid."""
    i0 = int(math.floor((lo_mm - corner_mm) / step_mm + 1e-9))
    i1 = int(math.ceil((hi_mm - corner_mm) / step_mm - 1e-9))
    return max(i0, 0), min(i1, n)


def _roi_dvh(name: str, geometry: Any, dose: DoseField, grid: Grid) -> Tuple[Optional[SubvoxelDvh], bool]:
    """Sub-voxel DVH of one ROI (rule in the module doc), or None when no part lies in the dose grid;
    and whether the ROI reaches beyond the dose grid."""
    from tps_scripts.tps_read import roi_bounding_box_mm, roi_coverage_on

    (x0, y0, z0), (x1, y1, z1) = roi_bounding_box_mm(geometry)
    nz, ny, nx = grid.shape_zyx
    (cx, cy, cz), (dx, dy, dz) = grid.corner_mm, grid.spacing_xyz_mm
    i0, i1 = _index_range(x0, x1, cx, dx, nx)
    j0, j1 = _index_range(y0, y1, cy, dy, ny)
    k0, k1 = _index_range(z0, z1, cz, dz, nz)
    clipped = x0 < cx or x1 > cx + nx * dx or y0 < cy or y1 > cy + ny * dy or z0 < cz or z1 > cz + nz * dz
    if i0 >= i1 or j0 >= j1 or k0 >= k1:
        return None, True
    box = (k1 - k0, j1 - j0, i1 - i0)
    fz, fy, fx = subvoxel_factors(box, grid.spacing_xyz_mm, target_mm=DEFAULT_TARGET_MM,
                                  max_subvoxels=DEFAULT_MAX_SUBVOXELS)
    fine = Grid((cx + i0 * dx, cy + j0 * dy, cz + k0 * dz), (dx / fx, dy / fy, dz / fz),
                (box[0] * fz, box[1] * fy, box[2] * fx))
    coverage = roi_coverage_on(geometry, fine, f"ROI {name!r}", as_bytes=True)
    if not coverage.any():
        return None, True
    d, h, w = subvoxel_elements(coverage, dose, (k0, j0, i0), (fz, fy, fx))
    return compute_subvoxel_dvh(name, d, h, w, dose_max_gy=dose.max_gy), clipped


def _metrics(h: SubvoxelDvh, args: argparse.Namespace,
             transform: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Dict[str, Any]:
    m = h.metrics(d_percent=args.d_percent, d_cc=args.d_cc, transform=transform)
    out: Dict[str, Any] = {"min_gy": m["min"], "max_gy": m["max"], "mean_gy": m["mean"],
                           "d_percent": m["d_percent"], "d_cc": m["d_cc"]}
    if "not_evaluable" in m:
        out["not_evaluable"] = m["not_evaluable"]
    return out


def dvh_report(args: argparse.Namespace) -> Dict[str, Any]:
    """Import the files, read them back through the API and compute the report (the JSON payload)."""
    import mock_tps
    from mock_tps import connect as api
    from mock_tps.dicom_import import import_dicom
    from tps_scripts.tps_read import current_context, dose_grid, read_dose_gy

    _check_args(args)
    imported = import_dicom(rtstruct=args.rtstruct, plan_dose=args.dose, ct_dir=args.ct, fractions=args.fractions,
                            physical_only=False)     # a DVH of whatever map the file holds
    n, fractions_source, dose_note = imported.fractions, imported.fractions_source, imported.plan_dose_note
    del imported          # its file data (the dose, the CT: ~30 MB) is no longer needed: the mock holds its own
    try:
        ctx = current_context(api)
        total = ctx.plan.TreatmentCourse.TotalDose
        grid = dose_grid(total)
        dose = DoseField.from_grid(read_dose_gy(total, f"plan RTDOSE {args.dose!r}", grid).astype(np.float32),
                                   grid.spacing_xyz_mm)            # only the padded copy stays
        ss = ctx.case.PatientModel.StructureSets[ctx.examination.Name]
        names = [r.Name for r in ctx.case.PatientModel.RegionsOfInterest]
        quantity = "physical dose"
        transform = eqd2_transform = None
        if args.alpha_beta is not None:
            ab = float(args.alpha_beta)
            transform = lambda d: bed(d, n, ab)            # noqa: E731 - monotone maps of the dose
            eqd2_transform = lambda d: eqd2(d, n, ab)      # noqa: E731
            quantity = f"BED (alpha/beta {ab:g} Gy, {n} fractions); EQD2 under 'eqd2'"
        wanted = list(args.roi) if args.roi else names
        unknown = [r for r in wanted if r not in names]
        if unknown:
            raise InputError(f"--roi {unknown}: not in RTSTRUCT {args.rtstruct!r}; its ROIs are {names}")
        rois: List[Dict[str, Any]] = []
        for name in wanted:
            geometry = ss.RoiGeometries[name]
            entry: Dict[str, Any] = {"name": name}
            if not geometry.HasContours():
                entry["reason"] = "no contours in the RTSTRUCT (no closed planar contour)"
                rois.append(entry)
                continue
            h, clipped = _roi_dvh(name, geometry, dose, grid)
            roi_volume_cc = float(geometry.GetRoiVolume()) if clipped or h is None else h.total_volume_cc
            if h is None:
                entry["roi_volume_cc"] = roi_volume_cc
                entry["reason"] = "outside the dose grid"
                rois.append(entry)
                continue
            vol = h.total_volume_cc
            entry["volume_cc"] = vol
            entry["roi_volume_cc"] = roi_volume_cc
            entry.update(_metrics(h, args, transform))
            if vol < 0.99 * roi_volume_cc:
                entry["warning"] = (f"{100.0 * (1 - vol / roi_volume_cc):.1f} % of the ROI lies outside the dose "
                                    "grid; metrics are of the part inside")
            if eqd2_transform is not None:
                entry["eqd2"] = _metrics(h, args, eqd2_transform)
            rois.append(entry)
    finally:
        mock_tps.unload()
    if not any("reason" not in r for r in rois):
        raise InputError(f"no ROI of RTSTRUCT {args.rtstruct!r} could be evaluated: "
                         + "; ".join(f"{r['name']!r} {r['reason']}" for r in rois)
                         + ". Check that the RTSTRUCT has closed planar contours inside the RTDOSE grid")
    return {"dose_file": str(args.dose), "rtstruct": str(args.rtstruct), "quantity": quantity,
            "fractions": n, "fractions_source": fractions_source, "dose_summation": dose_note,
            "rois": rois}


def run_dvh(args: argparse.Namespace) -> int:
    import_pydicom_without_extras()
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
