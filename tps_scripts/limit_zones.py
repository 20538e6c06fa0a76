"""Creating limit zones in the planning system (see :mod:`optimizer.zones` for the idea).

For each organ with per-voxel limits: bands of the banding dose (one prior course's
mapped dose; with several courses the course with the highest prior BED in the
organ) become ``rr_`` ROIs via ``CreateRoiGeometryFromDose`` and ``CreateAlgebraGeometry``
(organ ∩ {dose ≥ t_k} − {dose ≥ t_k+1} − hot region); the zones are read back on the
dose grid (``GetRoiGeometryAsVoxels``) and each gets the lowest exact limit of its
voxels.  Temporary threshold ROIs are deleted again within the same run.

RayStation versions: ``CreateRoiGeometryFromDose``, ``CreateAlgebraGeometry``,
``GetRoiGeometryAsVoxels`` and ``GetUniqueRoiName`` are used by public scripts from
RayStation 8B to 2024B; nothing here needs ``SetDoseValues``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from constraints.evaluation import PlanCase
from constraints.grid import Grid
from constraints.lq import bed_unchecked as _bed
from constraints.protocol import Protocol
from optimizer.organ_limits import OrganLimits
from optimizer.zones import band_thresholds, hot_region_margin_mm

from .adapter import roi_mask
from .writeback import create_algebra_roi, create_dose_threshold_roi, step

__all__ = ["Zone", "build_zones"]

#: Default ROI colours of reirrad's zones.
_HOT_COLOR = "Magenta"
_BAND_COLOR = "Orange"


@dataclass
class Zone:
    """One region of an organ with one MaxDose level (mutable: the tuning loop moves margins).

    ``limit_gy`` is the exact per-voxel limit map that applies in the zone (strict,
    or relaxed in a hot region); ``coverage`` the zone's fractional mask on the dose grid.
    """

    organ: str
    roi_name: str
    kind: str                      # 'whole', 'band', 'hot' or 'cap' (the relaxed limit on a band's ROI)
    coverage: np.ndarray
    limit_gy: np.ndarray
    margin_gy: float
    created: bool                  # True when reirrad made the ROI (rr_), False for the user's ROI
    function: Any = None
    history: List[float] = field(default_factory=list)
    soft: bool = False             # True when the zone's MaxDose is an objective, not a constraint
    dvh_percent: Optional[float] = None   # set: a MaxDvh constraint exempting this % of the zone
    exempt_cc: Optional[float] = None     # set: this volume of the zone may exceed the strict level (MaxDvh)

    @property
    def key(self) -> str:
        """The zone's name in logs and records: its ROI, with ``(cap)`` for the cap on an exempting zone's ROI."""
        return self.roi_name + (" (cap)" if self.kind == "cap" else "")

    @property
    def volume_cc_voxels(self) -> float:
        return float(self.coverage.sum())

    def lowest_limit_gy(self) -> float:
        """Lowest exact limit among the zone's voxels."""
        return float(self.limit_gy[self.coverage > 0].min())

    def level_gy(self) -> float:
        """Lowest exact limit among the zone's voxels minus the margin (≥ 0)."""
        return max(self.lowest_limit_gy() - self.margin_gy, 0.0)

    def excess_gy(self, dose_gy: np.ndarray) -> float:
        """max(dose − limit) over the zone's voxels (negative = slack)."""
        inside = self.coverage > 0
        return float((dose_gy - self.limit_gy)[inside].max())


def _banding_course(case: PlanCase, structure_mask: np.ndarray, alpha_beta_gy: float) -> Optional[int]:
    if not case.priors:
        return None
    inside = structure_mask > 0
    best, best_bed = 0, -1.0
    for i, p in enumerate(case.priors):
        d = p.dose_gy[inside]
        d = d[np.isfinite(d)]
        b = float(_bed(d, p.fractions, alpha_beta_gy).max()) if d.size else 0.0
        if b > best_bed:
            best, best_bed = i, b
    return best


def build_zones(api_ctx: Any, pm: Any, examination: Any, dose_distribution: Any, grid: Grid, case: PlanCase,
                protocol: Protocol, limits: Dict[str, OrganLimits], prior_dose_objects: Sequence[Any], *,
                margin_gy: float, band_width_gy: float = 1.0, max_bands: int = 5,
                hot_budget_fraction: float = 0.9) -> List[Zone]:
    """Create the zones of every organ in the TPS and return them (call inside a CompositeAction).

    Parameters
    ----------
    dose_distribution : TPS dose
        A dose on the SBRT dose grid, used to read zones back (its ``InDoseGrid``).
    prior_dose_objects : sequence of TPS evaluation doses
        The prior courses in the order of ``case.priors``.
    """
    ss = pm.StructureSets[examination.Name]
    target_key = protocol.prescription.target
    target_roi = case.structures[target_key].name
    target_mask = case.structures[target_key].mask
    zones: List[Zone] = []
    for organ_key, ol in limits.items():
        organ = protocol.organs[organ_key]
        base_roi = case.structures[organ_key].name
        if organ.exclude_target_margin_mm is not None:
            targets = [s.name for k, s in case.structures.items() if protocol.organs[k].kind == "target"]
            with step(f"create {organ.display_name} region (external minus targets + margin)"):
                roi = create_algebra_roi(pm, f"rr_{organ_key}", examination, [base_roi], b_rois=targets,
                                         b_expand_mm=organ.exclude_target_margin_mm, result="Subtraction")
            cov = roi_mask(ss, roi.Name, dose_distribution, grid)
            if cov.any():
                zones.append(Zone(organ_key, roi.Name, "whole", cov, ol.strict_gy, margin_gy, True))
            continue
        organ_mask = case.structures[organ_key].mask
        # hot region near the target, where the largest-volume cumulative limit is exempted
        hot_name = None
        hot_cov = None
        if ol.relaxed_gy is not None and ol.hot_budget_cc:
            margin_mm = hot_region_margin_mm(organ_mask, target_mask, grid, ol.hot_budget_cc * hot_budget_fraction)
            if margin_mm is not None:
                with step(f"create hot region of {base_roi}"):
                    roi = create_algebra_roi(pm, f"rr_{base_roi}_hot", examination, [base_roi],
                                             b_rois=[target_roi], b_expand_mm=margin_mm, result="Intersection",
                                             color=_HOT_COLOR)
                cov = roi_mask(ss, roi.Name, dose_distribution, grid)
                exempt_cc = float(organ_mask[cov > 0].sum()) * grid.voxel_volume_cc   # organ volume touched
                if cov.any() and exempt_cc <= ol.hot_budget_cc * hot_budget_fraction:
                    hot_name, hot_cov = roi.Name, cov
                    zones.append(Zone(organ_key, roi.Name, "hot", cov, ol.relaxed_gy, margin_gy, True))
                else:
                    with step(f"delete unusable hot region {roi.Name}"):
                        roi.DeleteRoi()
        course = _banding_course(case, organ_mask, organ.alpha_beta_gy)
        thresholds: Tuple[float, ...] = ()
        if course is not None:
            band_values = np.nan_to_num(case.priors[course].dose_gy, nan=0.0)
            region = organ_mask if hot_cov is None else organ_mask * (hot_cov <= 0)
            if region.any():
                thresholds = band_thresholds(band_values, ol.strict_gy, region, band_width_gy=band_width_gy,
                                             max_bands=max_bands)
        if not thresholds and hot_name is None:
            zones.append(Zone(organ_key, base_roi, "whole", organ_mask, ol.strict_gy, margin_gy, False))
            continue
        tmp = []
        with step(f"create prior-dose threshold ROIs of {base_roi}"):
            for k, t in enumerate(thresholds):
                tmp.append(create_dose_threshold_roi(pm, f"rr_tmp_{base_roi}_{k + 1}", prior_dose_objects[course], t))
        edges = [None] + [r.Name for r in tmp]
        for k in range(len(edges)):
            a_rois = [base_roi] + ([edges[k]] if edges[k] else [])
            b_rois = ([edges[k + 1]] if k + 1 < len(edges) else []) + ([hot_name] if hot_name else [])
            desc = (f"{thresholds[k - 1]:.1f}" if k else "0") + "-" + (f"{thresholds[k]:.1f}" if k < len(thresholds)
                                                                      else "max") + " Gy prior"
            with step(f"create zone {k + 1} ({desc}) of {base_roi}"):
                roi = create_algebra_roi(pm, f"rr_{base_roi}_z{k + 1}", examination, a_rois,
                                         a_operation="Intersection", b_rois=b_rois,
                                         result="Subtraction" if b_rois else "None", color=_BAND_COLOR)
            cov = roi_mask(ss, roi.Name, dose_distribution, grid)
            if cov.any():
                zones.append(Zone(organ_key, roi.Name, "band", cov, ol.strict_gy, margin_gy, True))
            else:
                with step(f"delete empty zone {roi.Name}"):
                    roi.DeleteRoi()
        with step(f"delete temporary threshold ROIs of {base_roi}"):
            for r in tmp:
                r.DeleteRoi()
    return zones
