"""One patient's task: a pure function of (patient files, protocol, reirrad version, options) → record.

The patient takes the road of ``reirrad assess``: its files are imported into
``mock_tps`` (:func:`mock_tps.dicom_import.import_dicom`) and the RayStation
assessment script's code runs on it (:func:`tps_scripts.assess.run_assessment`,
which also writes the plug-in's audit record and text report under
``<out>/patients/<patient>/``).  The cohort record adds the Table 3 rows, the
cumulative esophageal DVH (EQD2, α/β 2 Gy, the seed's Fig. 4) and, when asked, the
FMO strategies.

A patient that fails becomes a record with ``status = "failed"`` and the error's
message: a :class:`~constraints.errors.ReirradError` (bad DICOM, a missing organ, a
refused prior: ``error_kind = "input"``, the same for the same inputs) or any other
exception (``"internal"``, retried by ``--resume``).  The mock TPS holds one patient
per process, so tasks in one process run one at a time (a lock).
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from constraints.domain import DoseDomain
from constraints.errors import InputError, ReirradError

__all__ = ["TaskOptions", "task_key", "run_patient", "DVH_STEP_GY", "RECORD_FORMAT"]

#: Version of the record layout (part of the task key).
RECORD_FORMAT = 1
#: Dose step of the stored cumulative esophageal DVH, Gy (EQD2).
DVH_STEP_GY = 1.0

_PROCESS_LOCK = threading.Lock()


@dataclass(frozen=True)
class TaskOptions:
    """What every patient's task shares.

    Attributes
    ----------
    protocol : str
        Protocol name or file (``reirrad protocol show``).
    protocol_sha256 : str
    version : str
        reirrad's version.
    out_dir : str
        Cohort output folder (the plug-in's audit records go to ``patients/<id>/``).
    strategies : tuple of str
        FMO strategies to solve (empty: assessment only).
    bixel_mm : float
        FMO beamlet width, mm.
    """

    protocol: str
    protocol_sha256: str
    version: str
    out_dir: str
    strategies: Tuple[str, ...] = ()
    bixel_mm: float = 10.0


def task_key(content_sha256: str, options: TaskOptions) -> str:
    """SHA-256 of what the record depends on: the patient's files and the options (not the output folder)."""
    key = {"content": content_sha256, "protocol_sha256": options.protocol_sha256, "version": options.version,
           "strategies": list(options.strategies), "bixel_mm": options.bixel_mm, "format": RECORD_FORMAT}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(rss) / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


def _table_rows(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Rows (organ, roi, metric, domain, α/β, value) of the assessment's Table 3 blocks."""
    roi_to_organ = {roi: organ for organ, roi in record["inputs"]["roi_match"].items()}
    rows = []
    for roi, table in sorted(record["table3"].items()):
        for scope in ("sbrt", "cumulative"):
            for kind in ("physical", "bed", "eqd2"):
                for ab, metrics in table[scope][kind].items():
                    for metric, value in metrics.items():
                        rows.append({"organ": roi_to_organ.get(roi, roi), "roi": roi, "metric": metric,
                                     "domain": DoseDomain.of(scope, kind).value, "alpha_beta_gy": None if ab == "-" else float(ab),
                                     "value_gy": None if value is None else float(value)})
    return rows


def _esophagus_dvh(case: Any, protocol: Any) -> Optional[Dict[str, List[float]]]:
    """Cumulative DVH of the esophagus in EQD2 (α/β 2 Gy): volume (cc) at ≥ 0, 1, 2, ... Gy."""
    from constraints.dvh import compute_dvh
    from constraints.evaluation import domain_dose

    s = case.structures.get("esophagus")
    if s is None:
        return None
    dvh = compute_dvh(domain_dose(case, DoseDomain.CUMULATIVE_EQD2, 2.0), s)
    levels = np.arange(0.0, np.ceil(dvh.dmax / DVH_STEP_GY) * DVH_STEP_GY + DVH_STEP_GY, DVH_STEP_GY)
    return {"dose_gy": [float(v) for v in levels], "volume_cc": [round(float(v), 6) for v in dvh.curve(levels)]}


def _summary(evaluation: Dict[str, Any]) -> Dict[str, Any]:
    binding = [c for c in evaluation["constraints"] if not c["advisory"]]
    sbrt = [c for c in binding if DoseDomain(c["domain"]).is_sbrt]
    cum = [c for c in binding if DoseDomain(c["domain"]).is_cumulative]
    goals = evaluation["coverage_goals"]
    v24 = next((g["value"] for g in goals if g["metric"].startswith("V")), None)
    return {"all_pass": bool(evaluation["all_pass"]), "sbrt_only_pass": all(c["pass"] for c in sbrt),
            "cumulative_breach": any(not c["pass"] for c in cum),
            "cumulative_esophagus_breach": any(not c["pass"] for c in cum if c["organ"] == "esophagus"),
            "failed_constraints": sorted(f"{c['roi']} {c['metric']} {c['domain']}" for c in binding if not c["pass"]),
            "ptv_v24gy_percent": v24}


def _configured_protocol(config_path: Optional[str]) -> Optional[str]:
    """The ``protocol`` a patient's configuration file states, or None (the file was validated before)."""
    if config_path is None:
        return None
    with open(config_path, "rb") as fh:
        raw = fh.read().decode("utf-8")
    if config_path.lower().endswith(".json"):
        data = json.loads(raw)
    elif sys.version_info >= (3, 11):
        import tomllib as toml  # novermin (guarded)
        data = toml.loads(raw)
    else:
        import tomli as toml
        data = toml.loads(raw)
    value = data.get("protocol")
    return value if isinstance(value, str) else None


def _assess(folder: str, options: TaskOptions) -> Dict[str, Any]:
    import mock_tps  # noqa: F401 - installs the ``connect`` module
    from constraints.protocol import load_protocol
    from mock_tps.dicom_import import import_dicom
    from tps_scripts.adapter import gather
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig, PriorConfig, load_config

    from .layout import read_patient

    inputs = read_patient(folder)
    protocol = load_protocol(options.protocol)
    user = load_config(inputs.config_path) if inputs.config_path else PluginConfig()
    named = _configured_protocol(inputs.config_path)
    if named is not None and load_protocol(named).sha256 != protocol.sha256:
        raise InputError(f"configuration {inputs.config_path!r} names protocol {named!r}; the cohort runs "
                         f"{options.protocol!r}: run the patient in a cohort of its protocol")
    # a planning system stores no recovery: it reaches the assessment through the configuration
    imported = import_dicom(rtstruct=inputs.rtstruct, plan_dose=inputs.plan_dose, plan=inputs.rtplan,
                            ct_dir=inputs.ct_dir, registration=inputs.registration,
                            priors=[(p.path, p.fractions, 0.0, p.name) for p in inputs.priors])
    import connect
    from dataclasses import replace
    config = replace(user, protocol=options.protocol, show_identity=False,
                     output_dir=os.path.join(options.out_dir, "patients", inputs.patient_id),
                     priors=tuple(p.entry if p.entry is not None else PriorConfig(p.name, p.fractions)
                                  for p in inputs.priors))
    files = {"folder": inputs.folder, "rtstruct": inputs.rtstruct, "rtplan": inputs.rtplan,
             "plan_dose": inputs.plan_dose, "ct_dir": inputs.ct_dir, "registration": inputs.registration,
             "priors": [{"path": p.path, "name": p.name, "fractions": p.fractions, "recovery": p.recovery,
                         "date": p.date} for p in inputs.priors], "configuration": inputs.config_path}
    audit_path, record = run_assessment(api=connect, config=config, input_files=files)
    g = gather(connect, config, protocol)
    out: Dict[str, Any] = {
        "audit_record": os.path.relpath(audit_path, options.out_dir),
        "priors": [{"name": p["name"], "fractions": p["fractions"], "recovery": p["recovery"]}
                   for p in record["inputs"]["priors"]],
        "unmatched_rois": record["inputs"]["unmatched_rois"],
        "rows": _table_rows(record),
        "constraints": [{k: c[k] for k in ("id", "organ", "roi", "metric", "domain", "comparison", "limit", "value",
                                            "pass", "advisory")} for c in record["evaluation"]["constraints"]],
        "coverage_goals": [{k: c[k] for k in ("id", "metric", "comparison", "goal", "value", "met")}
                           for c in record["evaluation"]["coverage_goals"]],
        "summary": _summary(record["evaluation"]),
        "esophagus_dvh_eqd2_ab2": _esophagus_dvh(g.case, protocol),
    }
    if options.strategies:
        from .strategies import fmo_case_from_import, run_strategies
        fcase = fmo_case_from_import(g, imported, protocol, bixel_mm=options.bixel_mm)
        out["strategies"] = run_strategies(fcase, protocol, options.strategies)
    return out


def run_patient(folder: str, key: str, options: TaskOptions) -> Dict[str, Any]:
    """Assess one patient folder; return its cohort record (never raises for a patient's fault).

    Parameters
    ----------
    folder : str
        The patient's folder.
    key : str
        :func:`task_key` of its inputs (stored in the record, for ``--resume``).
    options : TaskOptions

    Returns
    -------
    dict
        ``patient``, ``key``, ``status`` ("completed" or "failed"), ``error`` and
        ``error_kind`` (failed only), the assessment's rows, constraints, summary and
        DVH (completed only), and ``timing`` (elapsed and CPU s, worker pid, peak RSS MB).
    """
    import mock_tps

    base = {"patient": os.path.basename(os.path.normpath(folder)), "key": key, "protocol_sha256":
            options.protocol_sha256, "reirrad_version": options.version, "strategies_requested":
            list(options.strategies), "format": RECORD_FORMAT}
    with _PROCESS_LOCK:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            result = dict(base, status="completed", error=None, error_kind=None, **_assess(folder, options))
        except ReirradError as exc:
            result = dict(base, status="failed", error=f"{type(exc).__name__}: {exc}", error_kind="input")
        except Exception as exc:  # noqa: BLE001 - a defect must not stop the cohort; the row names it
            result = dict(base, status="failed", error=f"{type(exc).__name__}: {exc}", error_kind="internal")
        finally:
            mock_tps.unload()
        result["timing"] = {"elapsed_s": round(time.perf_counter() - t0, 3),
                            "cpu_s": round(time.process_time() - c0, 3), "pid": os.getpid(),
                            "peak_rss_mb": round(_peak_rss_mb(), 1)}
    from tps_scripts.record import to_jsonable
    return to_jsonable(result)
