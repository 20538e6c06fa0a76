"""From a protocol and a plan case to per-voxel SBRT limits for each organ.

For each organ of the plan the protocol's binding constraints become maps of the
highest new physical dose per voxel:

* cumulative constraints (BED or EQD2, converted to BED of the organ's α/β) give a
  per-voxel map each (:func:`optimizer.limit_map.sbrt_limit_map`);
* SBRT-only constraints give a cap (physical; SBRT-only BED/EQD2 converted to a
  physical dose in the new fractionation; a table limit looked up at the prior dose).

``strict_gy`` is the minimum of all maps and caps: a new dose below it everywhere
meets every constraint of the organ, whatever the metric (Dmax, D0.035cc, D1cc).
``relaxed_gy`` drops the constraint with the largest volume (e.g. D1cc): it may be
used in a hot region smaller than that volume (see :mod:`optimizer.zones`).

Numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from constraints.domain import DoseDomain
from constraints.errors import InputError
from constraints.evaluation import PlanCase, organ_structure, table_limit
from constraints.lq import dose_from_bed_unchecked as _dose_from_bed
from constraints.recovery import check_recovery
from constraints.protocol import Constraint, Protocol

from .limit_map import sbrt_limit_map

__all__ = ["OrganLimits", "organ_limits", "sbrt_cap_gy", "cumulative_limit_bed_gy"]


@dataclass(frozen=True, eq=False)
class OrganLimits:
    """Per-voxel SBRT limits of one organ.

    Attributes
    ----------
    organ, roi_name : str
    strict_gy : ndarray, Gy
        Lowest limit per voxel over every binding constraint (conservative).
    relaxed_gy : ndarray or None, Gy
        As ``strict_gy`` without the largest-volume cumulative constraint.
    hot_budget_cc : float or None
        Volume of that constraint (the hot region must stay below it).
    cap_gy : float or None
        Lowest SBRT-only physical cap.
    sources : tuple of str
        Constraint ids used, with their limits, for the record.
    exhausted_voxels : int
        Voxels whose prior dose alone reaches a cumulative limit (limit 0).
    """

    organ: str
    roi_name: str
    strict_gy: np.ndarray
    relaxed_gy: Optional[np.ndarray]
    hot_budget_cc: Optional[float]
    cap_gy: Optional[float]
    sources: Tuple[str, ...]
    exhausted_voxels: int


def cumulative_limit_bed_gy(c: Constraint, alpha_beta_gy: float) -> float:
    """The cumulative limit of a ``cumulative_bed``/``cumulative_eqd2`` constraint as BED (Gy):
    EQD2 limits convert as ``BED = EQD2 (1 + 2/α/β)``."""
    if c.domain is DoseDomain.CUMULATIVE_BED:
        return float(c.limit)
    return float(c.limit) * (1.0 + 2.0 / alpha_beta_gy)


def sbrt_cap_gy(case: PlanCase, protocol: Protocol, c: Constraint) -> float:
    """Physical SBRT-only cap (Gy, total over the new course) of an ``sbrt_*`` constraint.

    A table limit is looked up at the plan's prior dose; SBRT-only BED/EQD2 limits are
    converted to the physical dose that gives them in the new fractionation.
    """
    ab = protocol.organs[c.organ].alpha_beta_gy
    if c.limit_table is not None:
        limit = table_limit(case, protocol, c)[0].limit_gy   # the lower of the table and the cord rule
    else:
        limit = float(c.limit)
    if c.domain is DoseDomain.SBRT_EQD2:
        return float(_dose_from_bed(limit * (1 + 2 / ab), case.sbrt.fractions, ab))
    if c.domain is DoseDomain.SBRT_BED:
        return float(_dose_from_bed(limit, case.sbrt.fractions, ab))
    return limit


def _volume_cc(c: Constraint, organ_volume_cc: float) -> float:
    kind = c.metric.kind
    if kind in ("max",):
        return 0.0
    if kind == "d_cc":
        return float(c.metric.parameter)
    if kind == "d_percent":
        return float(c.metric.parameter) / 100.0 * organ_volume_cc
    raise InputError(f"constraint {c.id!r}: metric {c.metric.text!r} cannot be turned into a dose limit")


def organ_limits(case: PlanCase, protocol: Protocol, *, unknown_prior: str = "refuse") -> Dict[str, OrganLimits]:
    """Per-voxel limits of every organ of ``case`` that has binding constraints.

    Targets are skipped.  Constraints whose limit cannot be set (e.g. a table whose
    input organ is missing) raise; a plan that lacks an organ simply has no limits
    for it.
    """
    check_recovery(case.priors, protocol)
    fractions = case.sbrt.fractions
    out: Dict[str, OrganLimits] = {}
    for organ_key in case.structures:
        organ = protocol.organs[organ_key]
        if organ.kind == "target":
            continue
        structure = organ_structure(case, protocol, organ_key)
        ab = organ.alpha_beta_gy
        caps: List[float] = []
        cumulative: List[Tuple[float, np.ndarray, str, int]] = []   # (volume cc, map, id, exhausted)
        sources: List[str] = []
        for c in protocol.constraints_for(organ_key):
            if c.advisory:
                continue
            if c.domain.is_sbrt:
                limit = sbrt_cap_gy(case, protocol, c)
                caps.append(limit)
                sources.append(f"{c.id}: SBRT-only cap {limit:.2f} Gy")
                continue
            x = cumulative_limit_bed_gy(c, ab)
            m = sbrt_limit_map(case.priors, alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=fractions,
                               mask=structure.mask, unknown_prior=unknown_prior, organ=organ_key) if case.priors else \
                sbrt_limit_map([], alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=fractions,
                               mask=structure.mask)
            cumulative.append((_volume_cc(c, structure.volume_cc), np.asarray(m.limit_gy), c.id, m.n_exhausted))
            sources.append(f"{c.id}: cumulative {x:.1f} Gy BED (a/b {ab:g}) per voxel")
        if not caps and not cumulative:
            continue
        cap = min(caps) if caps else None
        base = np.full(case.grid.shape_zyx, np.inf if cap is None else cap)
        strict = base.copy()
        for _, m, _, _ in cumulative:
            strict = np.minimum(strict, m)
        relaxed = None
        budget = None
        if cumulative:
            cumulative.sort(key=lambda item: item[0])
            vmax = cumulative[-1][0]
            if vmax > 0:
                relaxed = base.copy()
                for v, m, _, _ in cumulative:
                    if v < vmax:
                        relaxed = np.minimum(relaxed, m)
                budget = vmax
        exhausted = max((e for *_, e in cumulative), default=0)
        out[organ_key] = OrganLimits(organ_key, structure.name, strict, relaxed, budget, cap, tuple(sources),
                                     exhausted)
    return out
