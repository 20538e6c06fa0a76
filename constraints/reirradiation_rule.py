"""The binding SBRT-only cord limit: the lower of the protocol's table and the
generalized re-irradiation rule of Sahgal et al. 2012 (both in the protocol file).

The seed's cord-PRV table (Koide 2024, Table S2) is derived from Sahgal 2012 but is
flat at 10.8 Gy above a prior BED of 100 Gy2, where its evidence ends (near 107 Gy2).
Sahgal's rule keeps falling: cumulative Pmax ≤ 70 Gy EQD2 (α/β 2), SBRT alone ≤ 25 Gy
EQD2, SBRT/cumulative EQD2 ≤ 0.5, ≥ 5 months between courses.  With prior BED ``B``
and ``n`` new fractions, each bound is a physical dose (DESIGN §2)::

    D(X; n) = (n α/β / 2) (sqrt(1 + 4X/(n α/β)) − 1)
    cumulative: D(X_cum − B),  SBRT alone: D(X_sbrt),  ratio: D(B ρ/(1 − ρ))

with ``X = EQD2 (1 + 2/α/β)``.  ``B ≥ X_cum`` leaves nothing: the limit is 0 and the
case is exhausted (not eligible).

Examples
--------
>>> from constraints.protocol import load_protocol
>>> p = load_protocol("koide2024")
>>> c = [c for c in p.constraints if c.limit_table][0]
>>> b = binding_limit(p, c, 120.0, 2)
>>> round(b.limit_gy, 3), b.rule
(7.165, 'Sahgal-cumulative')
>>> binding_limit(p, c, 95.5, 2).limit_gy, binding_limit(p, c, 95.5, 2).rule
(11.4, 'table')
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .errors import InputError
from .lq import _bed, _dose_from_bed
from .protocol import Constraint, Protocol, ReirradiationRule

__all__ = ["BindingLimit", "binding_limit", "rule_dose_gy", "TABLE_RULE"]

#: name of the rule when the protocol's table binds
TABLE_RULE = "table"


@dataclass(frozen=True)
class BindingLimit:
    """The SBRT-only limit of a table constraint and the rule that sets it.

    Attributes
    ----------
    limit_gy : float
        Binding limit, Gy (physical, total over ``fractions``).
    rule : str
        ``'table'`` or ``'<label>-cumulative'`` / ``'<label>-SBRT'`` / ``'<label>-ratio'``
        (e.g. ``'Sahgal-cumulative'``).
    candidates : dict of str to float or None
        Each rule's limit, Gy (None: not applied, see ``conditions``).
    exhausted : bool
        The prior alone reaches the cumulative limit: no new dose is allowed.
    prior_bed_gy : float
        The table input (prior BED, Gy of the table's α/β).
    fractions : int
    conditions : dict of str to str
        ``'ratio'`` and ``'interval'``: 'met ...', 'NOT met ...', 'unknown ...' or
        'not applicable ...' in words.
    conditions_failed : tuple of str
        Conditions known to be violated (the limit cannot be relied on).
    """

    limit_gy: float
    rule: str
    candidates: Dict[str, Optional[float]]
    exhausted: bool
    prior_bed_gy: float
    fractions: int
    conditions: Dict[str, str] = field(default_factory=dict)
    conditions_failed: Tuple[str, ...] = ()

    def note(self) -> str:
        """One line naming the binding rule and the numbers (goes into the records)."""
        parts = [f"binding rule: {self.rule} ({self.limit_gy:.2f} Gy)"]
        parts.append("; ".join(f"{k} {'-' if v is None else format(v, '.2f')} Gy" for k, v in self.candidates.items()))
        if self.exhausted:
            parts.append("cumulative cord tolerance exhausted by the prior alone: not eligible")
        parts.extend(f"{k}: {v}" for k, v in self.conditions.items())
        return "; ".join(parts)


def rule_dose_gy(bed_gy: float, fractions: int, alpha_beta_gy: float) -> float:
    """Highest physical dose in ``fractions`` whose BED is ≤ ``bed_gy`` (Gy; 0 for ≤ 0).

    The closed form is lowered by one ulp at a time where round-off would put its
    BED above ``bed_gy`` (so a dose at the limit never exceeds the rule).
    """
    if bed_gy <= 0:
        return 0.0
    d = float(_dose_from_bed(bed_gy, fractions, alpha_beta_gy))
    while float(_bed(d, fractions, alpha_beta_gy)) > bed_gy:
        d = float(np.nextafter(d, 0.0))
    return d


def binding_limit(protocol: Protocol, constraint: Constraint, prior_bed_gy: float, fractions: int, *,
                  has_prior: bool = True, interval_months: Optional[float] = None) -> BindingLimit:
    """The binding SBRT-only limit of a table constraint at a prior BED.

    Parameters
    ----------
    protocol : Protocol
    constraint : Constraint
        A constraint with ``limit_table``.
    prior_bed_gy : float
        Table input: prior BED of the table's input organ/metric (Gy, α/β of the table),
        summed over all prior courses without recovery.
    fractions : int
        Fractions of the new course.
    has_prior : bool
        False when the patient has no prior course (the ratio rule then does not apply).
    interval_months : float, optional
        Months from the last prior course to the new one; None = unknown.

    Raises
    ------
    constraints.errors.InputError
        Not a table constraint; prior BED not finite or < 0; fractions < 1.
    """
    if constraint.limit_table is None:
        raise InputError(f"constraint {constraint.id!r} has no limit table")
    if isinstance(prior_bed_gy, bool) or not isinstance(prior_bed_gy, (int, float)) \
            or not math.isfinite(prior_bed_gy) or prior_bed_gy < 0:
        raise InputError(f"table {constraint.limit_table!r}: input must be a finite number >= 0 (prior BED, Gy), "
                         f"got {prior_bed_gy!r}")
    if isinstance(fractions, bool) or not isinstance(fractions, int) or fractions < 1:
        raise InputError(f"fractions must be an integer >= 1, got {fractions!r}")
    table_limit = protocol.limit_of(constraint, table_input=float(prior_bed_gy))
    rule = protocol.rule_for(constraint)
    candidates: Dict[str, Optional[float]] = {TABLE_RULE: table_limit}
    if rule is None:
        return BindingLimit(table_limit, TABLE_RULE, candidates, False, float(prior_bed_gy), fractions)
    return _with_rule(rule, table_limit, float(prior_bed_gy), fractions, has_prior, interval_months)


def _with_rule(rule: ReirradiationRule, table_limit: float, b: float, n: int, has_prior: bool,
               interval_months: Optional[float]) -> BindingLimit:
    ab = rule.alpha_beta_gy
    to_bed = 1.0 + 2.0 / ab
    x_cum = rule.cumulative_max_eqd2_gy * to_bed
    rho = rule.max_sbrt_to_cumulative_ratio
    cand: Dict[str, Optional[float]] = {TABLE_RULE: table_limit}
    cand[f"{rule.label}-cumulative"] = rule_dose_gy(x_cum - b, n, ab)
    cand[f"{rule.label}-SBRT"] = rule_dose_gy(rule.sbrt_max_eqd2_gy * to_bed, n, ab)
    conditions: Dict[str, str] = {}
    failed = []
    if has_prior:
        # S/(P + S) <= rho  <=>  S <= P rho/(1 - rho)  (S, P: SBRT and prior EQD2, same a/b)
        cand[f"{rule.label}-ratio"] = rule_dose_gy(b * rho / (1.0 - rho), n, ab)
        conditions["ratio"] = (f"SBRT/cumulative EQD2 <= {rho:g} enforced as a dose limit "
                               f"(SBRT BED <= {b * rho / (1.0 - rho):.1f} Gy{ab:g})")
    else:
        cand[f"{rule.label}-ratio"] = None
        conditions["ratio"] = "not applicable (no prior course)"
    if not has_prior:
        conditions["interval"] = "not applicable (no prior course)"
    elif interval_months is None:
        conditions["interval"] = (f"unknown (course dates not given; {rule.label} needs >= "
                                  f"{rule.min_interval_months:g} months)")
    elif interval_months >= rule.min_interval_months:
        conditions["interval"] = f"met ({interval_months:.1f} months >= {rule.min_interval_months:g})"
    else:
        conditions["interval"] = (f"NOT met ({interval_months:.1f} months < {rule.min_interval_months:g}): "
                                  f"outside the evidence of {rule.label}'s rule")
        failed.append("interval")
    exhausted = b >= x_cum
    # the table wins ties: it is the published rule of the protocol
    best_name, best = TABLE_RULE, table_limit
    for name, v in cand.items():
        if v is not None and v < best:
            best_name, best = name, v
    return BindingLimit(best, best_name, cand, exhausted, b, n, conditions, tuple(failed))
