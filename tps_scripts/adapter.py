"""The adapter: RayStation objects → the neutral model (read side).

One road into the packages (DESIGN §4): the dose grid geometry (cm → mm), ROI
fractional masks on the dose grid (``GetRoiGeometryAsVoxels``, 0–255 → 0–1), the
SBRT dose (cGy → Gy) with its fraction count, and the prior courses (evaluation
doses on the planning examination, Gy, with fraction counts from their names or the
configuration), resampled onto the SBRT dose grid where their grid differs.

Everything here only reads.  Writing back lives in :mod:`tps_scripts.writeback`.
Runs on CPython 3.8 with numpy only.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from constraints.dose_course import DoseCourse, fractions_from_name, total_from_name
from constraints.errors import InputError, TpsStateError
from constraints.grid import Grid
from constraints.structure import Structure

from .units import cgy_to_gy, cm_to_mm, mm_to_cm

if TYPE_CHECKING:  # imported where used: reading a dose or an ROI needs none of the protocol machinery
    from constraints.evaluation import PlanCase
    from constraints.geometry_checks import Finding
    from constraints.protocol import Protocol, RoiMatch
    from constraints.subvoxel_rule import FineCoverage

    from .config import PluginConfig

__all__ = ["get_api", "TpsContext", "current_context", "dose_grid", "read_dose_gy", "roi_mask",
           "PriorInfo", "find_prior_doses", "Gathered", "gather", "fractions_from_name", "array_digest",
           "roi_coverage_on", "roi_bounding_box_mm", "FoundPrior", "check_prior_total", "total_from_name",
           "PRIOR_MAX_TO_TOTAL", "GTV_ALIASES"]

ORGAN_KIND_FROM_TPS = {"Target": "target", "OrganAtRisk": "oar", "Other": "other", "Unknown": "other"}


def get_api() -> Any:
    """The scripting module: ``raystation`` (RayStation 2025+) or ``connect`` (earlier)."""
    try:
        import raystation as api  # noqa: F401
    except ImportError:
        try:
            import connect as api  # noqa: F401
        except ImportError:
            raise TpsStateError("no RayStation scripting module: run this script from RayStation's script "
                                "console (or load a mock_tps phantom first)") from None
    return api


@dataclass(frozen=True)
class TpsContext:
    """The current objects of the planning system."""

    patient: Any
    case: Any
    plan: Any
    beam_set: Any
    examination: Any


def _current(api: Any, kind: str, hint: str) -> Any:
    try:
        return api.get_current(kind)
    except SystemError:
        raise TpsStateError(f"no {kind.lower()} is loaded: {hint}") from None


def current_context(api: Any) -> TpsContext:
    """Patient, case, plan, beam set and planning examination that are current.

    Raises
    ------
    constraints.errors.TpsStateError
        Nothing loaded, or no plan/beam set selected.
    """
    hint = "open the patient and the re-irradiation SBRT plan (with its beam set) before running the script"
    patient = _current(api, "Patient", hint)
    case = _current(api, "Case", hint)
    plan = _current(api, "Plan", hint)
    beam_set = _current(api, "BeamSet", hint)
    exam = beam_set.GetPlanningExamination()
    return TpsContext(patient, case, plan, beam_set, exam)


def dose_grid(dose_distribution: Any) -> Grid:
    """The dose grid of a dose distribution as a :class:`Grid` (cm → mm).

    ``InDoseGrid.Corner`` is the outer corner of the first voxel (research §3).
    """
    g = dose_distribution.InDoseGrid
    corner = (cm_to_mm(g.Corner.x), cm_to_mm(g.Corner.y), cm_to_mm(g.Corner.z))
    spacing = (cm_to_mm(g.VoxelSize.x), cm_to_mm(g.VoxelSize.y), cm_to_mm(g.VoxelSize.z))
    shape = (int(g.NrVoxels.z), int(g.NrVoxels.y), int(g.NrVoxels.x))
    return Grid(corner, spacing, shape)


def read_dose_gy(dose_distribution: Any, what: str, grid: Optional[Grid] = None, *,
                 allow_unknown: bool = False) -> np.ndarray:
    """``DoseValues.DoseData`` (cGy) as Gy, shaped (nz, ny, nx).

    With ``allow_unknown`` NaN is accepted and means "unknown" (a mapped prior dose
    outside its source grid); infinities and negative values are always refused.

    Raises
    ------
    constraints.errors.TpsStateError
        No dose computed (``DoseValues`` is None).
    constraints.errors.InputError
        Wrong size, NaN or negative values.
    """
    values = dose_distribution.DoseValues
    if values is None:
        raise TpsStateError(f"{what} has no dose: compute the dose first")
    grid = grid or dose_grid(dose_distribution)
    data = np.asarray(values.DoseData, dtype=np.float64)
    if data.size != grid.n_voxels:
        raise InputError(f"{what}: DoseData has {data.size} values, its dose grid {grid.shape_zyx} needs {grid.n_voxels}")
    data = data.reshape(grid.shape_zyx)
    bad = np.isinf(data) if allow_unknown else ~np.isfinite(data)
    if bad.any():
        raise InputError(f"{what}: the dose contains {int(bad.sum())} non-finite value(s) (NaN/inf)")
    if np.nanmin(data) < 0 if np.isfinite(data).any() else False:
        raise InputError(f"{what}: the dose contains negative values (minimum {np.nanmin(data):g} cGy)")
    return cgy_to_gy(data)


def roi_mask(structure_set: Any, roi_name: str, dose_distribution: Any, grid: Grid) -> np.ndarray:
    """Fractional coverage (0–1) of an ROI on a dose grid, via ``GetRoiGeometryAsVoxels``
    (which returns 0–255 per voxel, x fastest)."""
    g = dose_distribution.InDoseGrid
    vox = structure_set.RoiGeometries[roi_name].GetRoiGeometryAsVoxels(
        Corner=g.Corner, VoxelSize=g.VoxelSize, NrVoxels=g.NrVoxels)
    return _coverage_of_voxels(vox, grid, f"ROI {roi_name!r}")


def roi_coverage_on(geometry: Any, grid: Grid, what: str) -> np.ndarray:
    """Fractional coverage (0–1) of an ROI geometry on any grid (mm), via
    ``GetRoiGeometryAsVoxels`` (corner, voxel size in cm; 0–255 per voxel, x fastest)."""
    nz, ny, nx = grid.shape_zyx
    vox = geometry.GetRoiGeometryAsVoxels(
        Corner={k: mm_to_cm(v) for k, v in zip("xyz", grid.corner_mm)},
        VoxelSize={k: mm_to_cm(v) for k, v in zip("xyz", grid.spacing_xyz_mm)},
        NrVoxels={"x": nx, "y": ny, "z": nz})
    return _coverage_of_voxels(vox, grid, what)


#: Coverage of each value of ``GetRoiGeometryAsVoxels`` (0–255 → 0–1): one table look-up per voxel.
_COVERAGE_OF_BYTE = np.arange(256, dtype=np.float64) / 255.0


def _coverage_of_voxels(vox: Any, grid: Grid, what: str) -> np.ndarray:
    """``GetRoiGeometryAsVoxels`` values (0–255, x fastest) as coverage in [0, 1], shaped (nz, ny, nx)."""
    arr = np.asarray(vox)
    if arr.size != grid.n_voxels:
        raise InputError(f"{what}: GetRoiGeometryAsVoxels gave {arr.size} values for {grid.n_voxels} voxels")
    if arr.dtype == np.uint8:
        return _COVERAGE_OF_BYTE.take(arr.reshape(grid.shape_zyx))
    return np.clip(arr.astype(np.float64).reshape(grid.shape_zyx) / 255.0, 0.0, 1.0)


def roi_bounding_box_mm(geometry: Any) -> Tuple[Tuple[float, float, float], Tuple[float, float, float]]:
    """``GetBoundingBox()`` as ((x, y, z) min, (x, y, z) max) in mm."""
    lo, hi = geometry.GetBoundingBox()
    return ((cm_to_mm(lo.x), cm_to_mm(lo.y), cm_to_mm(lo.z)), (cm_to_mm(hi.x), cm_to_mm(hi.y), cm_to_mm(hi.z)))


@dataclass(frozen=True)
class PriorInfo:
    """A prior course as found in the planning system."""

    name: str
    fractions: int
    recovery: Any               # float (every organ) or dict organ key -> float
    date: Optional[str]
    fractions_source: str      # "name" or "configuration"
    resampled: bool
    dose_digest: str
    assumed_voxels: int = 0     # voxels outside the prior grid given the organ's highest prior dose
    total_gy: Optional[float] = None        # stated total (name or configuration), Gy
    mapped_max_gy: Optional[float] = None   # maximum of the mapped dose, Gy
    uncertainty_mm: float = 0.0             # registration uncertainty radius, mm


def _evaluation_doses(case: Any, exam_name: str) -> List[Any]:
    found = []
    for fe in case.TreatmentDelivery.FractionEvaluations:
        for doe in fe.DoseOnExaminations:
            if doe.OnExamination.Name != exam_name:
                continue
            for de in doe.DoseEvaluations:
                found.append(de)
    return found


def _is_of_beam_set(dose: Any, beam_set: Any) -> bool:
    try:
        bs = dose.ForBeamSet
    except AttributeError:
        return False
    return bs is not None and getattr(bs, "DicomPlanLabel", None) == getattr(beam_set, "DicomPlanLabel", object())


#: A mapped prior dose's maximum must lie within these multiples of the course's stated total
#: (docs/decisions/prior-total-check.md): a conventional course peaks at 1.0-1.1 x its total, a
#: prior SBRT at up to 2 x (prescribed to the 50 % isodose); a per-fraction map of n >= 2
#: fractions peaks at <= hot spot / n x the total, below 0.9 for any hot spot up to 1.8.
PRIOR_MAX_TO_TOTAL = (0.9, 2.0)


@dataclass(frozen=True)
class FoundPrior:
    """A prior course among the evaluation doses, with what the name or configuration says of it."""

    dose: Any
    name: str
    fractions: int
    recovery: float
    date: Optional[str]
    fractions_source: str          # "name" or "configuration"
    total_gy: Optional[float]      # stated total (configuration, else name), Gy
    uncertainty_mm: float = 0.0


def find_prior_doses(ctx: TpsContext, config: PluginConfig) -> List[FoundPrior]:
    """Every prior course among the evaluation doses on the planning examination.

    Rule: every evaluation dose on the planning examination that is not a dose of
    the SBRT beam set is a prior course, unless the configuration excludes it by
    name (``exclude_doses``).  Without configured priors a course's fraction count
    and total are read from its name; with configured priors every such dose must
    be listed (a course left out would be silently dropped: the patient would look
    less irradiated than they are).

    Raises
    ------
    constraints.errors.InputError
        An evaluation dose without a name, or one that is neither a configured prior
        nor excluded, or an excluded/configured name that is not there.
    constraints.errors.TpsStateError
        A configured prior is not there, or a prior's fraction count is unknown.
    """
    exam = ctx.examination.Name
    doses = [d for d in _evaluation_doses(ctx.case, exam) if not _is_of_beam_set(d, ctx.beam_set)]
    unnamed = [d for d in doses if not str(getattr(d, "Name", "") or "").strip()]
    if unnamed:
        raise InputError(
            f"{len(unnamed)} evaluation dose(s) on examination {exam!r} have no name: reirrad cannot tell whether "
            "they are prior courses. Name each one like 'Prior EBRT 60Gy/30fx' (or list it under [[prior]]), "
            "or delete it if it is not a prior course; never assume it is none")
    names = [d.Name for d in doses]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"evaluation doses on examination {exam!r} share the name(s) {twice}: reirrad tells courses "
                         "apart by name. Give each evaluation dose its own name")
    named: Dict[str, Any] = {d.Name: d for d in doses}
    absent = [n for n in config.exclude_doses if n not in named]
    if absent:
        raise InputError(f"exclude_doses names {absent}, not among the evaluation doses on examination {exam!r}; "
                         f"found: {sorted(named)}")
    candidates = {n: d for n, d in named.items() if n not in set(config.exclude_doses)}
    out: List[FoundPrior] = []
    if config.priors:
        for p in config.priors:
            if p.name not in named:
                raise TpsStateError(
                    f"configured prior course {p.name!r} is not among the evaluation doses on examination "
                    f"{exam!r}; found: {sorted(named)}")
        listed = {p.name for p in config.priors}
        left = sorted(n for n in candidates if n not in listed)
        if left:
            raise InputError(
                f"evaluation dose(s) {left} on examination {exam!r} are neither configured prior courses nor "
                "excluded: every course the patient had counts. List each under [[prior]] in the configuration, "
                "or under exclude_doses if it is not a prior course (e.g. a sum or a copy of the SBRT dose)")
        for p in config.priors:
            out.append(FoundPrior(named[p.name], p.name, p.fractions, p.recovery,
                                  p.date.isoformat() if p.date else None, "configuration",
                                  p.total_gy if p.total_gy is not None else total_from_name(p.name),
                                  p.uncertainty_mm))
        return out
    for name, dose in candidates.items():
        fx = fractions_from_name(name)
        if fx is None:
            raise TpsStateError(
                f"the fraction count of evaluation dose {name!r} is unknown: RayStation does not store it for a "
                "mapped dose; name it like 'Prior 60Gy/30fx' or list it under [[prior]] in the configuration")
        out.append(FoundPrior(dose, name, fx, 0.0, None, "name", total_from_name(name)))
    return out


def check_prior_total(name: str, dose_gy: np.ndarray, total_gy: Optional[float], fractions: int) -> float:
    """Check a mapped prior dose's maximum against the course's stated total.

    Returns the maximum (Gy, over the known voxels).

    Raises
    ------
    constraints.errors.InputError
        No total stated, or the maximum outside :data:`PRIOR_MAX_TO_TOTAL` × total
        (a per-fraction map, a map of another quantity, or the wrong course).
    """
    known = dose_gy[np.isfinite(dose_gy)]
    dmax = float(known.max()) if known.size else 0.0
    if total_gy is None:
        raise InputError(
            f"prior course {name!r}: its total dose is not stated, so its mapped dose cannot be checked; name it "
            "like 'Prior EBRT 60Gy/30fx' or give total_gy under its [[prior]] in the configuration")
    lo, hi = PRIOR_MAX_TO_TOTAL
    if not lo * total_gy <= dmax <= hi * total_gy:
        per_fraction = abs(dmax - total_gy / fractions) <= 0.5 * total_gy / fractions if fractions > 1 else False
        raise InputError(
            f"prior course {name!r}: the mapped dose's maximum {dmax:.2f} Gy is {dmax / total_gy:.2f} x its stated "
            f"total {total_gy:g} Gy, outside [{lo:g}, {hi:g}] x"
            + (f" (it looks like one fraction of {fractions})" if per_fraction else "")
            + ": map the course's total physical dose (Gy) onto the planning CT, or correct the total in its name "
              "or configuration")
    return dmax


def _handle_unknown_prior(dose_gy: np.ndarray, name: str, structures: Dict[str, Structure],
                          policy: str) -> Tuple[np.ndarray, int]:
    """Apply the unknown-prior policy to a resampled prior dose (NaN outside its grid).

    ``refuse``: any organ voxel outside the prior grid is an error naming the ROI.
    ``organ_max``: such voxels get the highest known prior dose of that organ (the
    highest over all organs containing the voxel); voxels in no organ stay unknown.
    """
    unknown = np.isnan(dose_gy)
    if not unknown.any():
        return dose_gy, 0
    out = dose_gy.copy()
    filled = np.zeros(dose_gy.shape, dtype=bool)
    for s in structures.values():
        inside = s.mask > 0
        hole = unknown & inside
        if not hole.any():
            continue
        if policy == "refuse":
            raise TpsStateError(
                f"prior course {name!r} does not cover ROI {s.name!r}: {int(hole.sum())} of its voxels lie outside "
                "the prior dose grid. Map the prior dose on a larger grid, or set unknown_prior = 'organ_max' in the "
                "configuration to assume the organ's highest prior dose there (never zero)")
        known = dose_gy[inside & ~unknown]
        if known.size == 0:
            raise TpsStateError(f"prior course {name!r} does not reach ROI {s.name!r} at all: its dose there is unknown")
        value = float(known.max())
        out[hole] = np.where(filled[hole], np.maximum(out[hole], value), value)
        filled |= hole
    return out, int(filled.sum())


def array_digest(values: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of an array's float64 bytes: identifies a dose in records."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


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
    from constraints.subvoxel_rule import FineCoverage, fine_box

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
    from constraints.geometry_checks import overlap_findings, prv_margin_findings
    from constraints.subvoxel_rule import fine_box

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
    from constraints.evaluation import PlanCase
    from constraints.morphology import max_over_sphere
    from constraints.protocol import match_roi_names
    from constraints.resample import resample_to_grid

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
        pdose, assumed = _handle_unknown_prior(pdose, name, structures, config.unknown_prior)
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
