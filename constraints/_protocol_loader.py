"""Validation of a protocol's TOML mapping into the model, naming file, entry and field.

:func:`constraints.protocol.load_protocol` reads and parses the file and hands the
mapping to :class:`_Parser`; every check lives here, once, at the boundary.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ._protocol_model import (
    BILSKY_GRADES,
    COMPARISONS,
    DOMAINS,
    ORGAN_KINDS,
    Constraint,
    CoverageGoal,
    EligibilityCriteria,
    LimitTable,
    Organ,
    Prescription,
    Protocol,
    ReirradiationRule,
)
from .domain import DoseDomain
from .errors import InputError, ProtocolError
from .metric import parse_metric
from .roi_matching import normalize_roi_name

SUPPORTED_FORMAT = 1


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
            if c is None or c.limit_table is None or c.domain is not DoseDomain.SBRT_PHYSICAL:
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
                if not organ_keys:
                    raise self.fail(entry, "field 'organs' must name at least one organ")
                for k in organ_keys:
                    if not isinstance(k, str) or k not in organs:
                        raise self.fail(entry, f"field 'organs' names unknown organ {k!r}; known organs: {sorted(organs)}")
            domain = DoseDomain(self.get(t, entry, "domain", str, allowed=tuple(d.value for d in DOMAINS)))
            unit = self.get(t, entry, "unit", str)
            if unit != DOMAINS[domain]:
                raise self.fail(entry, f"unit {unit!r} does not match domain {domain.value!r}, whose limits are in {DOMAINS[domain]!r}")
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
            if recovery_allowed and not domain.is_cumulative:
                raise self.fail(entry, f"field 'recovery_allowed' applies to cumulative domains only, not {domain.value!r}")
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
