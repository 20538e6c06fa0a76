"""How to get there: per-voxel SBRT limit maps, limit zones for a TPS optimizer,
closed-loop coverage tuning, and (offline only) convex fluence-map optimization.

The limit-map, zone and tuning modules depend on numpy only and run on CPython 3.8;
offline modules import cvxpy, scipy and matplotlib inside the functions that use them.

Public API
----------
:class:`LimitMap`, :func:`sbrt_limit_map`, :func:`limit_from_prior_bed`
"""
from .limit_map import LimitMap, limit_from_prior_bed, sbrt_limit_map

__all__ = ["LimitMap", "sbrt_limit_map", "limit_from_prior_bed"]
