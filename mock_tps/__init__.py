"""A faithful stand-in for the RayStation scripting API, with spine re-irradiation
phantoms, a photon dose engine and a TPS-like optimizer, used to test ``tps_scripts``.

Load a patient with :func:`load_phantom` (a built-in phantom, names in
``PHANTOMS``) or :func:`load_patient_data` (any :class:`PhantomData`); then
``import connect`` (``raystation`` in 2025) and use ``get_current`` as in RayStation.
``load_phantom(name, rs_version='11B')`` picks the RayStation version the mock
behaves as (``RS_VERSIONS``; default ``DEFAULT_RS_VERSION``).
Mock-only helpers: :func:`snapshot`, :func:`approve`, :func:`statistics`,
:func:`unload`.  Importing this package loads nothing and imports no phantom code.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ._api import ArgumentException, InvalidOperationException
from ._loader import load_patient_data, load_phantom, unload
from ._phantom_data import PhantomData
from ._snapshot import approve, snapshot
from ._versions import DEFAULT_RS_VERSION, RS_VERSIONS, RsVersion

__all__ = [
    "load_phantom",
    "load_patient_data",
    "unload",
    "PHANTOMS",
    "PhantomData",
    "snapshot",
    "approve",
    "statistics",
    "InvalidOperationException",
    "ArgumentException",
    "RS_VERSIONS",
    "DEFAULT_RS_VERSION",
    "RsVersion",
]


def statistics() -> Dict[str, float]:
    """Mock-only counters: optimization runs/iterations/seconds, dose computations,
    composite actions, rollbacks and snapshot seconds (a copy)."""
    from ._bridge import _session
    return dict(_session().stats)


def _phantom_names() -> Tuple[str, ...]:
    from ._phantoms import PHANTOM_BUILDERS
    return tuple(PHANTOM_BUILDERS)


def __getattr__(name: str) -> Any:
    if name == "PHANTOMS":
        return _phantom_names()
    raise AttributeError(f"module 'mock_tps' has no attribute '{name}'")
