"""Audit records: a JSON record and a human text report per run, written next to each other.

The record holds the inputs (TPS object identities and dose digests), the protocol
(name, version, SHA-256), α/β and recovery used, the software version and the
results; the patient's name and ID only when the user asks (``show_identity``).
Two runs on the same inputs give identical records apart from ``created``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from typing import Any, Dict, List, Optional

from constraints.errors import InputError
from constraints.evaluation import Evaluation
from constraints.protocol import Protocol

__all__ = ["software_version", "protocol_block", "evaluation_block", "write_record", "to_jsonable"]


def software_version() -> str:
    try:
        from importlib.metadata import version  # Python 3.8+
        return version("reirrad")
    except Exception:  # not installed as a distribution (e.g. copied into RayStation)
        return "unknown"


def protocol_block(protocol: Protocol) -> Dict[str, Any]:
    return {"name": protocol.name, "version": protocol.version, "sha256": protocol.sha256,
            "alpha_beta_gy": {k: o.alpha_beta_gy for k, o in protocol.organs.items()}}


def evaluation_block(ev: Evaluation) -> Dict[str, Any]:
    return {
        "all_pass": ev.all_pass,
        "coverage_goals_met": ev.coverage_goals_met,
        "dvh_rules": "Dmax and D_V pass only when both the dose-grid voxel rule ('value') and the sub-voxel rule "
                     "('value_subvoxel', when read) pass; 'margin' is the smaller of the two. Derived organs (unspecified "
                     "tissue = External - (targets + margin), a set of dose-voxel centres) are read by the voxel "
                     "rule alone",
        "constraints": [
            {"id": r.constraint_id, "organ": r.organ, "roi": r.roi_name, "metric": r.metric, "domain": r.domain,
             "comparison": r.comparison, "unit": r.unit, "limit": r.limit, "value": r.value,
             "value_subvoxel": r.value_subvoxel, "margin": r.margin,
             "pass": r.passed, "advisory": r.advisory, "priority": r.priority, "note": r.note,
             "limit_rule": r.limit_rule}
            for r in ev.sorted_failures_first()],
        "coverage_goals": [
            {"id": g.goal_id, "organ": g.organ, "metric": g.metric, "comparison": g.comparison, "goal": g.goal,
             "unit": g.unit, "value": g.value, "met": g.met, "note": g.note} for g in ev.goals],
        "not_applicable": list(ev.not_applicable),
    }


def to_jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (AttributeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_record(kind: str, record: Dict[str, Any], report_lines: List[str], output_dir: str,
                 *, stamp: Optional[str] = None) -> str:
    """Write ``record.json`` and ``report.txt`` into a new folder; return the JSON path.

    The folder is ``<output_dir>/<YYYYmmdd-HHMMSS>-<kind>[-N]`` (N when that name exists).

    Raises
    ------
    constraints.errors.InputError
        The output folder cannot be created or written.
    """
    stamp = stamp or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    record = dict(record)
    record["created"] = _dt.datetime.now().isoformat(timespec="seconds")
    try:
        os.makedirs(output_dir, exist_ok=True)
        base = os.path.join(output_dir, f"{stamp}-{kind}")
        folder = base
        n = 1
        while os.path.exists(folder):
            folder = f"{base}-{n}"
            n += 1
        os.makedirs(folder)
        path = os.path.join(folder, "record.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(to_jsonable(record), fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")
        with open(os.path.join(folder, "report.txt"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(report_lines) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the record into {output_dir!r}: {exc.strerror}") from None
    return path
