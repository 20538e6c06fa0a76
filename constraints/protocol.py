"""Protocols as data: a TOML file, validated once on load, shown verbatim.

A protocol names organs (with α/β and ROI-name aliases), per-organ limits in a
stated *domain* (SBRT-only physical dose, SBRT-only or cumulative BED/EQD2), limit
tables (the cord-PRV rule of the seed study), PTVeval coverage goals and the
eligibility thresholds.  Every error names the file, the entry and the field.

The built-in protocol ``koide2024`` lives in ``constraints/protocols/koide2024.toml``.
The model (frozen dataclasses) is in :mod:`constraints._protocol_model`, the
validation in :mod:`constraints._protocol_loader`, the ROI-name matching in
:mod:`constraints.roi_matching`; all public names are importable from here.
"""
from __future__ import annotations

import hashlib
import os
import sys
from typing import Tuple

from ._protocol_loader import SUPPORTED_FORMAT, _Parser
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
from .errors import ProtocolError
from .roi_matching import RoiMatch, match_roi_names, normalize_roi_name

# BILSKY_GRADES, COMPARISONS, ORGAN_KINDS, SUPPORTED_FORMAT and normalize_roi_name are
# re-exported too (imported from here by eligibility and the tests), outside __all__ as before.

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
