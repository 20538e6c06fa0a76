"""The protocol model: frozen dataclasses for organs, limits, tables, goals and rules.

Import these from :mod:`constraints.protocol`, which builds them from a validated TOML
file (:func:`constraints.protocol.load_protocol`); the model sits in its own module so
that the loader and the ROI matching can use it without an import cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from .domain import PROTOCOL_DOMAINS, DoseDomain
from .errors import InputError
from .metric import Metric

#: domain -> the unit its limits must carry (the domains a limit may be stated in)
DOMAINS = PROTOCOL_DOMAINS
ORGAN_KINDS = ("target", "oar", "external", "other")
COMPARISONS = ("<", "<=", ">", ">=")

BILSKY_GRADES = ("0", "1a", "1b", "1c", "2", "3")


@dataclass(frozen=True)
class Organ:
    """An organ of the protocol: key, name shown, kind, α/β (Gy), ROI aliases, and
    whether a plan must have it (``required``: the scripts refuse to run without it)."""

    key: str
    display_name: str
    kind: str
    alpha_beta_gy: float
    aliases: Tuple[str, ...]
    exclude_target_margin_mm: Optional[float] = None
    required: bool = False


@dataclass(frozen=True)
class LimitTable:
    """A step table: limit = first row whose bound ≥ input, else ``above``.

    Attributes
    ----------
    rows : tuple of (bound, limit)
        Increasing inclusive upper bounds of the input (e.g. prior BED in Gy2).
    """

    key: str
    description: str
    input_organ: str
    input_metric: Metric
    input_alpha_beta_gy: float
    unit: str
    rows: Tuple[Tuple[float, float], ...]
    above: float
    recovery_allowed: bool = False

    def lookup(self, value: float) -> float:
        """Limit for an input value (e.g. the cord's prior BED, Gy2).

        Examples
        --------
        >>> from constraints.protocol import load_protocol
        >>> t = load_protocol("koide2024").tables["cord_prv_d0035cc"]
        >>> [t.lookup(b) for b in (90, 90.5, 95.5, 100, 120)]
        [12.2, 12.1, 11.4, 10.8, 10.8]
        """
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InputError(f"table {self.key!r}: input must be a finite number >= 0, got {value!r}")
        for bound, limit in self.rows:
            if value <= bound:
                return limit
        return self.above


@dataclass(frozen=True)
class Constraint:
    """One limit of the protocol on one organ.

    Attributes
    ----------
    id : str
    organ : str
        Organ key.
    metric : Metric
    domain : DoseDomain
        One of :data:`DOMAINS`.
    comparison : {'<', '<='}
    limit : float or None
        Fixed limit in ``unit``; None when ``limit_table`` gives it.
    limit_table : str or None
    unit : str
    priority : int
    advisory : bool
        Shown next to the published limits; does not decide pass/fail.
    recovery_allowed : bool
        Whether a prior course's recovery fraction may discount the prior BED in
        this (cumulative) limit.  Default False: a limit derived from doses summed
        without recovery must be applied to doses summed without recovery.
    """

    id: str
    organ: str
    metric: Metric
    domain: DoseDomain
    comparison: str
    limit: Optional[float]
    limit_table: Optional[str]
    unit: str
    priority: int
    advisory: bool = False
    recovery_allowed: bool = False


@dataclass(frozen=True)
class CoverageGoal:
    id: str
    organ: str
    metric: Metric
    comparison: str
    value: float
    unit: str


@dataclass(frozen=True)
class Prescription:
    """The protocol's prescription; ``allowed_fractions`` are the fraction counts its
    physical-dose limits hold for (a plan with another count is refused)."""

    target: str
    dose_gy: float
    fractions: int
    allowed_fractions: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.allowed_fractions:
            object.__setattr__(self, "allowed_fractions", (self.fractions,))


@dataclass(frozen=True)
class ReirradiationRule:
    """A generalized cord re-irradiation rule (Sahgal et al. 2012) bounding a table limit.

    With the prior BED ``B`` of the table's input (α/β ``alpha_beta_gy``) and ``n`` new
    fractions, the SBRT-only physical limit is the lowest of

    * cumulative: ``D(X − B; n)`` with ``X = cumulative_max_eqd2_gy · (1 + 2/α/β)``;
    * SBRT alone: ``D(sbrt_max_eqd2_gy · (1 + 2/α/β); n)``;
    * ratio: SBRT EQD2 / cumulative EQD2 ≤ ρ, i.e. ``D(B ρ/(1 − ρ); n)`` (applied when
      there is a prior course);

    where ``D(B; n) = (n α/β / 2)(sqrt(1 + 4B/(n α/β)) − 1)``.  The courses must also be
    at least ``min_interval_months`` apart (checked where the dates are known).
    """

    key: str
    label: str
    applies_to: str
    alpha_beta_gy: float
    cumulative_max_eqd2_gy: float
    sbrt_max_eqd2_gy: float
    max_sbrt_to_cumulative_ratio: float
    min_interval_months: float
    source: str


@dataclass(frozen=True)
class EligibilityCriteria:
    min_prior_eqd2_gy: float
    prior_alpha_beta_gy: float
    min_interval_months: float
    min_expected_survival_months: float
    high_grade_bilsky: Tuple[str, ...]
    unstable_sins_at_least: int
    prior_sbrt_min_gy_per_fraction: float = 5.0


@dataclass(frozen=True)
class Protocol:
    """A validated protocol.  ``text`` is the file verbatim, ``sha256`` its hash."""

    name: str
    version: str
    title: str
    source: str
    notes: str
    prescription: Prescription
    organs: Mapping[str, Organ]
    tables: Mapping[str, LimitTable]
    constraints: Tuple[Constraint, ...]
    coverage_goals: Tuple[CoverageGoal, ...]
    eligibility: EligibilityCriteria
    path: str
    text: str
    sha256: str
    rules: Mapping[str, ReirradiationRule] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rules is None:
            object.__setattr__(self, "rules", {})

    def rule_for(self, constraint: Constraint) -> Optional[ReirradiationRule]:
        """The re-irradiation rule bounding ``constraint``'s table limit, if any."""
        for r in self.rules.values():
            if r.applies_to == constraint.id:
                return r
        return None

    def constraints_for(self, organ_key: str) -> Tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if c.organ == organ_key)

    def limit_of(self, constraint: Constraint, *, table_input: Optional[float] = None) -> float:
        """The constraint's fixed limit, or its *table* value at ``table_input``.

        For a constraint bounded by a re-irradiation rule this is the table alone;
        the binding limit is :func:`constraints.reirradiation_rule.binding_limit`.
        """
        if constraint.limit is not None:
            return constraint.limit
        if table_input is None:
            raise InputError(
                f"constraint {constraint.id!r} takes its limit from table {constraint.limit_table!r}; "
                f"give the table input ({self.tables[constraint.limit_table].input_metric.text} of "
                f"{self.tables[constraint.limit_table].input_organ} in prior BED)"
            )
        return self.tables[constraint.limit_table].lookup(table_input)
