"""Recovery per course and per organ, checked against what the protocol's limits allow.

A cumulative limit derived from doses summed *without* recovery (the seed's
esophageal limits; the cord table's input, Koide 2024) must be applied to doses
summed without recovery: discounting the prior there reads a stricter limit as a
looser one (with r = 0.25 the seed's fatal case, 227/209/175 Gy3, passes all three
esophageal limits).  A protocol states per limit whether recovery may discount the
prior (``recovery_allowed``, default false); a claimed recovery (r > 0) on an organ
one of whose limits forbids it is refused, naming the course, the organ and the limit.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

from .dose_course import DoseCourse
from .errors import InputError
from .protocol import Protocol

__all__ = ["limits_forbidding_recovery", "check_recovery", "recovery_assumptions"]


def limits_forbidding_recovery(protocol: Protocol) -> Dict[str, List[str]]:
    """Organ key → ids of the protocol's limits on it that forbid recovery.

    Cumulative constraints with ``recovery_allowed = false`` (advisory ones too: they
    are shown next to the binding ones and must not be loosened either) and limit
    tables whose input (a prior dose) forbids it (named ``<constraint id> (table input)``).
    """
    out: Dict[str, List[str]] = {}
    for c in protocol.constraints:
        if c.domain.is_cumulative and not c.recovery_allowed:
            out.setdefault(c.organ, []).append(c.id)
        if c.limit_table is not None and not protocol.tables[c.limit_table].recovery_allowed:
            out.setdefault(protocol.tables[c.limit_table].input_organ, []).append(f"{c.id} (table input)")
    return out


def check_recovery(courses: Sequence[DoseCourse], protocol: Protocol) -> None:
    """Refuse a claimed recovery that the protocol's limits forbid.

    A scalar recovery applies to every organ of the protocol; a per-organ mapping
    must name organs of the protocol.

    Raises
    ------
    constraints.errors.InputError
        Naming the course, the organ, the recovery claimed and the limit(s) that
        forbid it, and what to do.
    """
    forbidding = limits_forbidding_recovery(protocol)
    for course in courses:
        rec = course.recovery
        if hasattr(rec, "items"):
            unknown = sorted(k for k in rec if k not in protocol.organs)
            if unknown:
                raise InputError(f"prior course {course.label!r}: recovery names unknown organ(s) {unknown}; "
                                 f"organs of protocol {protocol.name!r}: {sorted(protocol.organs)}")
        bad = [(organ, course.recovery_for(organ)) for organ in protocol.organs
               if course.recovery_for(organ) > 0 and organ in forbidding]
        if bad:
            raise InputError(
                f"prior course {course.label!r} claims recovery "
                + "; ".join(f"{r:g} for organ {organ!r}, whose limit(s) {', '.join(forbidding[organ])} forbid it"
                            for organ, r in bad)
                + f" (protocol {protocol.name!r}: derived from doses summed without recovery). Set this course's "
                f"recovery to 0 for {', '.join(repr(o) for o, _ in bad)} (a per-organ table, e.g. "
                "recovery = { aorta = 0.25 }, applies only to the organs it names)")


def recovery_assumptions(courses: Sequence[DoseCourse]) -> List[str]:
    """Every recovery used, in words (one line per course that claims one; one line if none)."""
    lines = []
    for course in courses:
        rec = course.recovery
        if hasattr(rec, "items"):
            used = {k: v for k, v in rec.items() if v > 0}
            if used:
                lines.append(f"prior course {course.label!r}: recovery assumed "
                             + ", ".join(f"{k} r = {v:g} (BED counted at {100 * (1 - v):g} %)"
                                         for k, v in sorted(used.items()))
                             + "; other organs none")
        elif rec > 0:
            lines.append(f"prior course {course.label!r}: recovery r = {rec:g} assumed for every organ "
                         f"(BED counted at {100 * (1 - rec):g} %)")
    if not lines:
        lines.append("no recovery assumed: every prior course's BED counts in full in every organ")
    return lines
