"""Evaluate a plan (neutral model) against a protocol: every constraint, its value,
limit, margin and pass/fail, and the seed's Table 3 layout of dose metrics.

Domains (:class:`constraints.domain.DoseDomain`; limits in :data:`constraints.protocol.DOMAINS`):

* ``sbrt_physical`` — the new course's physical dose (Gy);
* ``sbrt_bed`` / ``sbrt_eqd2`` — the new course alone in BED/EQD2 of the organ's α/β;
* ``cumulative_bed`` / ``cumulative_eqd2`` — prior courses (after recovery) plus the new
  course, summed voxel by voxel in BED of the organ's α/β;
* ``cumulative_physical`` — all physical doses summed (reported in Table 3, never limited).

A metric that cannot be evaluated (unknown prior dose in the organ, a volume larger
than the organ) is reported as not evaluable and counts as a failure for a binding
constraint: never a silent pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .accumulate import cumulative_bed
from .domain import DoseDomain
from .dose_course import DoseCourse, interval_months
from .dvh import compute_dvh
from .errors import InputError, NotEvaluableError, ReirradError
from .grid import Grid
from .lq import _bed
from .metric import Metric, parse_metric
from .morphology import dilate_mm
from .protocol import Constraint, Protocol
from .recovery import check_recovery
from .reirradiation_rule import BindingLimit, binding_limit
from .structure import Structure
from .subvoxel_rule import SUBVOXEL_METRIC_KINDS, FieldCache, FineCoverage, subvoxel_dvh, subvoxel_value

__all__ = ["PlanCase", "ConstraintResult", "GoalResult", "Evaluation", "evaluate_protocol", "domain_dose",
           "organ_structure", "dose_table", "table_input", "table_limit", "meets", "TABLE3_METRICS",
           "TABLE3_ALPHA_BETAS"]

TABLE3_METRICS = ("Dmax", "D0.035cc", "D1cc")
TABLE3_ALPHA_BETAS = (2.0, 3.0, 10.0)


@dataclass(frozen=True, eq=False)
class PlanCase:
    """Everything needed to evaluate one re-irradiation plan, on one dose grid.

    Attributes
    ----------
    grid : Grid
    structures : mapping organ key → Structure
        The protocol organs matched to ROIs (see :func:`constraints.match_roi_names`).
    sbrt : DoseCourse
        The new course's total physical dose.
    priors : tuple of DoseCourse
        Prior courses mapped onto the same grid.
    fine_coverage : mapping organ key → FineCoverage, optional
        ROI coverages on refined grids.  When given (non-empty), every Dmax and D_V
        constraint is also read by the sub-voxel rule (:mod:`constraints.subvoxel_rule`;
        organs without an entry on their dose-grid coverage) and passes only when both
        rules pass.  A derived organ (``exclude_target_margin_mm``, e.g. unspecified tissue) is
        a set of dose-voxel centres and is read by the voxel rule alone.
    """

    grid: Grid
    structures: Mapping[str, Structure]
    sbrt: DoseCourse
    priors: Tuple[DoseCourse, ...] = ()
    fine_coverage: Mapping[str, FineCoverage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.sbrt, DoseCourse):
            raise InputError("PlanCase sbrt must be a DoseCourse")
        self.grid.require_same(self.sbrt.grid, f"SBRT dose {self.sbrt.label!r}")
        for p in self.priors:
            self.grid.require_same(p.grid, f"prior course {p.label!r}")
        for key, s in self.structures.items():
            self.grid.require_same(s.grid, f"structure {s.name!r} ({key})")
        if self.sbrt.has_unknown:
            raise InputError(f"SBRT dose {self.sbrt.label!r} contains unknown (NaN) voxels")
        object.__setattr__(self, "priors", tuple(self.priors))


@dataclass(frozen=True)
class ConstraintResult:
    """One constraint evaluated.  ``margin`` = limit − value, in ``unit`` (> 0 is slack).

    ``limit_rule`` names what set the limit: ``'fixed'``, or for a table constraint the
    binding rule (``'table'``, ``'Sahgal-cumulative'``, ``'Sahgal-SBRT'``, ``'Sahgal-ratio'``).
    """

    constraint_id: str
    organ: str
    roi_name: Optional[str]
    metric: str
    domain: DoseDomain
    comparison: str
    unit: str
    limit: Optional[float]
    value: Optional[float]
    margin: Optional[float]
    passed: bool
    advisory: bool
    priority: int
    note: str = ""
    limit_rule: str = "fixed"
    value_subvoxel: Optional[float] = None   # the sub-voxel rule's value (Dmax, D_V), when read


@dataclass(frozen=True)
class GoalResult:
    goal_id: str
    organ: str
    metric: str
    comparison: str
    goal: float
    unit: str
    value: Optional[float]
    met: bool
    note: str = ""


@dataclass(frozen=True)
class Evaluation:
    """All constraint and goal results of one plan.

    ``all_pass`` is True when every binding (non-advisory) constraint of an organ
    present in the plan passed; constraints of organs absent from the plan are
    listed in ``not_applicable`` (an organ that is not there receives no dose limit).
    """

    protocol_name: str
    protocol_version: str
    results: Tuple[ConstraintResult, ...]
    goals: Tuple[GoalResult, ...]
    not_applicable: Tuple[str, ...]

    @property
    def all_pass(self) -> bool:
        return all(r.passed for r in self.results if not r.advisory)

    @property
    def coverage_goals_met(self) -> bool:
        """True when every coverage goal is met (a goal not evaluable is not met)."""
        return all(g.met for g in self.goals)

    def failures(self) -> Tuple[ConstraintResult, ...]:
        return tuple(r for r in self.results if not r.passed and not r.advisory)

    def sorted_failures_first(self) -> List[ConstraintResult]:
        return sorted(self.results, key=lambda r: (r.passed, r.advisory, r.priority, r.constraint_id))


def domain_dose(case: PlanCase, domain: DoseDomain, alpha_beta_gy: float, organ: Optional[str] = None) -> np.ndarray:
    """The voxel-wise quantity a constraint of ``domain`` is evaluated on (for ``organ``:
    the recovery each prior course claims for it).

    ``domain`` may be given as its text (``"cumulative_eqd2"``); an unknown one raises
    :class:`InputError`.  ``alpha_beta_gy`` does not enter the physical domains.
    """
    d = DoseDomain.parse(domain)
    if d is DoseDomain.SBRT_PHYSICAL:
        return case.sbrt.dose_gy
    if d is DoseDomain.CUMULATIVE_PHYSICAL:
        return case.sbrt.dose_gy + sum((p.dose_gy for p in case.priors), np.zeros(case.grid.shape_zyx))
    sbrt_bed = _bed(case.sbrt.dose_gy, case.sbrt.fractions, alpha_beta_gy)
    if d.is_sbrt:
        total = sbrt_bed
    else:
        total = (cumulative_bed(case.priors, alpha_beta_gy, organ) + sbrt_bed) if case.priors else sbrt_bed
    if d.quantity == "eqd2":
        return total / (1.0 + 2.0 / alpha_beta_gy)
    return total


def organ_structure(case: PlanCase, protocol: Protocol, organ_key: str) -> Structure:
    """The structure of an organ, derived where the protocol says so.

    Unspecified tissue = External − (targets + margin): the voxels whose centre lies
    farther than the margin from every voxel a target touches (measured to the
    nearest face of that voxel).  This region is contained in what a planning system
    computes for "External minus (target expanded by the margin)" with partial
    voxels, so a TPS constraint on that ROI covers every voxel evaluated here."""
    s = case.structures[organ_key]
    organ = protocol.organs[organ_key]
    if organ.exclude_target_margin_mm is None:
        return s
    targets = np.zeros(case.grid.shape_zyx, dtype=bool)
    for key, t in case.structures.items():
        if protocol.organs[key].kind == "target":
            targets |= t.mask > 0
    # a voxel counts as unspecified tissue only when its centre is surely farther than the
    # margin from the targets (any voxel a target touches may hold target anywhere in it)
    ring = dilate_mm(targets, case.grid, organ.exclude_target_margin_mm, from_voxel_boxes=True)
    return Structure(f"{s.name} - (targets + {organ.exclude_target_margin_mm:g} mm)", s.kind,
                     np.where(ring, 0.0, s.mask), case.grid)


def table_input(case: PlanCase, protocol: Protocol, constraint: Constraint) -> Tuple[float, str]:
    """The table's input: the prior BED of its organ and metric summed over ALL prior
    courses (each with the recovery it claims for that organ: refused unless allowed)."""
    table = protocol.tables[constraint.limit_table]
    if table.input_organ not in case.structures:
        raise NotEvaluableError(f"table {table.key!r} needs organ {table.input_organ!r}, which the plan lacks")
    if not case.priors:
        return 0.0, f"no prior course: prior {table.input_metric.text} BED{table.input_alpha_beta_gy:g} = 0"
    prior = cumulative_bed(case.priors, table.input_alpha_beta_gy, table.input_organ)
    dvh = compute_dvh(prior, case.structures[table.input_organ])
    value = table.input_metric.evaluate(dvh)
    return value, (f"prior {table.input_metric.text} of {case.structures[table.input_organ].name} = "
                   f"{value:.1f} Gy{table.input_alpha_beta_gy:g} BED ({len(case.priors)} prior course(s))")


def table_limit(case: PlanCase, protocol: Protocol, constraint: Constraint) -> Tuple[BindingLimit, str]:
    """The binding limit of a table constraint on ``case`` (the lower of the table and
    the protocol's re-irradiation rule, :func:`constraints.reirradiation_rule.binding_limit`)
    and a note naming the table input and the binding rule."""
    value, note = table_input(case, protocol, constraint)
    b = binding_limit(protocol, constraint, value, case.sbrt.fractions, has_prior=value > 0,
                      interval_months=interval_months(case.priors, case.sbrt))
    return b, f"{note}; {b.note()}"


def meets(value: float, comparison: str, limit: float) -> bool:
    """Whether ``value`` meets ``limit`` under ``comparison`` ('<', '<=', '>', '>=')."""
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[comparison]


def _both_rules(comparison: str, limit: float, value: float, value_subvoxel: Optional[float]) -> Tuple[bool, float]:
    """Pass and margin over both DVH rules: the pass needs both, the margin is the smaller one."""
    passed = meets(value, comparison, limit)
    margin = limit - value
    if value_subvoxel is not None:
        passed = passed and meets(value_subvoxel, comparison, limit)
        sv_margin = limit - value_subvoxel
        margin = min(margin, sv_margin) if comparison in ("<", "<=") else max(margin, sv_margin)
    return passed, margin


def evaluate_protocol(case: PlanCase, protocol: Protocol) -> Evaluation:
    """Evaluate every constraint and coverage goal of ``protocol`` on ``case``.

    Raises
    ------
    constraints.errors.InputError
        A prior course claims a recovery that one of the protocol's limits forbids
        (:func:`constraints.recovery.check_recovery`).
    """
    check_recovery(case.priors, protocol)
    results: List[ConstraintResult] = []
    not_applicable: List[str] = []
    cache: Dict[Tuple[str, DoseDomain], object] = {}

    def dvh_of(organ_key: str, domain: DoseDomain):
        key = (organ_key, domain)
        if key not in cache:
            try:
                s = organ_structure(case, protocol, organ_key)
                cache[key] = compute_dvh(domain_dose(case, domain, protocol.organs[organ_key].alpha_beta_gy,
                                                     organ_key), s)
            except ReirradError as exc:
                cache[key] = exc
        return cache[key]

    fields = FieldCache(case.grid)
    sv_cache: Dict[Tuple[str, DoseDomain], object] = {}

    def subvoxel_of(organ_key: str, domain: DoseDomain, metric: Metric) -> Optional[float]:
        """The sub-voxel rule's value, or None when the case carries no fine coverage or the metric is not a dose level."""
        if not case.fine_coverage or metric.kind not in SUBVOXEL_METRIC_KINDS:
            return None
        organ = protocol.organs[organ_key]
        if organ.exclude_target_margin_mm is not None:
            # a derived organ (External − (targets + margin)) is a set of dose-voxel centres: it has no sub-voxel
            # geometry, and a whole voxel's spread would reach into the excluded margin
            return None
        key = (organ_key, domain)
        if key not in sv_cache:
            s = case.structures[organ_key]
            f = fields.get((domain, organ.alpha_beta_gy), lambda: domain_dose(case, domain, organ.alpha_beta_gy))
            sv_cache[key] = subvoxel_dvh(s.name, f, case.fine_coverage.get(organ_key) or FineCoverage.on_dose_grid(s))
        return subvoxel_value(metric, sv_cache[key])

    for c in protocol.constraints:
        if c.organ not in case.structures:
            not_applicable.append(c.id)
            continue
        roi = organ_structure(case, protocol, c.organ).name if protocol.organs[c.organ].exclude_target_margin_mm \
            is not None else case.structures[c.organ].name
        note = ""
        rule = "fixed"
        conditions_failed: Tuple[str, ...] = ()
        try:
            if c.limit_table is not None:
                bound, note = table_limit(case, protocol, c)
                limit, rule, conditions_failed = bound.limit_gy, bound.rule, bound.conditions_failed
            else:
                limit = c.limit
            dvh = dvh_of(c.organ, c.domain)
            if isinstance(dvh, Exception):
                raise dvh
            value = c.metric.evaluate(dvh)
            value_sv = subvoxel_of(c.organ, c.domain, c.metric)
        except ReirradError as exc:
            results.append(ConstraintResult(c.id, c.organ, roi, c.metric.text, c.domain, c.comparison, c.unit,
                                            c.limit, None, None, False, c.advisory, c.priority,
                                            f"not evaluable: {exc}", rule))
            continue
        passed, margin = _both_rules(c.comparison, limit, value, value_sv)
        passed = passed and not conditions_failed
        if conditions_failed:
            note += "; FAIL: the rule's condition(s) " + ", ".join(conditions_failed) + " not met"
        results.append(ConstraintResult(c.id, c.organ, roi, c.metric.text, c.domain, c.comparison, c.unit,
                                        limit, value, margin, passed, c.advisory, c.priority, note, rule, value_sv))
    goals = []
    for g in protocol.coverage_goals:
        if g.organ not in case.structures:
            goals.append(GoalResult(g.id, g.organ, g.metric.text, g.comparison, g.value, g.unit, None, False,
                                    "organ not in plan"))
            continue
        dvh = dvh_of(g.organ, DoseDomain.SBRT_PHYSICAL)
        if isinstance(dvh, Exception):
            goals.append(GoalResult(g.id, g.organ, g.metric.text, g.comparison, g.value, g.unit, None, False,
                                    f"not evaluable: {dvh}"))
            continue
        value = g.metric.evaluate(dvh, volume_unit="cc" if g.unit == "cc" else "%")
        goals.append(GoalResult(g.id, g.organ, g.metric.text, g.comparison, g.value, g.unit, value,
                                meets(value, g.comparison, g.value)))
    return Evaluation(protocol.name, protocol.version, tuple(results), tuple(goals), tuple(not_applicable))


def dose_table(case: PlanCase, structure: Structure, *, alpha_betas: Sequence[float] = TABLE3_ALPHA_BETAS,
               metrics: Sequence[str] = TABLE3_METRICS) -> Dict[str, object]:
    """Dose metrics of one structure in the layout of the seed's Table 3.

    Returns a nested dict: ``{"sbrt"|"cumulative": {"physical"|"bed"|"eqd2": {ab: {metric: value}}}}``
    (``physical`` has one entry under key ``"-"``; the cumulative physical dose is the
    plain sum of the courses, for reference only).  Values that cannot be evaluated
    are ``None`` and their reasons are listed under ``"not_evaluable"``.
    """
    parsed: List[Metric] = [parse_metric(m) for m in metrics]
    organ = next((k for k, s in case.structures.items() if s is structure), None)
    out: Dict[str, object] = {}
    reasons: Dict[str, str] = {}

    def fill(values: np.ndarray, where: str) -> Dict[str, Optional[float]]:
        row: Dict[str, Optional[float]] = {}
        try:
            dvh = compute_dvh(values, structure)
        except ReirradError as exc:
            reasons[where] = str(exc)
            return {m.text: None for m in parsed}
        for m in parsed:
            try:
                row[m.text] = m.evaluate(dvh)
            except ReirradError as exc:
                row[m.text] = None
                reasons[f"{where} {m.text}"] = str(exc)
        return row

    for scope in ("sbrt", "cumulative"):
        block: Dict[str, object] = {}
        physical = DoseDomain.of(scope, "physical")
        block["physical"] = {"-": fill(domain_dose(case, physical, float("nan")), f"{scope} physical")}
        for kind in ("bed", "eqd2"):
            block[kind] = {}
            for ab in alpha_betas:
                values = domain_dose(case, DoseDomain.of(scope, kind), float(ab), organ)
                block[kind][f"{float(ab):g}"] = fill(values, f"{scope} {kind} a/b {ab:g}")
        out[scope] = block
    if reasons:
        out["not_evaluable"] = reasons
    return out
