"""How the limit zones enter the optimization, and how their levels move between runs.

Each zone (:class:`~tps_scripts.limit_zones.Zone`) is one constraint at its level (the
lowest exact limit in the zone − its margin): a MaxDose; a MaxDvh exempting the metric's
volume where the organ's limits are all near-maximum metrics (D0.035cc, D1cc, Dx%); a
MaxRefDose on a reference dose (:mod:`tps_scripts.reference_limits`); or, if asked, a MaxDose
objective on the unspecified tissue.  Between runs the loop moves the margins:

* a limit fails: a zone whose dose reaches its exact limit is lowered by its excess
  (+ 0.1 Gy); one whose organ fails by the sub-voxel rule alone, by twice that excess; a
  MaxDvh zone or an objective only when its organ fails, by the higher DVH rule's excess
  (twice it for an objective) (:func:`tighten_failing_zones`);
* after every run: each zone's margin covers the gap by which the sub-voxel rule reads its
  organ above the voxel rule (:func:`cover_subvoxel_gaps`);
* optionally, after a passing run: the binding zones' margins are halved
  (:func:`relax_binding_zones`).

A margin raised on a DVH rule's reading of the organ (not on the zone's own voxel excess)
becomes the zone's floor: relaxing below it would undo what a run showed is needed.
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

from .limit_zones import Zone
from .reference_limits import ReferenceZone, add_zone_constraint
from .tuning_settings import TuningSettings
from .writeback import add_function, step

__all__ = ["add_zone_functions", "exempt_percent", "near_max_percent", "worst_margins", "subvoxel_excess",
           "cumulative_excess", "metric_excess",
           "subvoxel_gap", "tighten_failing_zones", "cover_subvoxel_gaps", "relax_binding_zones"]


def add_zone_functions(po: Any, zones: List[Zone], case: PlanCase, protocol: Protocol, s: TuningSettings) -> None:
    """Add each zone's function at its level (MaxDvh, MaxDose or MaxRefDose constraint, or a
    MaxDose objective), set ``soft``, ``dvh_percent`` and ``function`` on the zone and start its
    level history."""
    for z in zones:
        if z.exempt_cc is not None:
            z.dvh_percent = exempt_percent(z, case)
            with step(f"add MaxDvh constraint on {z.roi_name} ({z.exempt_cc:.3g} cc above the strict level)"):
                z.function = add_function(po, "MaxDvh", z.roi_name, dose_level_gy=z.level_gy(), is_constraint=True,
                                          percent_volume=z.dvh_percent)
            z.history.append(z.level_gy())
            continue
        reference = isinstance(z, ReferenceZone)
        soft = z.soft = s.external_zone_weight > 0 and protocol.organs[z.organ].kind == "external" and not reference
        z.dvh_percent = None if soft or reference or not s.near_max_as_dvh else near_max_percent(
            z, zones, case, protocol, s.near_max_volume_factor)
        if z.dvh_percent is not None:
            with step(f"add MaxDvh constraint on {z.roi_name} ({z.dvh_percent:.3g} %)"):
                z.function = add_function(po, "MaxDvh", z.roi_name, dose_level_gy=z.level_gy(), is_constraint=True,
                                          percent_volume=z.dvh_percent)
            z.history.append(z.level_gy())
            continue
        with step(f"add {'MaxDose objective' if soft else 'constraint'} on {z.roi_name}"):
            z.function = add_function(po, "MaxDose", z.roi_name, dose_level_gy=z.level_gy(), is_constraint=False,
                                      weight=s.external_zone_weight) if soft else add_zone_constraint(po, z)
        z.history.append(z.level_gy())


def exempt_percent(zone: Zone, case: PlanCase) -> float:
    """The MaxDvh volume (% of the zone's in-grid volume) of an exempting zone's ``exempt_cc``."""
    return 100.0 * zone.exempt_cc / (zone.volume_cc_voxels * case.grid.voxel_volume_cc)


def near_max_percent(zone: Zone, zones: List[Zone], case: PlanCase, protocol: Protocol,
                     volume_factor: float = 1.0) -> Optional[float]:
    """The MaxDvh volume (% of ``zone``'s in-grid volume) that stands for its organ's near-maximum
    limits, or None when the zone needs a MaxDose: a true maximum (Dmax) or a V-dose limit
    among the organ's binding constraints, a Dmax among its advisory ones, a limit read from a
    table at the prior dose (the cord), or the organ split over several zones (a volume
    exempted in each zone would add up over the organ).

    The volume is the smallest of the organ's d_cc (cc) and d_percent (% of the organ's
    volume, in cc) metrics; e.g. D0.035cc in a 250 cc zone: 100 × 0.035 / 250 = 0.014 %.
    """
    if sum(1 for z in zones if z.organ == zone.organ) != 1:
        return None
    zone_cc = zone.volume_cc_voxels * case.grid.voxel_volume_cc
    volumes = []
    for c in protocol.constraints_for(zone.organ):
        if c.metric.kind == "max" or c.limit_table is not None:
            return None       # a point maximum, even advisory, or a limit read at the prior dose (cord)
        if c.advisory:
            continue
        if c.metric.kind == "d_cc":
            volumes.append(float(c.metric.parameter))
        elif c.metric.kind == "d_percent":
            volumes.append(float(c.metric.parameter) / 100.0 * zone_cc)
        else:
            return None
    if not volumes or zone_cc <= 0:
        return None
    percent = 100.0 * volume_factor * min(volumes) / zone_cc
    return percent if percent < 100.0 else None


def worst_margins(ev) -> Dict[str, float]:
    """Per ROI (or organ), the smallest margin (Gy) of its non-advisory protocol results."""
    out: Dict[str, float] = {}
    for r in ev.results:
        if r.advisory or r.margin is None:
            continue
        key = r.roi_name or r.organ
        out[key] = min(out.get(key, np.inf), r.margin)
    return out


def subvoxel_excess(ev) -> Dict[str, float]:
    """Per organ, how far the sub-voxel rule's value of a failing SBRT-only physical limit lies above it (Gy):
    the voxel doses a zone sees may all be below its level while the sub-voxel reading fails."""
    out: Dict[str, float] = {}
    for r in ev.failures():
        if r.domain == "sbrt_physical" and r.value_subvoxel is not None and r.limit is not None:
            out[r.organ] = max(out.get(r.organ, 0.0), r.value_subvoxel - r.limit)
    return out


def cumulative_excess(ev, protocol: Protocol, fractions: int, dose_gy: np.ndarray,
                      structures: Dict[str, Any]) -> Dict[str, float]:
    """Per organ, how far a failing cumulative limit's higher DVH reading lies above it, as new
    physical dose (Gy): the BED excess (an EQD2 one × (1 + 2/(α/β))) over the slope of the new
    course's BED at the organ's highest new dose d (``dose_gy`` in its ``structures[organ].mask``),
    1 + 2d/(n α/β) (BED = d (1 + d/(n α/β))).

    E.g. 5 Gy BED over at d = 19 Gy in 2 fractions, α/β 3 Gy: 5 / (1 + 38/6) = 0.68 Gy."""
    out: Dict[str, float] = {}
    for r in ev.failures():
        if not r.domain.is_cumulative or r.limit is None or r.value is None or r.organ not in protocol.organs:
            continue
        ab = protocol.organs[r.organ].alpha_beta_gy
        read = max(r.value, r.value_subvoxel if r.value_subvoxel is not None else r.value)
        excess_bed = (read - r.limit) * (1.0 + 2.0 / ab if r.domain.quantity == "eqd2" else 1.0)
        inside = np.asarray(structures[r.organ].mask) > 0 if r.organ in structures else None
        dmax_gy = float(dose_gy[inside].max()) if inside is not None and inside.any() else 0.0
        slope = 1.0 + 2.0 * dmax_gy / (fractions * ab)
        if excess_bed > 0:
            out[r.organ] = max(out.get(r.organ, 0.0), excess_bed / slope)
    return out


def metric_excess(ev) -> Dict[str, float]:
    """Per organ, how far the higher of the two DVH rules' readings of a failing SBRT-only
    physical limit lies above it (Gy)."""
    out: Dict[str, float] = {}
    for r in ev.failures():
        if r.domain == "sbrt_physical" and r.limit is not None and r.value is not None:
            read = max(r.value, r.value_subvoxel if r.value_subvoxel is not None else r.value)
            out[r.organ] = max(out.get(r.organ, 0.0), read - r.limit)
    return out


def subvoxel_gap(ev) -> Dict[str, float]:
    """Per organ, how far the sub-voxel rule reads an SBRT-only physical metric above the voxel
    rule (Gy, ≥ 0), passing or not: the part of a zone's margin the voxel levels cannot see."""
    out: Dict[str, float] = {}
    for r in ev.results:
        if r.domain == "sbrt_physical" and r.value_subvoxel is not None and r.value is not None:
            out[r.organ] = max(out.get(r.organ, 0.0), r.value_subvoxel - r.value)
    return out


class _Tightening(NamedTuple):
    margin_gy: float      # added to the zone's margin (Gy)
    is_floor: bool        # the new margin becomes the zone's floor
    note: str             # for the tuning log


def _tightening(z: Zone, entry: Dict[str, Any], s: TuningSettings) -> Optional[_Tightening]:
    """How far a failing run lowers zone ``z`` (None: not at all).  ``entry`` is the run's
    tuning-log entry (its zone excess and the readings of the evaluation, Gy)."""
    if z.exempt_cc is not None:                   # its organ spent more than the exempted volume
        if z.organ not in entry.get("exemption_failures", ()):
            return None
        z.exempt_cc *= s.exempt_shrink_factor
        z.dvh_percent *= s.exempt_shrink_factor
        return _Tightening(s.tighten_extra_gy, True, f" (exempt {z.exempt_cc:.3g} cc)")
    if z.soft or z.dvh_percent is not None:       # lowered only when its organ fails
        if z.organ not in entry["metric_excess_gy"]:
            return None
        factor = s.subvoxel_tighten_factor if z.soft else s.near_max_tighten_factor
        return _Tightening(factor * entry["metric_excess_gy"][z.organ] + s.tighten_extra_gy, True,
                           " (objective)" if z.soft else " (MaxDvh)")
    if entry["zone_excess_gy"][z.key] > -0.02:      # a zone voxel within 0.02 Gy of its exact limit
        return _Tightening(entry["zone_excess_gy"][z.key] + s.tighten_extra_gy, False, "")
    if entry["subvoxel_excess_gy"].get(z.organ, 0.0) > 0:     # only the sub-voxel rule fails
        return _Tightening(s.subvoxel_tighten_factor * entry["subvoxel_excess_gy"][z.organ] + s.tighten_extra_gy,
                           True, " (sub-voxel rule)")
    return None


def tighten_failing_zones(zones: List[Zone], entry: Dict[str, Any], s: TuningSettings,
                          floors: Dict[str, float]) -> None:
    """After a failing run: raise the margins of the zones that must come down (see
    :func:`_tightening`), record the raised margins that become floors in ``floors`` (Gy, by
    ROI) and the changes in ``entry['changes']``."""
    for z in zones:
        t = _tightening(z, entry, s)
        if t is None:
            continue
        z.margin_gy += t.margin_gy
        if t.is_floor:
            floors[z.key] = z.margin_gy      # never relaxed below: the relaxed level failed
        entry["changes"].append(f"tighten {z.key} to {z.level_gy():.2f} Gy{t.note}")


def cover_subvoxel_gaps(zones: Sequence[Zone], gaps_gy: Dict[str, float], s: TuningSettings,
                        floors: Optional[Dict[str, float]] = None) -> List[Tuple[Zone, float]]:
    """Raise each zone's margin (and floor, if ``floors`` is given) to the gap by which the
    sub-voxel rule read its organ above the voxel rule (``gaps_gy``, organ → Gy, e.g. from
    :func:`subvoxel_gap`) + ``tighten_extra_gy``: the zone's voxel level cannot see that part
    of the dose. Returns the zones raised with their new margins (Gy)."""
    raised = []
    for z in zones:
        need = gaps_gy.get(z.organ, 0.0) + s.tighten_extra_gy
        if z.margin_gy < need:
            z.margin_gy = need
            if floors is not None:
                floors[z.key] = max(floors.get(z.key, 0.0), need)
            raised.append((z, need))
    return raised


def relax_binding_zones(zones: List[Zone], entry: Dict[str, Any], s: TuningSettings,
                        floors: Dict[str, float]) -> None:
    """After a passing run (``relax_margins``): halve the margins of the binding zones (a voxel's
    dose within 0.05 Gy of the zone's level or above it), down to their floor (at least
    ``min_margin_gy``)."""
    excess = entry["zone_excess_gy"]
    for z in zones:
        binding = excess[z.key] > -(z.margin_gy + 0.05)
        floor = max(s.min_margin_gy, floors.get(z.key, 0.0))
        if binding and z.margin_gy > floor:
            z.margin_gy = max(floor, z.margin_gy / 2.0)
            entry["changes"].append(f"relax {z.key} to {z.level_gy():.2f} Gy")
