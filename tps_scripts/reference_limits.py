"""Exact per-voxel limits as reference doses, where the planning system has them.

RayStation 2025 can write a dose of the script's own (``case.AddCustomEvaluationDose``,
a fraction dose in cGy) and hold an organ under it voxel by voxel
(``AddReferenceOptimizationFunction(FunctionType='MaxRefDose', ReferenceDoseDistribution=...,
IsConstraint=True)``; see ``mock_tps/API_VERSIONS.md``).  Asked for
(``TuningSettings.reference_doses``), the exact SBRT-only limit map of each organ without a
volume budget (:func:`spends_volume`; :func:`optimizer.organ_limits.organ_limits`) enters the
optimization as it is, with no quantization into zones: the reference dose ``rr_ref_<ROI>``
holds, per voxel, the limit minus the margin the loop tunes.  Off by default: zones covered
PTVeval as well or better (docs/decisions/closed-loop-settings.md).

The returned objects are :class:`ReferenceZone` s, one per organ, which the tuning loop of
:mod:`tps_scripts.optimize` drives like zones: ``level_gy()`` is the lowest reference in
the organ, ``excess_gy()`` the largest dose − limit, and :func:`set_zone_level` rewrites
the reference dose (``SetDoseValues``) where a zone's MaxDose level would be changed.

Rules
-----
* The limit map is ``strict_gy``; in the hot region of an organ with a volume
  constraint (``organ ∩ (target + margin)``, the same region and budget as the zones',
  :func:`optimizer.zones.hot_region_margin_mm`) it is ``relaxed_gy``.
* A voxel without a finite limit gets ``max(2 × Rx, largest finite limit of the organ)``:
  RayStation needs a finite dose, and no plan of the loop reaches twice the prescription.
* The TPS may count more voxels in an ROI than the organ mask the protocol is evaluated on
  (partial voxels at the edge).  Such a voxel gets the lowest limit of the organ voxels
  among its 26 neighbours, or the organ's lowest limit when none is a neighbour: never
  more than the organ allows next to it, never 0 where nothing asks for 0 (a 0 Gy
  reference holds every beamlet through the voxel at zero).
* Only ``rr_`` objects are made (evaluation doses ``rr_ref_*``, the external region
  ``rr_<organ>``); the user's ROIs are used as they are, nothing of the user's is changed.

Numpy only (CPython 3.8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np

from constraints.errors import TpsStateError
from constraints.evaluation import PlanCase
from constraints.grid import Grid
from constraints.morphology import dilate_mm
from constraints.protocol import Protocol
from optimizer.organ_limits import OrganLimits
from optimizer.zones import hot_region_margin_mm

from .adapter import roi_mask
from .limit_zones import Zone
from .units import gy_to_cgy
from .writeback import PREFIX, add_function, create_algebra_roi, set_dose_level, step

__all__ = ["ReferenceZone", "has_reference_functions", "build_reference_limits", "add_zone_constraint",
           "set_zone_level", "reference_map_gy", "extend_limit_gy", "spends_volume"]

#: A voxel without a finite limit gets at least this multiple of the prescription.
NO_LIMIT_RX_FACTOR = 2.0


def has_reference_functions(case: Any, plan_optimization: Any) -> bool:
    """True when the planning system can write a dose and optimize against it per voxel
    (``AddCustomEvaluationDose`` and ``AddReferenceOptimizationFunction``, RayStation 2025)."""
    return hasattr(case, "AddCustomEvaluationDose") and hasattr(plan_optimization, "AddReferenceOptimizationFunction")


@dataclass
class ReferenceZone(Zone):
    """One organ held under its exact per-voxel limits by a MaxRefDose constraint.

    ``limit_gy`` is the organ's limit map (Gy, total); ``reference_dose`` the TPS
    evaluation dose that holds ``limit − margin`` per voxel; ``fractions`` the SBRT
    fraction count (the reference is a fraction dose).
    """

    reference_dose: Any = None
    fractions: int = 1

    def reference_gy(self) -> np.ndarray:
        """Reference total dose per voxel (Gy): ``max(limit − margin, 0)``, the limit extended
        beyond the organ mask by :func:`extend_limit_gy`."""
        return np.maximum(extend_limit_gy(self.limit_gy, self.coverage > 0) - self.margin_gy, 0.0)

    def write_reference(self) -> None:
        """Store :meth:`reference_gy` in the TPS dose (cGy per fraction, x fastest)."""
        values = gy_to_cgy(self.reference_gy() / float(self.fractions)).ravel()
        self.reference_dose.SetDoseValues(Dose=values)


def spends_volume(ol: OrganLimits) -> bool:
    """Whether an organ has a volume budget above its strict limits (a D1cc-type cumulative
    limit looser than its Dmax): such an organ gets zones, which can spend that volume
    (:mod:`tps_scripts.volume_exemption`), where a MaxRefDose holds every voxel under the map
    (docs/decisions/closed-loop-settings.md)."""
    return ol.relaxed_gy is not None and bool(ol.hot_budget_cc)


def reference_map_gy(ol: OrganLimits, coverage: np.ndarray, hot: Any, rx_gy: float) -> np.ndarray:
    """The organ's limit map (Gy): ``strict_gy``, ``relaxed_gy`` where ``hot``, and non-finite
    limits inside the organ replaced by ``max(2 Rx, largest finite limit)``."""
    limit = np.array(ol.strict_gy, dtype=np.float64)
    if hot is not None:
        limit = np.where(hot, np.asarray(ol.relaxed_gy, dtype=np.float64), limit)
    inside = coverage > 0
    finite = np.isfinite(limit) & inside
    ceiling = max(NO_LIMIT_RX_FACTOR * rx_gy, float(limit[finite].max()) if finite.any() else 0.0)
    return np.where(np.isfinite(limit), limit, ceiling)


def extend_limit_gy(limit_gy: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``limit_gy`` inside; outside, the lowest limit of the inside voxels among the 26
    neighbours, else the lowest limit inside (Gy)."""
    limit = np.asarray(limit_gy, dtype=np.float64)
    inside = np.asarray(inside, dtype=bool)
    lowest = float(limit[inside].min()) if inside.any() else 0.0
    masked = np.pad(np.where(inside, limit, np.inf), 1, constant_values=np.inf)
    near = np.full(limit.shape, np.inf)
    nz, ny, nx = limit.shape
    for dz in (0, 1, 2):
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                near = np.minimum(near, masked[dz:dz + nz, dy:dy + ny, dx:dx + nx])
    return np.where(inside, limit, np.where(np.isfinite(near), near, lowest))


def _hot_region(ol: OrganLimits, organ_mask: np.ndarray, target_mask: np.ndarray, grid: Grid,
                hot_budget_fraction: float) -> Any:
    """Boolean hot region (organ voxels near the target whose volume stays in budget), or None."""
    if ol.relaxed_gy is None or not ol.hot_budget_cc:
        return None
    budget = ol.hot_budget_cc * hot_budget_fraction
    margin_mm = hot_region_margin_mm(organ_mask, target_mask, grid, budget)
    if margin_mm is None:
        return None
    region = (organ_mask > 0) & dilate_mm(target_mask >= 0.5, grid, margin_mm)
    touched_cc = float(organ_mask[region].sum()) * grid.voxel_volume_cc
    return region if region.any() and touched_cc <= budget else None


def _unique_dose_name(case: Any, examination_name: str, desired: str) -> str:
    taken = set()
    for fe in case.TreatmentDelivery.FractionEvaluations:
        for doe in fe.DoseOnExaminations:
            if doe.OnExamination.Name == examination_name:
                taken |= {str(d.Name).casefold() for d in doe.DoseEvaluations}
    name, n = desired, 1
    while name.casefold() in taken:
        name = f"{desired} ({n})"
        n += 1
    return name


def _find_dose(case: Any, examination_name: str, name: str) -> Any:
    for fe in case.TreatmentDelivery.FractionEvaluations:
        for doe in fe.DoseOnExaminations:
            if doe.OnExamination.Name == examination_name:
                for d in doe.DoseEvaluations:
                    if d.Name == name:
                        return d
    raise TpsStateError(f"the reference dose {name!r} just added is not among the evaluation doses on examination "
                        f"{examination_name!r}: reirrad cannot refer a MaxRefDose constraint to it")


def _add_reference_dose(api_ctx: Any, examination: Any, beam_set: Any, name: str, values_cgy: np.ndarray) -> Any:
    g = beam_set.FractionDose.InDoseGrid
    api_ctx.case.AddCustomEvaluationDose(
        Name=name, ExaminationName=examination.Name, ReferencedBeamSet=beam_set,
        DoseGridNumberOfVoxels=g.NrVoxels, DoseGridVoxelSize=g.VoxelSize, DoseGridCorner=g.Corner,
        FractionDoseValues=values_cgy, IsRbeDose=False)
    return _find_dose(api_ctx.case, examination.Name, name)


def build_reference_limits(api_ctx: Any, pm: Any, examination: Any, dose_distribution: Any, grid: Grid,
                           case: PlanCase, protocol: Protocol, limits: Dict[str, OrganLimits],
                           prior_dose_objects: Sequence[Any], *, margin_gy: float,
                           hot_budget_fraction: float = 0.9) -> List[ReferenceZone]:
    """Write every organ's limit map as a reference dose and constrain the organ under it.

    Same arguments as :func:`tps_scripts.limit_zones.build_zones` (call inside a
    CompositeAction); ``dose_distribution`` is the optimized beam set's ``FractionDose``,
    whose ``ForBeamSet`` the reference doses refer to.  ``prior_dose_objects`` is not
    needed (the limits already hold the prior courses).  The MaxRefDose constraints are
    added by :func:`add_zone_constraint`.

    Raises
    ------
    constraints.errors.TpsStateError
        A write step failed (:class:`tps_scripts.writeback.WriteStepError`, naming it).
    """
    del prior_dose_objects
    beam_set = dose_distribution.ForBeamSet
    fractions = int(beam_set.FractionationPattern.NumberOfFractions)
    rx = protocol.prescription.dose_gy
    ss = pm.StructureSets[examination.Name]
    target_mask = case.structures[protocol.prescription.target].mask
    zones: List[ReferenceZone] = []
    for organ_key, ol in limits.items():
        organ = protocol.organs[organ_key]
        roi_name = case.structures[organ_key].name
        coverage = case.structures[organ_key].mask
        created = False
        hot = None
        if organ.exclude_target_margin_mm is not None:
            targets = [s.name for k, s in case.structures.items() if protocol.organs[k].kind == "target"]
            with step(f"create {organ.display_name} region (external minus targets + margin)"):
                roi = create_algebra_roi(pm, f"{PREFIX}{organ_key}", examination, [roi_name], b_rois=targets,
                                         b_expand_mm=organ.exclude_target_margin_mm, result="Subtraction")
            roi_name, coverage, created = roi.Name, roi_mask(ss, roi.Name, dose_distribution, grid), True
            if not coverage.any():
                continue
        else:
            hot = _hot_region(ol, coverage, target_mask, grid, hot_budget_fraction)
        zone = ReferenceZone(organ_key, roi_name, "reference", coverage, reference_map_gy(ol, coverage, hot, rx),
                             margin_gy, created, fractions=fractions)
        name = _unique_dose_name(api_ctx.case, examination.Name, f"{PREFIX}ref_{roi_name}")
        with step(f"write the exact limits of {roi_name} as reference dose {name!r}"):
            values = gy_to_cgy(zone.reference_gy() / float(fractions)).ravel()
            zone.reference_dose = _add_reference_dose(api_ctx, examination, beam_set, name, values)
        zones.append(zone)
    return zones


def add_zone_constraint(po: Any, zone: Zone) -> Any:
    """The constraint of a zone: MaxRefDose on its reference dose, or MaxDose at its level."""
    if isinstance(zone, ReferenceZone):
        return po.AddReferenceOptimizationFunction(
            FunctionType="MaxRefDose", ReferenceDoseDistribution=zone.reference_dose, RoiName=zone.roi_name,
            IsConstraint=True, RestrictAllBeamsIndividually=False, RestrictToBeams=None, IsRobust=False,
            RestrictToBeamSet=None, UseRbeDose=False)
    return add_function(po, "MaxDose", zone.roi_name, dose_level_gy=zone.level_gy(), is_constraint=True)


def set_zone_level(zone: Zone) -> None:
    """Apply a zone's current margin: rewrite its reference dose, or set its function's level
    (and an exempting zone's MaxDvh volume)."""
    if isinstance(zone, ReferenceZone):
        zone.write_reference()
        return
    set_dose_level(zone.function, zone.level_gy())
    if zone.exempt_cc is not None:
        zone.function.DoseFunctionParameters.PercentVolume = float(zone.dvh_percent)
