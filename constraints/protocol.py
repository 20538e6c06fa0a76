"""Protocols as data: a TOML file, validated once on load, shown verbatim.

A protocol names organs (with α/β and ROI-name aliases), per-organ limits in a
stated *domain* (SBRT-only physical dose, SBRT-only or cumulative BED/EQD2), limit
tables (the cord-PRV rule of the seed study), PTVeval coverage goals and the
eligibility thresholds.  Every error names the file, the entry and the field.

The built-in protocol ``koide2024`` lives in ``constraints/protocols/koide2024.toml``.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import InputError, ProtocolError
from .metric import Metric, parse_metric

if sys.version_info >= (3, 11):
    import tomllib as _toml  # novermin (guarded by the version check above)
else:  # RayStation 11B-2024A (CPython 3.8) and 3.9/3.10
    import tomli as _toml

__all__ = [
    "Organ",
    "Constraint",
    "LimitTable",
    "CoverageGoal",
    "Prescription",
    "EligibilityCriteria",
    "ReirradiationRule",
    "Protocol",
    "DOMAINS",
    "load_protocol",
    "builtin_protocols",
    "match_roi_names",
    "RoiMatch",
]

PROTOCOL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protocols")

#: domain -> the unit its limits must carry
DOMAINS = {
    "sbrt_physical": "Gy",
    "sbrt_bed": "Gy BED",
    "sbrt_eqd2": "Gy EQD2",
    "cumulative_bed": "Gy BED",
    "cumulative_eqd2": "Gy EQD2",
}
ORGAN_KINDS = ("target", "oar", "external", "other")
COMPARISONS = ("<", "<=", ">", ">=")
SUPPORTED_FORMAT = 1


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
        >>> t = load_protocol("koide2024").tables["cord_prv_d0035cc"]
        >>> [t.lookup(b) for b in (90, 90.5, 95.5, 100, 120)]
        [12.2, 12.1, 11.4, 10.8, 10.8]
        """
        import math

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
    domain : str
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
    domain: str
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


def builtin_protocols() -> Tuple[str, ...]:
    """Names of the protocols shipped with reirrad."""
    return tuple(sorted(f[:-5] for f in os.listdir(PROTOCOL_DIR) if f.endswith(".toml")))


def load_protocol(name_or_path: str = "koide2024") -> Protocol:
    """Load and validate a protocol by built-in name or by path to a TOML file.

    Raises
    ------
    constraints.errors.ProtocolError
        Unknown name, unreadable file, TOML syntax error or any invalid entry; the
        message names the file, the entry and the field.
    """
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ProtocolError(f"protocol must be a built-in name or a path, got {name_or_path!r}")
    if os.sep in name_or_path or name_or_path.endswith(".toml") or (os.altsep and os.altsep in name_or_path):
        path = name_or_path
    else:
        path = os.path.join(PROTOCOL_DIR, name_or_path + ".toml")
        if not os.path.exists(path):
            raise ProtocolError(
                f"unknown protocol {name_or_path!r}; built-in protocols: {', '.join(builtin_protocols())}"
            )
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ProtocolError(f"protocol file {path!r} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = _toml.loads(text)
    except UnicodeDecodeError:
        raise ProtocolError(f"protocol file {path!r} is not UTF-8 text") from None
    except _toml.TOMLDecodeError as exc:
        raise ProtocolError(f"protocol file {path!r} is not valid TOML: {exc}") from None
    return _Parser(path, data, text, hashlib.sha256(raw).hexdigest()).protocol()


class _Parser:
    """Turns the TOML mapping into a :class:`Protocol`, naming file/entry/field on error."""

    def __init__(self, path: str, data: Dict[str, Any], text: str, sha: str) -> None:
        self.path, self.data, self.text, self.sha = path, data, text, sha

    def fail(self, entry: str, message: str) -> ProtocolError:
        return ProtocolError(f"protocol {self.path!r}, {entry}: {message}")

    def get(self, table: Mapping[str, Any], entry: str, field: str, kind, *, default: Any = ..., allowed=None):
        if not isinstance(table, Mapping):
            raise self.fail(entry, "must be a table")
        if field not in table:
            if default is ...:
                raise self.fail(entry, f"field {field!r} is missing")
            return default
        value = table[field]
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(entry, f"field {field!r} must be a number, got {value!r}")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise self.fail(entry, f"field {field!r} must be finite, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(entry, f"field {field!r} must be an integer, got {value!r}")
        elif kind is str:
            if not isinstance(value, str) or not value.strip():
                raise self.fail(entry, f"field {field!r} must be a non-empty string, got {value!r}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise self.fail(entry, f"field {field!r} must be true or false, got {value!r}")
        elif kind is list:
            if not isinstance(value, list):
                raise self.fail(entry, f"field {field!r} must be a list, got {value!r}")
        elif kind is dict:
            if not isinstance(value, Mapping):
                raise self.fail(entry, f"field {field!r} must be a table, got {value!r}")
        if allowed is not None and value not in allowed:
            raise self.fail(entry, f"field {field!r} must be one of {list(allowed)}, got {value!r}")
        return value

    def check_fields(self, table: Mapping[str, Any], entry: str, known: Sequence[str]) -> None:
        if not isinstance(table, Mapping):
            raise self.fail(entry, f"must be a table, got {table!r}")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.fail(entry, f"unknown field(s) {unknown}; known fields: {sorted(known)}")

    def protocol(self) -> Protocol:
        d = self.data
        self.check_fields(d, "top level", ["format", "protocol", "prescription", "organs", "tables",
                                           "constraints", "coverage_goals", "eligibility", "reirradiation_rules"])
        fmt = self.get(d, "top level", "format", int)
        if fmt != SUPPORTED_FORMAT:
            raise self.fail("top level", f"format {fmt} is not supported (this reirrad reads format {SUPPORTED_FORMAT})")
        head = self.get(d, "top level", "protocol", dict)
        self.check_fields(head, "[protocol]", ["name", "version", "title", "source", "notes"])
        organs = self.organs(self.get(d, "top level", "organs", dict))
        tables = self.tables(self.get(d, "top level", "tables", dict, default={}), organs)
        presc_t = self.get(d, "top level", "prescription", dict)
        self.check_fields(presc_t, "[prescription]", ["target", "dose_gy", "fractions", "allowed_fractions"])
        fractions = self.get(presc_t, "[prescription]", "fractions", int)
        if fractions < 1:
            raise self.fail("[prescription]", f"field 'fractions' must be >= 1, got {fractions}")
        allowed = self.get(presc_t, "[prescription]", "allowed_fractions", list, default=[fractions])
        if (not allowed or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in allowed)
                or len(set(allowed)) != len(allowed)):
            raise self.fail("[prescription]", f"field 'allowed_fractions' must be a list of distinct integers >= 1, "
                                              f"got {allowed!r}")
        if fractions not in allowed:
            raise self.fail("[prescription]", f"field 'allowed_fractions' {allowed} must include 'fractions' "
                                              f"({fractions})")
        presc = Prescription(
            target=self.organ_ref(presc_t, "[prescription]", "target", organs),
            dose_gy=self.positive(presc_t, "[prescription]", "dose_gy"),
            fractions=fractions,
            allowed_fractions=tuple(allowed),
        )
        constraints = self.constraints(self.get(d, "top level", "constraints", list), organs, tables)
        goals = self.goals(self.get(d, "top level", "coverage_goals", list, default=[]), organs)
        elig = self.eligibility(self.get(d, "top level", "eligibility", dict))
        rules = self.rules(self.get(d, "top level", "reirradiation_rules", dict, default={}), constraints, tables)
        return Protocol(
            name=self.get(head, "[protocol]", "name", str),
            version=self.get(head, "[protocol]", "version", str),
            title=self.get(head, "[protocol]", "title", str),
            source=self.get(head, "[protocol]", "source", str),
            notes=self.get(head, "[protocol]", "notes", str, default=""),
            prescription=presc,
            organs=organs,
            tables=tables,
            constraints=constraints,
            coverage_goals=goals,
            eligibility=elig,
            path=self.path,
            text=self.text,
            sha256=self.sha,
            rules=rules,
        )

    def rules(self, table: Mapping[str, Any], constraints, tables) -> Dict[str, ReirradiationRule]:
        out: Dict[str, ReirradiationRule] = {}
        by_id = {c.id: c for c in constraints}
        bound = set()
        for key, t in table.items():
            entry = f"[reirradiation_rules.{key}]"
            self.check_fields(t, entry, ["label", "applies_to", "alpha_beta_gy", "cumulative_max_eqd2_gy",
                                         "sbrt_max_eqd2_gy", "max_sbrt_to_cumulative_ratio", "min_interval_months",
                                         "source"])
            target = self.get(t, entry, "applies_to", str)
            c = by_id.get(target)
            if c is None or c.limit_table is None or c.domain != "sbrt_physical":
                raise self.fail(entry, f"field 'applies_to' must name a table-based sbrt_physical constraint, "
                                       f"got {target!r}")
            if target in bound:
                raise self.fail(entry, f"constraint {target!r} already has a re-irradiation rule")
            bound.add(target)
            ab = self.positive(t, entry, "alpha_beta_gy")
            if ab != tables[c.limit_table].input_alpha_beta_gy:
                raise self.fail(entry, f"alpha_beta_gy {ab:g} must equal the input alpha/beta of table "
                                       f"{c.limit_table!r} ({tables[c.limit_table].input_alpha_beta_gy:g})")
            ratio = self.positive(t, entry, "max_sbrt_to_cumulative_ratio")
            if ratio >= 1:
                raise self.fail(entry, f"field 'max_sbrt_to_cumulative_ratio' must be < 1, got {ratio!r}")
            interval = self.get(t, entry, "min_interval_months", float)
            if interval < 0:
                raise self.fail(entry, f"field 'min_interval_months' must be >= 0, got {interval!r}")
            out[key] = ReirradiationRule(
                key=key,
                label=self.get(t, entry, "label", str),
                applies_to=target,
                alpha_beta_gy=ab,
                cumulative_max_eqd2_gy=self.positive(t, entry, "cumulative_max_eqd2_gy"),
                sbrt_max_eqd2_gy=self.positive(t, entry, "sbrt_max_eqd2_gy"),
                max_sbrt_to_cumulative_ratio=ratio,
                min_interval_months=interval,
                source=self.get(t, entry, "source", str),
            )
        return out

    def positive(self, table, entry, field, default=...) -> float:
        value = self.get(table, entry, field, float, default=default)
        if value is not None and value <= 0:
            raise self.fail(entry, f"field {field!r} must be > 0, got {value!r}")
        return value

    def organ_ref(self, table, entry, field, organs) -> str:
        key = self.get(table, entry, field, str)
        if key not in organs:
            raise self.fail(entry, f"field {field!r} names unknown organ {key!r}; known organs: {sorted(organs)}")
        return key

    def organs(self, table: Mapping[str, Any]) -> Dict[str, Organ]:
        out: Dict[str, Organ] = {}
        seen_alias: Dict[str, str] = {}
        for key, t in table.items():
            entry = f"[organs.{key}]"
            self.check_fields(t, entry, ["display_name", "kind", "alpha_beta_gy", "aliases", "exclude_target_margin_mm",
                                         "required"])
            aliases = self.get(t, entry, "aliases", list)
            if not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
                raise self.fail(entry, "field 'aliases' must be a non-empty list of ROI names")
            for a in aliases:
                norm = normalize_roi_name(a)
                if norm in seen_alias and seen_alias[norm] != key:
                    raise self.fail(entry, f"alias {a!r} is also an alias of organ {seen_alias[norm]!r}")
                seen_alias[norm] = key
            margin = self.get(t, entry, "exclude_target_margin_mm", float, default=None)
            if margin is not None and margin < 0:
                raise self.fail(entry, f"field 'exclude_target_margin_mm' must be >= 0, got {margin}")
            out[key] = Organ(
                key=key,
                display_name=self.get(t, entry, "display_name", str),
                kind=self.get(t, entry, "kind", str, allowed=ORGAN_KINDS),
                alpha_beta_gy=self.positive(t, entry, "alpha_beta_gy"),
                aliases=tuple(aliases),
                exclude_target_margin_mm=margin,
                required=self.get(t, entry, "required", bool, default=False),
            )
        if not out:
            raise self.fail("[organs]", "at least one organ is required")
        return out

    def tables(self, table: Mapping[str, Any], organs) -> Dict[str, LimitTable]:
        out = {}
        for key, t in table.items():
            entry = f"[tables.{key}]"
            self.check_fields(t, entry, ["description", "input_organ", "input_metric", "input_alpha_beta_gy",
                                         "unit", "rows", "above", "recovery_allowed"])
            rows_raw = self.get(t, entry, "rows", list)
            rows = []
            for i, row in enumerate(rows_raw):
                if (not isinstance(row, list) or len(row) != 2
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)):
                    raise self.fail(entry, f"rows[{i}] must be [bound, limit] numbers, got {row!r}")
                rows.append((float(row[0]), float(row[1])))
            if not rows:
                raise self.fail(entry, "field 'rows' must not be empty")
            bounds = [r[0] for r in rows]
            if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:])):
                raise self.fail(entry, "row bounds must increase strictly")
            if any(r[1] <= 0 for r in rows):
                raise self.fail(entry, "row limits must be > 0")
            unit = self.get(t, entry, "unit", str, allowed=("Gy",))
            try:
                metric = parse_metric(self.get(t, entry, "input_metric", str), where=f"{entry} field 'input_metric'")
            except InputError as exc:
                raise self.fail(entry, str(exc)) from None
            out[key] = LimitTable(
                key=key,
                description=self.get(t, entry, "description", str),
                input_organ=self.organ_ref(t, entry, "input_organ", organs),
                input_metric=metric,
                input_alpha_beta_gy=self.positive(t, entry, "input_alpha_beta_gy"),
                unit=unit,
                rows=tuple(rows),
                above=self.positive(t, entry, "above"),
                recovery_allowed=self.get(t, entry, "recovery_allowed", bool, default=False),
            )
        return out

    def constraints(self, items: List[Any], organs, tables) -> Tuple[Constraint, ...]:
        out: List[Constraint] = []
        ids = set()
        for i, t in enumerate(items):
            entry = f"[[constraints]] #{i + 1}"
            self.check_fields(t, entry, ["id", "organ", "organs", "metric", "domain", "comparison", "limit",
                                         "limit_table", "unit", "priority", "advisory", "recovery_allowed"])
            cid = self.get(t, entry, "id", str)
            entry = f"[[constraints]] {cid!r}"
            if ("organ" in t) == ("organs" in t):
                raise self.fail(entry, "give exactly one of 'organ' or 'organs'")
            if "organ" in t:
                organ_keys = [self.organ_ref(t, entry, "organ", organs)]
            else:
                organ_keys = self.get(t, entry, "organs", list)
                for k in organ_keys:
                    if k not in organs:
                        raise self.fail(entry, f"field 'organs' names unknown organ {k!r}; known organs: {sorted(organs)}")
            domain = self.get(t, entry, "domain", str, allowed=tuple(DOMAINS))
            unit = self.get(t, entry, "unit", str)
            if unit != DOMAINS[domain]:
                raise self.fail(entry, f"unit {unit!r} does not match domain {domain!r}, whose limits are in {DOMAINS[domain]!r}")
            try:
                metric = parse_metric(self.get(t, entry, "metric", str), where=f"{entry} field 'metric'")
            except InputError as exc:
                raise self.fail(entry, str(exc)) from None
            if not metric.is_dose:
                raise self.fail(entry, f"metric {metric.text!r}: constraints must be dose metrics (Dmax, D<v>cc, ...)")
            comparison = self.get(t, entry, "comparison", str, allowed=("<", "<="))
            if ("limit" in t) == ("limit_table" in t):
                raise self.fail(entry, "give exactly one of 'limit' or 'limit_table'")
            limit = self.positive(t, entry, "limit", default=None)
            table = self.get(t, entry, "limit_table", str, default=None)
            if table is not None:
                if table not in tables:
                    raise self.fail(entry, f"field 'limit_table' names unknown table {table!r}; known: {sorted(tables)}")
                if tables[table].unit != unit:
                    raise self.fail(entry, f"table {table!r} gives limits in {tables[table].unit!r}, not {unit!r}")
            priority = self.get(t, entry, "priority", int, default=10)
            advisory = self.get(t, entry, "advisory", bool, default=False)
            recovery_allowed = self.get(t, entry, "recovery_allowed", bool, default=False)
            if recovery_allowed and not domain.startswith("cumulative_"):
                raise self.fail(entry, f"field 'recovery_allowed' applies to cumulative domains only, not {domain!r}")
            for k in organ_keys:
                full_id = cid if len(organ_keys) == 1 else f"{cid}:{k}"
                if full_id in ids:
                    raise self.fail(entry, f"duplicate constraint id {full_id!r}")
                ids.add(full_id)
                out.append(Constraint(full_id, k, metric, domain, comparison, limit, table, unit, priority, advisory,
                                      recovery_allowed))
        return tuple(out)

    def goals(self, items: List[Any], organs) -> Tuple[CoverageGoal, ...]:
        out = []
        for i, t in enumerate(items):
            entry = f"[[coverage_goals]] #{i + 1}"
            self.check_fields(t, entry, ["id", "organ", "metric", "comparison", "value", "unit"])
            try:
                metric = parse_metric(self.get(t, entry, "metric", str), where=f"{entry} field 'metric'")
            except InputError as exc:
                raise self.fail(entry, str(exc)) from None
            unit = self.get(t, entry, "unit", str, allowed=("%", "cc", "Gy"))
            if metric.is_dose != (unit == "Gy"):
                raise self.fail(entry, f"unit {unit!r} does not fit metric {metric.text!r}")
            out.append(CoverageGoal(
                id=self.get(t, entry, "id", str),
                organ=self.organ_ref(t, entry, "organ", organs),
                metric=metric,
                comparison=self.get(t, entry, "comparison", str, allowed=COMPARISONS),
                value=self.get(t, entry, "value", float),
                unit=unit,
            ))
        return tuple(out)

    def eligibility(self, t: Mapping[str, Any]) -> EligibilityCriteria:
        entry = "[eligibility]"
        self.check_fields(t, entry, ["min_prior_eqd2_gy", "prior_alpha_beta_gy", "min_interval_months",
                                     "min_expected_survival_months", "high_grade_bilsky", "unstable_sins_at_least",
                                     "prior_sbrt_min_gy_per_fraction"])
        bilsky = self.get(t, entry, "high_grade_bilsky", list)
        bad = [b for b in bilsky if b not in BILSKY_GRADES]
        if bad:
            raise self.fail(entry, f"high_grade_bilsky has unknown grade(s) {bad}; grades: {list(BILSKY_GRADES)}")
        return EligibilityCriteria(
            min_prior_eqd2_gy=self.positive(t, entry, "min_prior_eqd2_gy"),
            prior_alpha_beta_gy=self.positive(t, entry, "prior_alpha_beta_gy"),
            min_interval_months=self.get(t, entry, "min_interval_months", float),
            min_expected_survival_months=self.get(t, entry, "min_expected_survival_months", float),
            high_grade_bilsky=tuple(bilsky),
            unstable_sins_at_least=self.get(t, entry, "unstable_sins_at_least", int),
            prior_sbrt_min_gy_per_fraction=self.positive(t, entry, "prior_sbrt_min_gy_per_fraction", default=5.0),
        )


BILSKY_GRADES = ("0", "1a", "1b", "1c", "2", "3")


def normalize_roi_name(name: str) -> str:
    """Case-folded ROI name without spaces, '_', '-' and '.' (the alias-matching key)."""
    return re.sub(r"[\s_.\-]+", "", name).casefold()


@dataclass(frozen=True)
class RoiMatch:
    """Result of matching a plan's ROI names to protocol organs.

    Attributes
    ----------
    organ_to_roi : dict
        Organ key → the one ROI name matched to it.
    unmatched_rois : tuple of str
        ROI names no organ claims (reported, never guessed).
    missing_organs : tuple of str
        Organ keys with no ROI.
    """

    organ_to_roi: Mapping[str, str]
    unmatched_rois: Tuple[str, ...]
    missing_organs: Tuple[str, ...]


def match_roi_names(roi_names: Sequence[str], protocol: Protocol,
                    overrides: Optional[Mapping[str, str]] = None) -> RoiMatch:
    """Match ROI names to the protocol's organs through its alias table.

    Parameters
    ----------
    roi_names : sequence of str
    protocol : Protocol
    overrides : mapping organ key → ROI name, optional
        Explicit choices (from the user's configuration) that win over aliases.

    Raises
    ------
    constraints.errors.InputError
        Two ROIs match one organ (ambiguous: name both), or an override names an
        unknown organ or ROI.
    """
    overrides = dict(overrides or {})
    names = list(roi_names)
    for organ, roi in overrides.items():
        if organ not in protocol.organs:
            raise InputError(f"ROI override names unknown organ {organ!r}; known organs: {sorted(protocol.organs)}")
        if roi not in names:
            raise InputError(f"ROI override for {organ!r} names ROI {roi!r}, which the plan does not have")
    alias_to_organ = {normalize_roi_name(a): key for key, o in protocol.organs.items() for a in o.aliases}
    found: Dict[str, List[str]] = {}
    for name in names:
        key = alias_to_organ.get(normalize_roi_name(name))
        if key is not None and key not in overrides:
            found.setdefault(key, []).append(name)
    for key, rois in found.items():
        if len(rois) > 1:
            raise InputError(
                f"ROIs {rois} all match organ {key!r}; choose one in the configuration (roi_overrides)"
            )
    organ_to_roi = {k: v[0] for k, v in found.items()}
    organ_to_roi.update(overrides)
    claimed = set(organ_to_roi.values())
    return RoiMatch(
        organ_to_roi=organ_to_roi,
        unmatched_rois=tuple(n for n in names if n not in claimed),
        missing_organs=tuple(k for k in protocol.organs if k not in organ_to_roi),
    )
