"""The adapter: RayStation objects → the neutral model (read side).

One road into the packages (DESIGN §4): the dose grid geometry (cm → mm), ROI
fractional masks on the dose grid (``GetRoiGeometryAsVoxels``, 0–255 → 0–1), the
SBRT dose (cGy → Gy) with its fraction count, and the prior courses (evaluation
doses on the planning examination, Gy, with fraction counts from their names or the
configuration), resampled onto the SBRT dose grid where their grid differs.

:func:`gather` reads a plan; the reading of single objects is in
:mod:`tps_scripts.tps_read`, the finding and checking of prior courses in
:mod:`tps_scripts.prior_courses` (both re-exported here).  Everything here only reads.
Writing back lives in :mod:`tps_scripts.writeback`.  Runs on CPython 3.8 with numpy only.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from constraints.dose_course import DoseCourse, fractions_from_name, total_from_name
from constraints.errors import InputError, TpsStateError
from constraints.evaluation import PlanCase
from constraints.geometry_checks import Finding, overlap_findings, prv_margin_findings
from constraints.grid import Grid
from constraints.morphology import max_over_sphere
from constraints.subvoxel_rule import FineCoverage, fine_box
from constraints.protocol import Protocol, RoiMatch, match_roi_names
from constraints.resample import resample_to_grid
from constraints.structure import Structure

from .config import PluginConfig
from .prior_courses import (PRIOR_MAX_TO_TOTAL, FoundPrior, PriorInfo, check_prior_total, find_prior_doses,
                            handle_unknown_prior)
from .tps_read import (TpsContext, array_digest, current_context, dose_grid, get_api, read_dose_gy,
                       roi_bounding_box_mm, roi_coverage_on, roi_mask)
from .units import cgy_to_gy

__all__ = ["get_api", "TpsContext", "current_context", "dose_grid", "read_dose_gy", "roi_mask",
           "PriorInfo", "find_prior_doses", "Gathered", "gather", "fractions_from_name", "array_digest",
           "roi_coverage_on", "roi_bounding_box_mm", "FoundPrior", "check_prior_total", "total_from_name",
           "PRIOR_MAX_TO_TOTAL", "GTV_ALIASES"]

ORGAN_KIND_FROM_TPS = {"Target": "target", "OrganAtRisk": "oar", "Other": "other", "Unknown": "other"}


@dataclass(frozen=True, eq=False)
class Gathered:
    """What :func:`gather` read from the planning system."""

    context: TpsContext
    case: PlanCase
    match: RoiMatch
    roi_kinds: Dict[str, str]
    empty_rois: Tuple[str, ...]
    priors: Tuple[PriorInfo, ...]
    sbrt_fractions: int
    prescription_gy: Optional[float]
    sbrt_digest: str
    identity: Dict[str, str]
    prior_objects: Tuple[Any, ...] = ()
    nominal_case: Optional[PlanCase] = None     # priors without registration uncertainty (None: none claimed)
    gtvs: Tuple[Structure, ...] = ()            # ROIs of type GTV or named like one (reported, not protocol organs)
    geometry: Tuple[Finding, ...] = ()          # geometry findings (warnings)


#: A GTV is an ROI of RayStation type 'Gtv' or one whose name starts with one of these (any case).
GTV_ALIASES = ("gtv",)


def _gtvs(pm: Any, ss: Any, fraction_dose: Any, grid: Grid, match: RoiMatch) -> Tuple[Structure, ...]:
    """The GTVs with contours on the dose grid (for the coverage headline; no protocol limit)."""
    out = []
    for r in pm.RegionsOfInterest:
        is_gtv = str(getattr(r, "Type", "")).lower() == "gtv" or r.Name.strip().lower().startswith(GTV_ALIASES)
        if not is_gtv or r.Name in match.organ_to_roi.values() or not ss.RoiGeometries[r.Name].HasContours():
            continue
        mask = roi_mask(ss, r.Name, fraction_dose, grid)
        if mask.any():
            out.append(Structure(r.Name, "target", mask, grid))
    return tuple(out)


def _fine_coverages(ss: Any, structures: Mapping[str, Structure], grid: Grid,
                    protocol: Protocol) -> Dict[str, FineCoverage]:
    """Each organ's coverage on the refined box of its dose voxels, for the sub-voxel rule
    (organs with a Dmax or D_V constraint; derived organs are read on the dose grid)."""
    wanted = {c.organ for c in protocol.constraints if c.metric.kind in ("max", "d_cc", "d_percent")}
    out: Dict[str, FineCoverage] = {}
    for key, s in structures.items():
        if key not in wanted or protocol.organs[key].exclude_target_margin_mm is not None:
            continue
        lo, factors, fine = fine_box(s.mask, grid)
        cov = roi_coverage_on(ss.RoiGeometries[s.name], fine, f"ROI {s.name!r}")
        out[key] = FineCoverage(cov.astype(np.float32), lo, factors)
    return out


#: Organ keys and margin of the seed's cord PRV (Koide 2024: cord + 1.5 mm).
CORD_KEY, CORD_PRV_KEY, CORD_PRV_MARGIN_MM = "spinal_cord", "spinal_cord_prv", 1.5
#: Sub-voxel size (mm) of the PRV margin check (its tolerance) and its budget of sub-voxels.
_MARGIN_CHECK_MM, _MARGIN_CHECK_BUDGET = 0.5, 4_000_000


def _geometry_findings(ss: Any, structures: Mapping[str, Structure], grid: Grid, protocol: Protocol) -> List[Finding]:
    """Target–PRV overlap and OARs inside the target (on 0.5 mm sub-voxels of the dose voxels they share) and
    the cord PRV margin (0.5 mm sub-voxels of the cord and PRV)."""
    target_key = protocol.prescription.target
    out: List[Finding] = []
    if target_key in structures:
        t = structures[target_key]
        for k, o in structures.items():
            if protocol.organs[k].kind != "oar" or protocol.organs[k].exclude_target_margin_mm is not None:
                continue
            both = (t.mask > 0) & (o.mask > 0)
            if not both.any():
                continue
            # the shared dose voxels, voxelized again on 0.5 mm sub-voxels: the bounds then hold to a sub-voxel
            _, _, fine = fine_box(both, grid, target_mm=_MARGIN_CHECK_MM, max_subvoxels=_MARGIN_CHECK_BUDGET)
            tf = roi_coverage_on(ss.RoiGeometries[t.name], fine, f"ROI {t.name!r}")
            of = roi_coverage_on(ss.RoiGeometries[o.name], fine, f"ROI {o.name!r}")
            if k == CORD_PRV_KEY:
                out += overlap_findings(t.name, tf, o.name, of, {}, fine.voxel_volume_cc)
            else:
                out += overlap_findings(t.name, tf, None, None, {o.name: of}, fine.voxel_volume_cc)
    if CORD_KEY in structures and CORD_PRV_KEY in structures:
        cord, prv = structures[CORD_KEY], structures[CORD_PRV_KEY]
        union = Structure("cord and PRV", "oar", np.maximum(cord.mask, prv.mask), grid)
        _, _, fine = fine_box(union.mask, grid, target_mm=_MARGIN_CHECK_MM, max_subvoxels=_MARGIN_CHECK_BUDGET)
        out += prv_margin_findings(cord.name, roi_coverage_on(ss.RoiGeometries[cord.name], fine, f"ROI {cord.name!r}"),
                                   prv.name, roi_coverage_on(ss.RoiGeometries[prv.name], fine, f"ROI {prv.name!r}"),
                                   fine, margin_mm=CORD_PRV_MARGIN_MM)
    return out


def _prescription_gy(beam_set: Any) -> Optional[float]:
    presc = getattr(beam_set, "Prescription", None)
    if presc is None:
        return None
    for attr in ("PrimaryPrescriptionDoseReference", "PrimaryDosePrescription"):  # 12A+ / older
        ref = getattr(presc, attr, None)
        if ref is not None:
            return float(cgy_to_gy(ref.DoseValue))
    return None


def gather(api: Any, config: PluginConfig, protocol: Protocol, *, require_dose: bool = True) -> Gathered:
    """Read the current plan into the neutral model.

    Raises
    ------
    constraints.errors.TpsStateError
        Nothing loaded, no dose computed, unknown fraction count of a prior course,
        a required organ (e.g. cord PRV, esophagus) without an ROI or contours.
    constraints.errors.InputError
        Ambiguous ROI names, bad dose data.
    """
    ctx = current_context(api)
    bs = ctx.beam_set
    fractions = int(bs.FractionationPattern.NumberOfFractions)
    if fractions not in protocol.prescription.allowed_fractions:
        raise InputError(
            f"beam set {bs.DicomPlanLabel!r} has {fractions} fraction(s), but protocol {protocol.name!r} holds for "
            f"{' or '.join(str(n) for n in protocol.prescription.allowed_fractions)} fraction(s) only (its physical "
            "limits are for that fractionation); set the beam set's fractions or choose another protocol")
    fraction_dose = bs.FractionDose
    grid = dose_grid(fraction_dose)
    if require_dose or fraction_dose.DoseValues is not None:
        sbrt_gy = read_dose_gy(fraction_dose, f"beam set {bs.DicomPlanLabel!r} (fraction dose)", grid) * fractions
    else:
        sbrt_gy = np.zeros(grid.shape_zyx)
    pm = ctx.case.PatientModel
    roi_names = [r.Name for r in pm.RegionsOfInterest]
    kinds = {r.Name: ORGAN_KIND_FROM_TPS.get(r.OrganData.OrganType, "other") for r in pm.RegionsOfInterest}
    match = match_roi_names(roi_names, protocol, config.roi_overrides)
    ss = pm.StructureSets[ctx.examination.Name]
    structures: Dict[str, Structure] = {}
    empty = []
    for organ, roi in match.organ_to_roi.items():
        if not ss.RoiGeometries[roi].HasContours():
            empty.append(roi)
            continue
        mask = roi_mask(ss, roi, fraction_dose, grid)
        if not mask.any():
            empty.append(roi)
            continue
        structures[organ] = Structure(roi, protocol.organs[organ].kind, mask, grid)
    missing = [k for k, o in protocol.organs.items() if o.required and k not in structures]
    if missing:
        details = []
        for k in missing:
            roi = match.organ_to_roi.get(k)
            details.append(f"{protocol.organs[k].display_name} (ROI {roi!r} has no contours on {ctx.examination.Name!r} "
                           "or does not reach the dose grid)" if roi else
                           f"{protocol.organs[k].display_name} (no ROI named like {list(protocol.organs[k].aliases[:3])})")
        raise TpsStateError("required organ(s) missing: " + "; ".join(details)
                            + f". Unmatched ROIs: {list(match.unmatched_rois)}; set roi_overrides in the configuration")
    priors = []
    prior_infos = []
    prior_objects = []
    nominal = []
    for fp in find_prior_doses(ctx, config):
        dose_obj, name, fx, rec, date, source = (fp.dose, fp.name, fp.fractions, fp.recovery, fp.date,
                                                 fp.fractions_source)
        prior_objects.append(dose_obj)
        pgrid = dose_grid(dose_obj)
        pdose = read_dose_gy(dose_obj, f"prior course {name!r}", pgrid, allow_unknown=True)
        mapped_max = check_prior_total(name, pdose, fp.total_gy, fx)
        resampled = not pgrid.same_as(grid)
        if resampled:
            pdose = resample_to_grid(pdose, pgrid, grid)
        pdose, assumed = handle_unknown_prior(pdose, name, structures, config.unknown_prior)
        course_date = _dt.date.fromisoformat(date) if date else None
        nominal.append(DoseCourse(pdose, grid, fx, name, recovery=rec, date=course_date))
        if fp.uncertainty_mm > 0:
            # max over a sphere of the dose = max of its BED (BED rises with dose): see max_over_sphere
            pdose = max_over_sphere(pdose, grid, fp.uncertainty_mm)
        priors.append(DoseCourse(pdose, grid, fx, name, recovery=rec, date=course_date))
        prior_infos.append(PriorInfo(name, fx, rec, date, source, resampled, array_digest(pdose), assumed,
                                     fp.total_gy, mapped_max, fp.uncertainty_mm))
    sbrt = DoseCourse(sbrt_gy, grid, fractions, f"SBRT {bs.DicomPlanLabel}", date=config.sbrt_date)
    identity = {
        "patient_name": str(getattr(ctx.patient, "Name", "")),
        "patient_id": str(getattr(ctx.patient, "PatientID", "")),
        "case": str(getattr(ctx.case, "CaseName", "")),
        "plan": str(getattr(ctx.plan, "Name", "")),
        "beam_set": str(bs.DicomPlanLabel),
        "examination": str(ctx.examination.Name),
    }
    uncertain = any(p.uncertainty_mm > 0 for p in prior_infos)
    fine = _fine_coverages(ss, structures, grid, protocol)
    return Gathered(ctx, PlanCase(grid, structures, sbrt, tuple(priors), fine), match, kinds, tuple(empty),
                    tuple(prior_infos), fractions, _prescription_gy(bs), array_digest(sbrt_gy), identity,
                    tuple(prior_objects),
                    PlanCase(grid, structures, sbrt, tuple(nominal), fine) if uncertain else None,
                    _gtvs(pm, ss, fraction_dose, grid, match),
                    tuple(_geometry_findings(ss, structures, grid, protocol)))
