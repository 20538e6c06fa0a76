"""How to get there: per-voxel SBRT limit maps, limit zones for a TPS optimizer,
closed-loop coverage tuning, and (offline only) convex fluence-map optimization.

The limit-map, zone and tuning modules depend on numpy only and run on CPython 3.8;
offline modules import cvxpy, scipy and matplotlib inside the functions that use them.

Public API
----------
:class:`LimitMap`, :func:`sbrt_limit_map`, :func:`limit_from_prior_bed`
"""
from __future__ import annotations

import importlib
from typing import Any, List

__all__ = ["LimitMap", "sbrt_limit_map", "limit_from_prior_bed"]


def __getattr__(name: str) -> Any:
    """A public name, imported from :mod:`optimizer.limit_map` on first use (PEP 562), so that
    the command line's sub-commands do not import the limit maps unless they use them."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.limit_map"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
