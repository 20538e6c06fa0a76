"""Three ways to express a re-irradiation protocol as FMO constraints, and the exact check.

Strategies (:data:`STRATEGIES`), all on the same influence matrix and objective:

``exact``
    Every binding constraint as written.  Dmax-type limits (cumulative maps,
    SBRT-only caps) become per-voxel hard bounds; volume limits on cumulative dose
    (esophagus D0.035cc < 187, D1cc < 167 Gy3 BED) and SBRT-only D0.035cc ≤ 20 Gy
    become CVaR constraints on ``d − L`` with the per-voxel map ``L``.  Organs in
    :data:`HARD_VOLUME_ORGANS` (cord PRV) take their volume limits per voxel (the
    strict map): conservative for the cord.
``zones``
    What the TPS loop uses: each organ with cumulative constraints is cut into bands
    of its prior dose (:func:`optimizer.zones.band_thresholds`), each band bounded by
    its lowest strict limit minus the margin (:func:`optimizer.zones.zone_level_gy`);
    SBRT-only constraints as in ``exact``.  (No hot-region exemption: conservative.)
``sbrt-only``
    The seed's SBRT-only limits without cumulative assessment: cord PRV table limit
    as a max, 20 Gy D0.035cc on the other OARs including the esophagus.

Every plan is then evaluated exactly (:func:`constraints.evaluate_protocol`); when a
constraint the strategy models fails (the CVaR surrogate or a strict-inequality edge),
the volume caps are tightened (volume × 0.5, limit − 0.25 Gy per round) and re-solved.

The margin ``margin_gy`` lowers the limits of :data:`MARGIN_ORGANS` (Gy, total).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from constraints.dose_course import DoseCourse
from constraints.errors import InputError
from constraints.evaluation import Evaluation, PlanCase, evaluate_protocol, meets, organ_structure
from constraints.protocol import Constraint, Protocol

from .fmo import FmoOptions, FmoResult, FmoSpec, MaxBound, Region, VolumeCap, solve_fmo
from .fmo_case import FmoCase, falloff_limit_gy
from .limit_map import sbrt_limit_map
from .organ_limits import cumulative_limit_bed_gy, organ_limits, sbrt_cap_gy
from .zones import band_thresholds, zone_level_gy

__all__ = ["STRATEGIES", "MARGIN_ORGANS", "HARD_VOLUME_ORGANS", "CUMULATIVE_ORGAN", "StrategyPlan",
           "build_spec", "plan_strategy"]

STRATEGIES = ("exact", "zones", "sbrt-only")
#: Organs whose limits the safety margin lowers.
MARGIN_ORGANS = ("esophagus", "spinal_cord_prv")
#: Organs whose volume limits are imposed on every voxel (strict map).
HARD_VOLUME_ORGANS = ("spinal_cord_prv",)
#: The organ whose cumulative limits the comparison reports.
CUMULATIVE_ORGAN = "esophagus"


@dataclass(frozen=True, eq=False)
class StrategyPlan:
    """One strategy solved and checked.

    Attributes
    ----------
    strategy : str
    margin_gy : float, Gy
    result : FmoResult  (the last solve)
    evaluation : Evaluation or None  (None when the solve gave no plan)
    rounds : int  (solves made: 1 + tightened re-solves)
    v_rx_percent, d95_gy : float or None  (PTVeval, exact DVH rules)
    cumulative_pass : bool or None
        Every cumulative constraint of :data:`CUMULATIVE_ORGAN` passes.
    all_pass : bool or None  (every binding constraint of the protocol)
    """

    strategy: str
    margin_gy: float
    result: FmoResult
    evaluation: Optional[Evaluation]
    rounds: int
    v_rx_percent: Optional[float]
    d95_gy: Optional[float]
    cumulative_pass: Optional[bool]
    all_pass: Optional[bool]


def _region(name: str, mask: np.ndarray) -> Region:
    flat = np.asarray(mask, dtype=np.float64).ravel()
    rows = np.flatnonzero(flat > 0)
    return Region(name, rows, flat[rows])


def _limit_on_rows(case: PlanCase, protocol: Protocol, c: Constraint, mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    ab = protocol.organs[c.organ].alpha_beta_gy
    if c.domain.is_sbrt:
        return np.full(rows.size, sbrt_cap_gy(case, protocol, c))
    x = cumulative_limit_bed_gy(c, ab)
    m = sbrt_limit_map(list(case.priors), alpha_beta_gy=ab, cumulative_limit_bed_gy=x,
                       fractions=case.sbrt.fractions, mask=mask, organ=c.organ)
    return np.asarray(m.limit_gy, dtype=np.float64).ravel()[rows]


def _volume_cc(c: Constraint, organ_volume_cc: float) -> float:
    if c.metric.kind == "d_cc":
        return float(c.metric.parameter)
    if c.metric.kind == "d_percent":
        return float(c.metric.parameter) / 100.0 * organ_volume_cc
    raise InputError(f"constraint {c.id!r}: metric {c.metric.text!r} cannot be an FMO constraint")


def _zone_bound(case: PlanCase, protocol: Protocol, organ: str, region: Region, margin_gy: float,
                ids: Tuple[str, ...]) -> MaxBound:
    strict = organ_limits(case, protocol)[organ].strict_gy
    mask = np.asarray(organ_structure(case, protocol, organ).mask)
    prior = sum((np.nan_to_num(p.dose_gy, nan=np.inf) for p in case.priors), np.zeros(case.grid.shape_zyx))
    cuts = band_thresholds(prior, strict, mask)
    zone = np.searchsorted(np.asarray(cuts, dtype=float), prior, side="right")
    limit = np.zeros(case.grid.shape_zyx)
    for k in np.unique(zone[mask > 0]):
        sel = (zone == k) & (mask > 0)
        limit[sel] = zone_level_gy(strict, np.where(sel, mask, 0.0), margin_gy)
    return MaxBound(f"{organ}: {len(cuts) + 1} zones (margin {margin_gy:g} Gy)", region.name,
                    limit.ravel()[region.rows], ids)


def build_spec(fcase: FmoCase, protocol: Protocol, strategy: str, *, margin_gy: float = 0.0,
               volume_scales: Optional[Dict[str, float]] = None,
               extra_margins_gy: Optional[Dict[str, float]] = None) -> FmoSpec:
    """The :class:`FmoSpec` of ``strategy`` (see the module docstring).

    Parameters
    ----------
    margin_gy : float, Gy
        Lowers the limits of :data:`MARGIN_ORGANS` (zones: the zone margin).
    volume_scales : dict, optional
        Organ → factor on its volume caps' volumes, used by :func:`plan_strategy` after a
        failed exact check.
    extra_margins_gy : dict, optional
        Organ → Gy by which its bounds and caps are lowered, used by :func:`plan_strategy`
        after a failed exact check.

    Raises
    ------
    constraints.errors.InputError
        Unknown strategy, negative margin, no target in the case.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not margin_gy >= 0:
        raise InputError(f"margin_gy must be >= 0 Gy, got {margin_gy!r}")
    case = fcase.case
    target = protocol.prescription.target
    if target not in case.structures:
        raise InputError(f"the case has no {protocol.organs[target].display_name} ({target}) structure")
    regions: Dict[str, Region] = {target: _region(target, case.structures[target].mask)}
    bounds: Dict[str, List[Tuple[np.ndarray, str, Tuple[str, ...]]]] = {}
    caps: List[VolumeCap] = []
    zoned: Dict[str, List[str]] = {}
    for c in protocol.constraints:
        if c.advisory or c.organ not in case.structures or protocol.organs[c.organ].kind == "target":
            continue
        cumulative = c.domain.is_cumulative
        if cumulative and strategy == "sbrt-only":
            continue
        s = organ_structure(case, protocol, c.organ)
        region = regions.setdefault(c.organ, _region(c.organ, s.mask))
        if cumulative and strategy == "zones":
            zoned.setdefault(c.organ, []).append(c.id)
            continue
        limit = _limit_on_rows(case, protocol, c, np.asarray(s.mask), region.rows)
        if c.organ in MARGIN_ORGANS:
            limit = np.maximum(limit - margin_gy, 0.0)
        label = f"{c.id}: {c.metric.text} {c.domain}"
        limit = np.maximum(limit - (extra_margins_gy or {}).get(c.organ, 0.0), 0.0)
        if c.metric.kind == "max" or c.organ in HARD_VOLUME_ORGANS:
            bounds.setdefault(c.organ, []).append((limit, label, (c.id,)))
        else:
            caps.append(VolumeCap(label, c.organ, limit,
                                  _volume_cc(c, s.volume_cc) * (volume_scales or {}).get(c.organ, 1.0), (c.id,)))
    max_bounds = []
    for organ, items in bounds.items():   # one merged per-voxel bound per region (min over constraints)
        lim = np.min(np.stack([i[0] for i in items]), axis=0)
        max_bounds.append(MaxBound("; ".join(i[1] for i in items), organ, lim, tuple(x for i in items for x in i[2])))
    for organ, ids in zoned.items():
        max_bounds.append(_zone_bound(case, protocol, organ, regions[organ], margin_gy, tuple(ids)))
    falloff = None
    body_key = next((k for k, o in protocol.organs.items() if o.kind == "external" and k in case.structures), None)
    if body_key is not None:
        ring, flimit = falloff_limit_gy(case.structures[target].mask, case.grid.spacing_xyz_mm, fcase.prescription_gy)
        ring &= np.asarray(case.structures[body_key].mask) > 0
        if ring.any():
            regions["falloff_ring"] = _region("falloff_ring", ring.astype(float))
            falloff = MaxBound("fall-off ring (R -> R/2 over 10 mm)", "falloff_ring",
                               flimit.ravel()[regions["falloff_ring"].rows])
    hot = [g for g in protocol.coverage_goals if g.organ == target and g.comparison in ("<", "<=")
           and g.metric.kind in ("max", "d_cc")]
    return FmoSpec(fcase.influence_gy, fcase.fractions, case.grid.voxel_volume_cc, regions, target,
                   fcase.prescription_gy, min((g.value for g in hot), default=None), tuple(max_bounds),
                   tuple(caps), falloff)


def evaluate_dose(fcase: FmoCase, protocol: Protocol, dose_gy: np.ndarray, label: str = "FMO") -> Evaluation:
    """Exact protocol evaluation of a total SBRT dose (flattened or (nz, ny, nx), Gy), by both DVH
    rules where the case has sub-voxel coverage, as the TPS scripts assess a plan: a pass the
    stricter reading fails is no pass."""
    case = fcase.case
    sbrt = DoseCourse(np.asarray(dose_gy).reshape(case.grid.shape_zyx), case.grid, fcase.fractions, label)
    return evaluate_protocol(PlanCase(case.grid, case.structures, sbrt, case.priors, case.fine_coverage), protocol)


def _goal(evaluation: Evaluation, kind: str, protocol: Protocol) -> Optional[float]:
    for g, res in zip(protocol.coverage_goals, evaluation.goals):
        if g.organ == protocol.prescription.target and g.metric.kind == kind:
            return res.value
    return None


def _voxel_rule_fails(r) -> bool:
    """Whether a constraint result fails by the voxel rule's value (not only the sub-voxel rule's)."""
    return r.value is None or r.limit is None or not meets(r.value, r.comparison, r.limit)


def _excess_gy(r) -> float:
    """How far to lower a failing constraint's organ (Gy of new dose): its higher DVH reading's
    excess over a physical limit + 0.05 Gy, else 0.25 Gy (a BED excess has no single physical
    equivalent)."""
    if r.domain.is_sbrt and r.unit == "Gy" and r.limit is not None and r.value is not None:
        read = max(r.value, r.value_subvoxel if r.value_subvoxel is not None else r.value)
        return max(read - r.limit, 0.0) + 0.05
    return 0.25


def plan_strategy(fcase: FmoCase, protocol: Protocol, strategy: str, *, margin_gy: float = 0.0,
                  options: FmoOptions = FmoOptions(), max_rounds: int = 4) -> StrategyPlan:
    """Solve ``strategy``, check it exactly (both DVH rules), tighten and re-solve while a
    modelled constraint fails: a failing organ's volume caps' volumes × 0.5 where the voxel
    rule fails (the CVaR surrogate is not the metric), and its bounds and caps lowered by its
    excess + 0.05 Gy (a physical limit, read by the higher DVH rule: the voxel doses the rows
    see may lie below it) or by 0.25 Gy (BED), by twice that from its second failure on (the
    re-solved dose moves up to the lowered rows)."""
    scale: Dict[str, float] = {}
    extra: Dict[str, float] = {}
    for rounds in range(1, max_rounds + 1):
        spec = build_spec(fcase, protocol, strategy, margin_gy=margin_gy, volume_scales=scale, extra_margins_gy=extra)
        result = solve_fmo(spec, options)
        if not result.has_plan:
            return StrategyPlan(strategy, margin_gy, result, None, rounds, None, None, None, None)
        ev = evaluate_dose(fcase, protocol, result.dose_gy, f"FMO {strategy}")
        capped = {i for item in spec.volume_caps for i in item.source_ids}
        bounded = {i for item in spec.max_bounds for i in item.source_ids}
        failed = [r for r in ev.failures() if r.constraint_id in capped | bounded]
        if not failed:
            break
        for organ in {r.organ for r in failed if r.constraint_id in capped and _voxel_rule_fails(r)}:
            scale[organ] = scale.get(organ, 1.0) * 0.5     # the CVaR surrogate let the voxel rule fail
        for organ in {r.organ for r in failed}:       # twice the excess from an organ's second failure on
            factor = 2.0 if organ in extra else 1.0
            extra[organ] = extra.get(organ, 0.0) + factor * max(_excess_gy(r) for r in failed if r.organ == organ)
    cum = [r for r in ev.results if r.organ == CUMULATIVE_ORGAN and r.domain.is_cumulative
           and not r.advisory]
    return StrategyPlan(strategy, margin_gy, result, ev, rounds, _goal(ev, "v_dose", protocol),
                        _goal(ev, "d_percent", protocol), all(r.passed for r in cum) if cum else None, ev.all_pass)
