"""Exempting a volume of a banded organ from its strict limit, as a planner does for a D1cc.

An organ whose largest-volume cumulative limit is a volume metric (the esophagus' D1cc)
may exceed its strict per-voxel limit on less than that volume.  Where no hot region
near the target fits the volume (:func:`tps_scripts.limit_zones.build_zones`), each band
zone of the organ gets a MaxDvh constraint at its strict level exempting a share of the
volume, and a *cap* zone on the same ROI takes a MaxDose at the relaxed limit (every
limit but the largest-volume one).  The shares add up to ``fraction`` × the volume, so the
organ's volume above its strict limit stays within it whatever band the dose lands in:
a voxel above its band's lowest strict level is the only kind that can breach the
strict map.  The shares follow the plan as loaded: the band volume within ``near_gy``
of its strict level there (same beams, so much the same dose pattern).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from constraints.evaluation import PlanCase
from constraints.protocol import Protocol
from optimizer.organ_limits import OrganLimits

from .limit_zones import Zone

__all__ = ["add_exemptions", "exemption_failures"]


def add_exemptions(zones: List[Zone], case: PlanCase, limits: Dict[str, OrganLimits], *, fraction: float,
                   near_gy: float) -> List[Zone]:
    """Set ``exempt_cc`` on the band zones of every organ with a hot-volume budget but no hot
    region, and return the cap zones to add (one per exempting band, on its ROI).

    Parameters
    ----------
    zones : list of Zone
        As built by :func:`~tps_scripts.limit_zones.build_zones`.
    case : PlanCase
        Its SBRT dose (total, Gy) is the plan as loaded's.
    limits : dict of OrganLimits
        ``hot_budget_cc`` (cc) and ``relaxed_gy`` (Gy) per organ.
    fraction : float
        Share of the budget exempted in all (0–1], e.g. 0.9.
    near_gy : float, Gy
        A band's share is its volume whose plan-as-loaded dose is above its strict level − ``near_gy``.

    Returns
    -------
    list of Zone
        The cap zones (kind ``'cap'``, the relaxed limit, ``created`` False: the ROI is the band's).
    """
    dose = np.asarray(case.sbrt.dose_gy, dtype=np.float64)
    voxel_cc = case.grid.voxel_volume_cc
    caps: List[Zone] = []
    for organ, ol in limits.items():
        bands = [z for z in zones if z.organ == organ and z.kind == "band"]
        if ol.relaxed_gy is None or not ol.hot_budget_cc or not bands or any(
                z.organ == organ and z.kind == "hot" for z in zones):
            continue
        near = np.array([float(z.coverage[(z.coverage > 0) & (dose > z.lowest_limit_gy() - near_gy)].sum())
                         * voxel_cc for z in bands])
        if near.sum() <= 0:
            continue                 # the plan as loaded stays clear of the strict levels: nothing to exempt
        shares = fraction * ol.hot_budget_cc * near / near.sum()
        for z, share in zip(bands, shares):
            if share <= 0:
                continue
            z.exempt_cc = float(min(share, 0.5 * z.volume_cc_voxels * voxel_cc))
            caps.append(Zone(organ, z.roi_name, "cap", z.coverage, ol.relaxed_gy, z.margin_gy, False))
    return caps


def exemption_failures(failed_ids: Sequence[str], protocol: Protocol, limits: Dict[str, OrganLimits]) -> List[str]:
    """The organs whose failing constraint (ids in ``failed_ids``) is the one their exemption
    spends: a cumulative D_V of the organ's ``hot_budget_cc``, or a cumulative Dx% (its volume
    depends on the organ's)."""
    out: List[str] = []
    for c in protocol.constraints:
        if c.id not in failed_ids or c.organ not in limits or c.organ in out:
            continue
        budget = limits[c.organ].hot_budget_cc
        spent = c.metric.kind == "d_percent" or (c.metric.kind == "d_cc" and budget is not None
                                                 and abs(float(c.metric.parameter) - budget) < 1e-9)
        if budget and c.domain.is_cumulative and spent:
            out.append(c.organ)
    return out
