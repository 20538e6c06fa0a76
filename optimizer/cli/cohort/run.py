"""The cohort run: keys, resume, records on disk, the engine, the outputs.

Records: ``<out>/records/<patient>.json``, written atomically (temporary file, then
rename) by the driver as each patient's task completes, so an interrupted run keeps
every record it received.  ``resume`` keeps a record whose key (:func:`.task.task_key`:
content hash of the patient's files, protocol hash, reirrad version, options) equals
the patient's current key and that completed or failed on its input; anything else
runs again.  The tables are made from the records of the patients now in the cohort
folder, whatever run wrote them.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from constraints.errors import InputError

from .engine import EngineOptions, Progress, open_client, run_tasks
from .task import TaskOptions, run_patient, task_key

__all__ = ["CohortOptions", "run_cohort", "generate_synthetic", "load_record", "record_path"]


@dataclass(frozen=True)
class CohortOptions:
    """What ``reirrad cohort --patients`` was asked."""

    patients_dir: str
    out_dir: str
    protocol: str = "koide2024"
    strategies: Tuple[str, ...] = ()
    bixel_mm: float = 10.0
    resume: bool = False
    progress: bool = True


def record_path(out_dir: str, patient: str) -> str:
    return os.path.join(out_dir, "records", f"{patient}.json")


def load_record(path: str) -> Optional[Dict[str, Any]]:
    """A record, or None when it is missing or unreadable (an unreadable record is recomputed)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write_record(out_dir: str, record: Dict[str, Any]) -> None:
    path = record_path(out_dir, record["patient"])
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True, allow_nan=False)
        fh.write("\n")
    os.replace(tmp, path)


def _reusable(rec: Optional[Dict[str, Any]], key: str) -> bool:
    return rec is not None and rec.get("key") == key and (
        rec.get("status") == "completed" or rec.get("error_kind") == "input")


def _prepare_out(out_dir: str, resume: bool) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir!r} exists and is not a folder")
    records = os.path.join(out_dir, "records")
    if os.path.isdir(records) and os.listdir(records) and not resume:
        raise InputError(f"--out {out_dir!r} holds the records of a cohort run: add --resume to continue it, "
                         "or choose another folder")
    os.makedirs(records, exist_ok=True)


def run_cohort(opts: CohortOptions, engine: EngineOptions,
               on_record: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Assess every patient folder; write records and outputs; return the summary.

    Parameters
    ----------
    on_record : callable, optional
        Called with each record after it is written (progress hooks, tests).

    Returns
    -------
    dict
        ``patients``, ``completed``, ``failed``, ``computed`` (tasks run now),
        ``reused`` (records kept by ``resume``), ``failures`` ({patient: message}),
        ``outputs`` ({name: path}), ``wall_s``.
    """
    from constraints.protocol import load_protocol
    from tps_scripts.record import software_version

    from .page import write_html
    from .layout import content_sha256, list_patients
    from .outputs import strategy_rows, table3_rows, write_tables

    t0 = time.perf_counter()
    out = os.path.abspath(opts.out_dir)
    if os.path.isdir(opts.patients_dir) and os.path.abspath(opts.patients_dir) in (out, os.path.dirname(out)):
        raise InputError(f"--out {opts.out_dir!r} lies in --patients {opts.patients_dir!r}: its folders would be "
                         "taken for patients; choose a folder outside")
    folders = list_patients(opts.patients_dir)
    protocol = load_protocol(opts.protocol)
    _prepare_out(out, opts.resume)
    topts = TaskOptions(opts.protocol, protocol.sha256, software_version(), out, tuple(opts.strategies),
                        float(opts.bixel_mm))
    records: Dict[str, Dict[str, Any]] = {}
    reused = set()
    tasks = []
    for folder in folders:
        pid = os.path.basename(folder)
        try:
            key = task_key(content_sha256(folder), topts)
        except OSError as exc:  # an unreadable file: that patient's error row, the cohort goes on
            records[pid] = {"patient": pid, "key": None, "status": "failed", "error_kind": "input",
                            "error": f"patient folder {folder!r} cannot be read: {exc}",
                            "protocol_sha256": protocol.sha256, "reirrad_version": topts.version,
                            "strategies_requested": list(topts.strategies)}
            _write_record(out, records[pid])
            continue
        old = load_record(record_path(out, pid)) if opts.resume else None
        if _reusable(old, key):
            records[pid] = old
            reused.add(pid)
        else:
            tasks.append((pid, run_patient, (os.path.abspath(folder), key, topts)))
    progress = Progress(len(tasks), "patients", opts.progress)
    keys = {name: args[1] for name, _, args in tasks}

    def done(name: str, result: Any, exc: Optional[BaseException]) -> None:
        if exc is not None:  # the task itself could not run (e.g. its worker died every time)
            result = {"patient": name, "key": keys[name], "status": "failed", "error_kind": "internal",
                      "error": f"{type(exc).__name__}: {exc}", "protocol_sha256": protocol.sha256,
                      "reirrad_version": topts.version, "strategies_requested": list(topts.strategies)}
        _write_record(out, result)
        records[name] = result
        t = result.get("timing", {})
        progress.update(name, result["status"] == "completed",
                        f"{t.get('elapsed_s', 0):.1f} s" if result["status"] == "completed" else result["error"])
        if on_record is not None:
            on_record(result)

    if tasks:
        with open_client(engine) as client:
            run_tasks(client, tasks, done)
    recs = [records[os.path.basename(f)] for f in folders]
    outputs = write_tables(out, recs, topts.strategies)
    outputs["cohort.html"] = write_html(os.path.join(out, "cohort.html"), recs, table3_rows(recs),
                                        strategy_rows(recs, topts.strategies) if topts.strategies else [],
                                        f"protocol {protocol.name} v{protocol.version} (sha256 "
                                        f"{protocol.sha256[:12]}...), reirrad {topts.version}")
    outputs["records"] = os.path.join(out, "records")
    failed = {r["patient"]: r["error"] for r in recs if r["status"] != "completed"}
    return {"patients": len(recs), "completed": len(recs) - len(failed), "failed": len(failed),
            "computed": len(tasks), "reused": len(reused), "failures": failed, "outputs": outputs,
            "wall_s": round(time.perf_counter() - t0, 2)}


def generate_synthetic(n: int, seed: int, out_dir: str, engine: EngineOptions, progress: bool = True) -> Dict[str, Any]:
    """Write ``n`` synthetic patients into ``out_dir`` (which must be new or empty); return the summary."""
    from .synthetic import synthetic_specs, write_patient

    specs = synthetic_specs(n, seed)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise InputError(f"--out {out_dir!r} exists and is not an empty folder; a synthetic cohort goes into a new one")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.abspath(out_dir)
    t0 = time.perf_counter()
    bar = Progress(len(specs), "synthetic patients", progress)
    written: List[Dict[str, Any]] = []
    failures: Dict[str, str] = {}

    def done(name: str, result: Any, exc: Optional[BaseException]) -> None:
        if exc is None:
            written.append(result)
        else:
            failures[name] = f"{type(exc).__name__}: {exc}"
        bar.update(name, exc is None, "" if exc is None else failures[name])

    with open_client(engine) as client:
        run_tasks(client, [(s.patient_id, write_patient, (s, out)) for s in specs], done)
    manifest = os.path.join(out, ".cohort.json")
    with open(manifest, "w", encoding="utf-8") as fh:
        json.dump({"synthetic": n, "seed": seed, "patients": sorted(written, key=lambda w: w["patient"])}, fh,
                  indent=1, sort_keys=True)
    return {"patients": n, "written": len(written), "failed": len(failures), "failures": failures,
            "outputs": {"patients": out, "manifest": manifest}, "wall_s": round(time.perf_counter() - t0, 2)}
