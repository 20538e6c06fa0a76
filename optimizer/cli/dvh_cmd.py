"""``reirrad dvh``: DVH metrics of DICOM-RT files, on a sub-voxel grid.

The files are read by the mock TPS's DICOM readers (:mod:`mock_tps._dicom_struct`,
:mod:`mock_tps._dicom_dose`, :mod:`mock_tps._dicom_ct`), the same code and the same
checks and refusals as :func:`mock_tps.dicom_import.import_dicom` (modality, frame
of reference, per-fraction dose without a fraction count, malformed contours), and
each ROI is voxelized by the mock's rule (:mod:`mock_tps._dicom_voxelize`: even-odd
in plane, ½-spacing end caps).  No patient is loaded and the adapter is not used:
loading voxelizes every ROI on the CT grid and resamples it to the dose grid,
which costs more than all the DVHs and gives the geometry only at dose-grid
resolution (DESIGN §4's single road is kept for the DICOM-to-array part only).

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
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from constraints.dvh_subvoxel import (DEFAULT_MAX_SUBVOXELS, DEFAULT_TARGET_MM, DoseField, SubvoxelDvh,
                                      compute_subvoxel_dvh, subvoxel_elements, subvoxel_factors)
from constraints.errors import DicomImportError, InputError
from constraints.lq import bed, eqd2

from ._output import print_json, print_table

#: In-plane sample lines of the voxelizer: at least 2 per (sub-)voxel row and at most this far
#: apart (mm); the fraction is exact in x, midpoint-sampled in y.
LINE_SPACING_MM = 1.25
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


def _read(reader: Callable[..., Any], what: str, path: Any, *args: Any) -> Any:
    """``reader(path, *args)``; any failure other than the reader's own DicomImportError
    (pydicom or numpy on a malformed element) becomes a DicomImportError naming the file."""
    try:
        return reader(path, *args)
    except DicomImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure of a malformed file
        raise DicomImportError(f"{what} {str(path)!r} cannot be read: a malformed element "
                               f"({type(exc).__name__}: {exc}); export the file again") from None


def _read_files(args: argparse.Namespace) -> Tuple[Any, Any, np.ndarray, int, str, str, float]:
    """RTSTRUCT, plan RTDOSE (whole-course Gy), fraction count and its source (as import_dicom)."""
    from mock_tps._dicom_ct import read_ct_series
    from mock_tps._dicom_dose import dose_total_gy, read_rtdose
    from mock_tps._dicom_struct import read_rtstruct

    ss = _read(read_rtstruct, "RTSTRUCT", args.rtstruct)
    dose = _read(read_rtdose, "plan RTDOSE", args.dose, "plan RTDOSE")
    ct = _read(read_ct_series, "CT directory", args.ct) if args.ct is not None else None
    planning_frame = ct.frame_of_reference_uid if ct is not None else ss.frame_of_reference_uid
    if ss.frame_of_reference_uid != planning_frame:
        raise DicomImportError(
            f"RTSTRUCT {ss.path!r} is on frame of reference {ss.frame_of_reference_uid}, the CT series in "
            f"{str(args.ct)!r} on {planning_frame}: export the structure set drawn on this CT")
    if dose.frame_of_reference_uid != planning_frame:
        raise DicomImportError(
            f"plan RTDOSE {dose.path!r} is on frame of reference {dose.frame_of_reference_uid}, the planning "
            f"{'CT' if ct is not None else 'RTSTRUCT'} on {planning_frame}: the plan dose must be on the planning "
            "frame (a registration is accepted for prior-course doses only)")
    source = "argument" if args.fractions is not None else "assumed"
    total_gy, note = dose_total_gy(dose, args.fractions, "plan RTDOSE")
    nominal = ss.nominal_plane_spacing_mm() or (ct.grid.spacing_mm[2] if ct is not None else dose.grid.spacing_mm[2])
    return ss, dose.grid, np.asarray(total_gy, dtype=np.float32), args.fractions or 1, source, note, float(nominal)


def _index_range(lo_mm: float, hi_mm: float, corner_mm: float, step_mm: float, n: int) -> Tuple[int, int]:
    """Dose voxels [i0, i1) overlapping [lo_mm, hi_mm], clipped to the grid."""
    i0 = int(math.floor((lo_mm - corner_mm) / step_mm + 1e-9))
    i1 = int(math.ceil((hi_mm - corner_mm) / step_mm - 1e-9))
    return max(i0, 0), min(i1, n)


def _plane_area_mm2(contours: Sequence[np.ndarray]) -> float:
    """Area of one plane's contours under the even-odd rule (a contour inside an odd
    number of others is a hole), for contours that do not cross each other."""
    areas = [0.5 * abs(float(np.dot(c[:, 0], np.roll(c[:, 1], -1)) - np.dot(c[:, 1], np.roll(c[:, 0], -1))))
             for c in contours]
    if len(contours) == 1:
        return areas[0]
    total = 0.0
    for i, ci in enumerate(contours):
        x, y = float(ci[0, 0]), float(ci[0, 1])
        depth = 0
        for j, cj in enumerate(contours):
            if i == j:
                continue
            x0, y0 = cj[:, 0], cj[:, 1]
            x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
            crosses = (y0 > y) != (y1 > y)
            xc = x0[crosses] + (y - y0[crosses]) * (x1[crosses] - x0[crosses]) / (y1[crosses] - y0[crosses])
            depth += int(np.count_nonzero(xc > x)) % 2
        total += -areas[i] if depth % 2 else areas[i]
    return total


def _stack_volume_cc(planes: Sequence[Tuple[float, Sequence[np.ndarray]]], nominal_mm: float) -> float:
    """Volume of the contour stack (cm³): plane area × slab thickness (the voxelizer's slabs)."""
    from mock_tps._dicom_voxelize import slab_bounds_mm
    lo, hi = slab_bounds_mm(np.array([z for z, _ in planes]), nominal_mm)
    return float(sum(_plane_area_mm2(cs) * (b - a) for (_, cs), a, b in zip(planes, lo, hi))) / 1000.0


def _roi_dvh(name: str, planes: Sequence[Tuple[float, Sequence[np.ndarray]]], dose: DoseField, grid: Any,
             nominal_mm: float) -> Tuple[Optional[SubvoxelDvh], bool]:
    """Sub-voxel DVH of one ROI (rule in the module doc), or None when no part lies in the dose grid;
    and whether the ROI reaches beyond the dose grid."""
    from mock_tps._dicom_voxelize import slab_bounds_mm, voxelize_planes
    from mock_tps._phantom_data import GridSpec

    pts = np.concatenate([c for _, cs in planes for c in cs])
    zlo, zhi = slab_bounds_mm(np.array([z for z, _ in planes]), nominal_mm)
    nz, ny, nx = grid.shape
    (cx, cy, cz), (dx, dy, dz) = grid.corner_mm, grid.spacing_mm
    i0, i1 = _index_range(float(pts[:, 0].min()), float(pts[:, 0].max()), cx, dx, nx)
    j0, j1 = _index_range(float(pts[:, 1].min()), float(pts[:, 1].max()), cy, dy, ny)
    k0, k1 = _index_range(float(zlo.min()), float(zhi.max()), cz, dz, nz)
    clipped = (float(pts[:, 0].min()) < cx or float(pts[:, 0].max()) > cx + nx * dx or float(pts[:, 1].min()) < cy
               or float(pts[:, 1].max()) > cy + ny * dy or float(zlo.min()) < cz or float(zhi.max()) > cz + nz * dz)
    if i0 >= i1 or j0 >= j1 or k0 >= k1:
        return None, True
    box = (k1 - k0, j1 - j0, i1 - i0)
    fz, fy, fx = subvoxel_factors(box, grid.spacing_mm, target_mm=DEFAULT_TARGET_MM,
                                  max_subvoxels=DEFAULT_MAX_SUBVOXELS)
    fine = GridSpec(corner_mm=(cx + i0 * dx, cy + j0 * dy, cz + k0 * dz), spacing_mm=(dx / fx, dy / fy, dz / fz),
                    shape=(box[0] * fz, box[1] * fy, box[2] * fx))
    coverage = voxelize_planes(planes, fine, nominal_spacing_mm=nominal_mm,
                               subrows=max(2, math.ceil(dy / fy / LINE_SPACING_MM - 1e-9)))
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
    """Read the files and compute the report (the JSON payload); rule in the module doc."""
    _check_args(args)
    ss, grid, dose_gy, n, fx_source, note, nominal = _read_files(args)
    quantity = "physical dose"
    transform = eqd2_transform = None
    if args.alpha_beta is not None:
        ab = float(args.alpha_beta)
        transform = lambda d: bed(d, n, ab)            # noqa: E731 - monotone maps of the dose
        eqd2_transform = lambda d: eqd2(d, n, ab)      # noqa: E731
        quantity = f"BED (alpha/beta {ab:g} Gy, {n} fractions); EQD2 under 'eqd2'"
    names = [r.name for r in ss.rois]
    wanted = list(args.roi) if args.roi else names
    unknown = [r for r in wanted if r not in names]
    if unknown:
        raise InputError(f"--roi {unknown}: not in RTSTRUCT {args.rtstruct!r}; its ROIs are {names}")
    by_name = {r.name: r for r in ss.rois}
    dose = DoseField.from_grid(dose_gy, grid.spacing_mm)
    rois: List[Dict[str, Any]] = []
    for name in wanted:
        planes = by_name[name].planes
        entry: Dict[str, Any] = {"name": name}
        if not planes:
            entry["reason"] = "no contours in the RTSTRUCT (no closed planar contour)"
            rois.append(entry)
            continue
        h, clipped = _roi_dvh(name, planes, dose, grid, nominal)
        roi_volume_cc = _stack_volume_cc(planes, nominal) if clipped else h.total_volume_cc
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
            entry["warning"] = (f"{100.0 * (1 - vol / roi_volume_cc):.1f} % of the ROI lies outside the dose grid; "
                                "metrics are of the part inside")
        if eqd2_transform is not None:
            entry["eqd2"] = _metrics(h, args, eqd2_transform)
        rois.append(entry)
    return {"dose_file": str(args.dose), "rtstruct": str(args.rtstruct), "quantity": quantity,
            "fractions": n, "fractions_source": fx_source, "dose_summation": note, "rois": rois}


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
