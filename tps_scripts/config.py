"""The plug-in's configuration: what RayStation cannot tell (prior courses' fraction
counts, recovery, dates), ROI-name overrides, the protocol, case facts, output folder.

A configuration file is JSON or TOML; its path is given to the entry scripts by the
``REIRRAD_CONFIG`` environment variable (or the ``config_path`` argument).  Without
one, prior courses are found among the planning examination's evaluation doses and
their fraction counts read from their names (``"... 60Gy/30fx ..."``).

Example (TOML)::

    protocol = "koide2024"
    output_dir = "C:/reirrad_records"
    show_identity = false
    unknown_prior = "refuse"          # or "organ_max"
    max_optimizations = 6

    sbrt_date = "2025-11-20"          # optional: planned SBRT start (intervals from course dates)
    exclude_doses = ["Sum of all"]    # evaluation doses that are not prior courses

    [[prior]]
    name = "EBRT 2025"                # the evaluation dose's Name in RayStation
    fractions = 30
    recovery = 0.0                    # one number for every organ, or a table: { aorta = 0.25 }
    date = "2025-03-14"               # last fraction
    total_gy = 60                     # optional: the course's total, when its name does not state it
    uncertainty_mm = 3                # optional: registration uncertainty of the mapped dose

    [roi_overrides]
    esophagus = "Esoph_new"

    [case]                            # optional: eligibility (seed Fig. 1)
    prior_eqd2_gy = 60
    interval_months = 7.8
    expected_survival_months = 6
    bilsky_grade = "1b"
    sins = 5
    surgery_possible = true
    chemotherapy = true               # the seed's esophageal risk factors (unknown when not given)
    active_esophageal_or_mediastinal_tumor = true
    esophageal_instrumentation = false
    prior_sbrt_same_level = false

A recovery (r > 0) on an organ whose protocol limits forbid it is refused
(:func:`constraints.recovery.check_recovery`).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple, Union

from constraints.eligibility import CaseFacts
from constraints.errors import InputError
from optimizer.limit_map import UNKNOWN_PRIOR_POLICIES

__all__ = ["PriorConfig", "PluginConfig", "load_config", "CONFIG_ENV"]

CONFIG_ENV = "REIRRAD_CONFIG"
OUTPUT_ENV = "REIRRAD_OUTPUT_DIR"


@dataclass(frozen=True)
class PriorConfig:
    """One prior course as the user describes it."""

    name: str
    fractions: int
    recovery: Union[float, Mapping[str, float]] = 0.0   # every organ, or organ key -> r
    date: Optional[_dt.date] = None
    total_gy: Optional[float] = None
    uncertainty_mm: float = 0.0


@dataclass(frozen=True)
class PluginConfig:
    protocol: str = "koide2024"
    output_dir: Optional[str] = None
    show_identity: bool = False
    unknown_prior: str = "refuse"
    max_optimizations: int = 6
    priors: Tuple[PriorConfig, ...] = ()
    roi_overrides: Mapping[str, str] = field(default_factory=dict)
    case: Optional[CaseFacts] = None
    source: str = "defaults"
    sbrt_date: Optional[_dt.date] = None
    exclude_doses: Tuple[str, ...] = ()

    def output_directory(self) -> str:
        """Where records go: the configured folder, ``$REIRRAD_OUTPUT_DIR``, or ``~/reirrad_records``."""
        return self.output_dir or os.environ.get(OUTPUT_ENV) or os.path.join(os.path.expanduser("~"),
                                                                               "reirrad_records")


_KNOWN = {"protocol", "output_dir", "show_identity", "unknown_prior", "max_optimizations", "prior",
          "roi_overrides", "case", "sbrt_date", "exclude_doses"}


def load_config(path: Optional[str] = None) -> PluginConfig:
    """Load the configuration from ``path``, else ``$REIRRAD_CONFIG``, else defaults.

    Raises
    ------
    constraints.errors.InputError
        Unreadable file, bad syntax, unknown or invalid field (the message names
        the file and the field).
    """
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return PluginConfig()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InputError(f"configuration {path!r} cannot be read: {exc.strerror}") from None
    try:
        if path.lower().endswith(".json"):
            data = json.loads(raw.decode("utf-8"))
        else:
            if sys.version_info >= (3, 11):
                import tomllib as toml  # novermin (guarded)
            else:
                import tomli as toml
            data = toml.loads(raw.decode("utf-8"))
    except Exception as exc:  # json/toml decode errors of several classes
        raise InputError(f"configuration {path!r} cannot be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"configuration {path!r} must be a table/object at the top level")
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise InputError(f"configuration {path!r}: unknown field(s) {unknown}; known: {sorted(_KNOWN)}")

    def fail(fieldname: str, msg: str) -> InputError:
        return InputError(f"configuration {path!r}, field {fieldname!r}: {msg}")

    unknown_prior = data.get("unknown_prior", "refuse")
    if unknown_prior not in UNKNOWN_PRIOR_POLICIES:
        raise fail("unknown_prior", f"must be one of {list(UNKNOWN_PRIOR_POLICIES)}, got {unknown_prior!r}")
    max_opt = data.get("max_optimizations", PluginConfig.max_optimizations)
    if isinstance(max_opt, bool) or not isinstance(max_opt, int) or not 1 <= max_opt <= 20:
        raise fail("max_optimizations", f"must be an integer 1-20, got {max_opt!r}")
    show = data.get("show_identity", False)
    if not isinstance(show, bool):
        raise fail("show_identity", f"must be true or false, got {show!r}")
    priors = []
    for i, p in enumerate(data.get("prior", []) or []):
        where = f"prior[{i}]"
        if not isinstance(p, dict):
            raise fail(where, "must be a table with name, fractions[, recovery, date, total_gy, uncertainty_mm]")
        extra = sorted(set(p) - {"name", "fractions", "recovery", "date", "total_gy", "uncertainty_mm"})
        if extra:
            raise fail(where, f"unknown field(s) {extra}")
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise fail(f"{where}.name", f"must be the evaluation dose's name, got {name!r}")
        fx = p.get("fractions")
        if isinstance(fx, bool) or not isinstance(fx, int) or fx < 1:
            raise fail(f"{where}.fractions", f"must be an integer >= 1, got {fx!r}")
        rec = _recovery(p.get("recovery", 0.0), f"{where}.recovery", fail)
        total = p.get("total_gy")
        if total is not None and (isinstance(total, bool) or not isinstance(total, (int, float))
                                  or not 0 < total < 1000):
            raise fail(f"{where}.total_gy", f"must be the course's total dose in Gy (0-1000), got {total!r}")
        unc = p.get("uncertainty_mm", 0.0)
        if isinstance(unc, bool) or not isinstance(unc, (int, float)) or not 0 <= unc <= 20:
            raise fail(f"{where}.uncertainty_mm", f"must be a radius in mm, 0-20, got {unc!r}")
        priors.append(PriorConfig(name, fx, rec, _date(p.get("date"), f"{where}.date", fail),
                                  None if total is None else float(total), float(unc)))
    names = [p.name for p in priors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise fail("prior", f"evaluation dose(s) {dup} listed more than once")
    excl = data.get("exclude_doses", []) or []
    if not isinstance(excl, list) or not all(isinstance(x, str) and x for x in excl):
        raise fail("exclude_doses", f"must be a list of evaluation dose names, got {excl!r}")
    both = sorted(set(excl) & set(names))
    if both:
        raise fail("exclude_doses", f"{both} also listed as prior course(s): a dose is either a prior or excluded")
    overrides = data.get("roi_overrides", {}) or {}
    if not isinstance(overrides, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in overrides.items()):
        raise fail("roi_overrides", "must map organ keys to ROI names")
    case = None
    if "case" in data:
        c = data["case"]
        if not isinstance(c, dict):
            raise fail("case", "must be a table")
        try:
            case = CaseFacts(**c)
        except TypeError as exc:
            raise fail("case", str(exc)) from None
        except InputError as exc:
            raise fail("case", str(exc)) from None
    out = data.get("output_dir")
    if out is not None and not isinstance(out, str):
        raise fail("output_dir", f"must be a folder path, got {out!r}")
    proto = data.get("protocol", "koide2024")
    if not isinstance(proto, str):
        raise fail("protocol", f"must be a protocol name or path, got {proto!r}")
    return PluginConfig(protocol=proto, output_dir=out, show_identity=show, unknown_prior=unknown_prior,
                        max_optimizations=max_opt, priors=tuple(priors), roi_overrides=dict(overrides),
                        case=case, source=path, sbrt_date=_date(data.get("sbrt_date"), "sbrt_date", fail),
                        exclude_doses=tuple(excl))


def _recovery(rec, where: str, fail):
    """A number in [0, 1) for every organ, or a table organ key -> number in [0, 1)."""
    def one(v, name):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise fail(name, f"must be in [0, 1), got {v!r}")
        return float(v)
    if isinstance(rec, dict):
        return {str(k): one(v, f"{where}.{k}") for k, v in rec.items()}
    return one(rec, where)


def _date(date, where: str, fail) -> Optional[_dt.date]:
    if date is None:
        return None
    if isinstance(date, str):
        try:
            return _dt.date.fromisoformat(date)
        except ValueError:
            raise fail(where, f"must be an ISO date YYYY-MM-DD, got {date!r}") from None
    if isinstance(date, _dt.datetime):
        return date.date()
    if not isinstance(date, _dt.date):
        raise fail(where, f"must be an ISO date, got {date!r}")
    return date
