"""The cohort's tables, made from the patients' records alone (sorted: the same records give the same files).

- ``cohort.csv`` / ``cohort.parquet``: one row per patient × organ × metric × domain
  (domain = ``sbrt|cumulative`` × ``physical|bed|eqd2``, with its α/β), value in Gy
  (Gy BED, Gy EQD2); a failed patient is one row with its error;
- ``patients.csv``: one row per patient: status, error, and whether the plan met
  the SBRT-only limits, breached a cumulative limit, the PTVeval V24Gy;
- ``table3.csv``: the seed's Table 3 layout (rows organ × SBRT|cumulative ×
  physical|EQD2|BED × α/β; per metric Dmax, D0.035cc, D1cc: median, IQR and maximum
  over the completed patients).  Quartiles are numpy's default (linear
  interpolation between order statistics, Hyndman–Fan type 7);
- ``strategies.csv`` (with strategies): per patient the plan's flags and each FMO
  strategy's PTVeval V24Gy, pass flags, and what the exact and zone strategies cost
  in V24Gy points against the SBRT-only one;
- ``timing.csv``: per patient the task's wall time, worker process and peak memory.
"""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from constraints.domain import DoseDomain

__all__ = ["COHORT_COLUMNS", "cohort_rows", "table3_rows", "strategy_rows", "write_tables", "METRICS",
           "quartile_summary"]

COHORT_COLUMNS = ("patient", "status", "organ", "roi", "metric", "domain", "alpha_beta_gy", "value_gy", "error")
METRICS = ("Dmax", "D0.035cc", "D1cc")
_SCOPES = ("sbrt", "cumulative")
_KINDS = ("physical", "eqd2", "bed")


def _write_csv(path: str, columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> str:
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else _cell(r.get(k))) for k in columns})
    os.replace(tmp, path)
    return path


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return repr(round(v, 6))
    if isinstance(v, (list, tuple)):
        return "; ".join(str(x) for x in v)
    return v


def cohort_rows(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per patient × organ × metric × domain (failed patients: one row with the error)."""
    rows = []
    for rec in sorted(records, key=lambda r: r["patient"]):
        if rec["status"] != "completed":
            rows.append({"patient": rec["patient"], "status": rec["status"], "error": rec["error"]})
            continue
        for r in sorted(rec["rows"], key=lambda r: (r["organ"], r["domain"], r["alpha_beta_gy"] or 0.0,
                                                    METRICS.index(r["metric"]) if r["metric"] in METRICS else 9)):
            rows.append(dict(r, patient=rec["patient"], status="completed", error=None))
    return rows


def quartile_summary(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """n, median, Q1, Q3 and maximum of ``values`` (None when there are none)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None, "max": None}
    q1, med, q3 = np.percentile(v, [25.0, 50.0, 75.0])
    return {"n": int(v.size), "median": float(med), "q1": float(q1), "q3": float(q3), "max": float(v.max())}


def _organ_order(organs: Sequence[str]) -> List[str]:
    return sorted(organs, key=lambda o: (o != "esophagus", o))


def table3_rows(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The seed's Table 3 layout over the completed patients (see the module doc)."""
    values: Dict[tuple, List[float]] = {}
    for rec in records:
        if rec["status"] != "completed":
            continue
        for r in rec["rows"]:
            domain = DoseDomain(r["domain"])
            scope, kind = domain.scope, domain.quantity
            values.setdefault((r["organ"], scope, kind, r["alpha_beta_gy"], r["metric"]), []).append(r["value_gy"])
    rows = []
    organs = _organ_order({k[0] for k in values})
    abs_ = sorted({k[3] for k in values if k[3] is not None})
    for organ in organs:
        for scope in _SCOPES:
            for kind in _KINDS:
                for ab in ([None] if kind == "physical" else abs_):
                    if not any((organ, scope, kind, ab, m) in values for m in METRICS):
                        continue
                    unit = "Gy" if kind == "physical" else f"Gy{ab:g} {kind.upper()}"
                    row: Dict[str, Any] = {"organ": organ, "dose": "SBRT" if scope == "sbrt" else "cumulative",
                                           "quantity": kind.upper() if kind != "physical" else "physical",
                                           "alpha_beta_gy": ab, "unit": unit}
                    for m in METRICS:
                        s = quartile_summary(values.get((organ, scope, kind, ab, m), []))
                        row["n"] = max(row.get("n", 0), s["n"])
                        for stat in ("median", "q1", "q3", "max"):
                            row[f"{m}_{stat}"] = s[stat]
                    rows.append(row)
    return rows


TABLE3_COLUMNS = ("organ", "dose", "quantity", "alpha_beta_gy", "unit", "n") + tuple(
    f"{m}_{s}" for m in METRICS for s in ("median", "q1", "q3", "max"))


def _recovery_text(recovery: Any) -> str:
    """``0.2`` (every organ) or ``aorta 0.2`` (per organ)."""
    if isinstance(recovery, dict):
        return ", ".join(f"{k} {v:g}" for k, v in sorted(recovery.items())) or "0"
    return f"{recovery:g}"


def patient_rows(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    for rec in sorted(records, key=lambda r: r["patient"]):
        row = {"patient": rec["patient"], "status": rec["status"], "error_kind": rec.get("error_kind"),
               "error": rec.get("error")}
        if rec["status"] == "completed":
            row.update(rec["summary"])
            row["priors"] = [f"{p['name']} ({p['fractions']} fx, recovery {_recovery_text(p['recovery'])})"
                             for p in rec["priors"]]
        rows.append(row)
    return rows


PATIENT_COLUMNS = ("patient", "status", "error_kind", "error", "all_pass", "sbrt_only_pass", "cumulative_breach",
                   "cumulative_esophagus_breach", "failed_constraints", "ptv_v24gy_percent", "priors")


def strategy_rows(records: Sequence[Dict[str, Any]], strategies: Sequence[str]) -> List[Dict[str, Any]]:
    """Per patient: the plan's flags and each strategy's coverage and flags; cost = V24Gy(sbrt-only) − V24Gy(s)."""
    rows = []
    for rec in sorted(records, key=lambda r: r["patient"]):
        row: Dict[str, Any] = {"patient": rec["patient"], "status": rec["status"], "error": rec.get("error")}
        if rec["status"] == "completed":
            s = rec["summary"]
            row.update(plan_sbrt_only_pass=s["sbrt_only_pass"], plan_cumulative_breach=s["cumulative_breach"],
                       plan_v24gy_percent=s["ptv_v24gy_percent"])
            st = rec.get("strategies", {})
            for name in strategies:
                r = st.get(name, {})
                tag = name.replace("-", "_")
                for k in ("status", "v24gy_percent", "sbrt_only_pass", "cumulative_esophagus_pass", "all_pass"):
                    row[f"{tag}_{k}"] = r.get(k)
            base = st.get("sbrt-only", {}).get("v24gy_percent")
            for name in ("exact", "zones"):
                v = st.get(name, {}).get("v24gy_percent")
                row[f"{name}_cost_points"] = None if base is None or v is None else round(base - v, 6)
        rows.append(row)
    return rows


def strategy_columns(strategies: Sequence[str]) -> List[str]:
    cols = ["patient", "status", "error", "plan_sbrt_only_pass", "plan_cumulative_breach", "plan_v24gy_percent"]
    for name in strategies:
        tag = name.replace("-", "_")
        cols += [f"{tag}_{k}" for k in ("status", "v24gy_percent", "sbrt_only_pass", "cumulative_esophagus_pass",
                                        "all_pass")]
    if "sbrt-only" in strategies:
        cols += [f"{n}_cost_points" for n in ("exact", "zones") if n in strategies]
    return cols


def _write_parquet(path: str, rows: Sequence[Dict[str, Any]]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {c: [r.get(c) for r in rows] for c in COHORT_COLUMNS}
    schema = pa.schema([(c, pa.float64() if c in ("alpha_beta_gy", "value_gy") else pa.string())
                        for c in COHORT_COLUMNS])
    table = pa.table(cols, schema=schema)
    tmp = f"{path}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_tables(out: str, records: Sequence[Dict[str, Any]], strategies: Sequence[str]) -> Dict[str, str]:
    """Write every table into ``out``; return {name: path}."""
    rows = cohort_rows(records)
    paths = {"cohort.csv": _write_csv(os.path.join(out, "cohort.csv"), COHORT_COLUMNS, rows),
             "cohort.parquet": _write_parquet(os.path.join(out, "cohort.parquet"), rows),
             "patients.csv": _write_csv(os.path.join(out, "patients.csv"), PATIENT_COLUMNS, patient_rows(records)),
             "table3.csv": _write_csv(os.path.join(out, "table3.csv"), TABLE3_COLUMNS, table3_rows(records)),
             "timing.csv": _write_csv(os.path.join(out, "timing.csv"), ("patient", "status", "elapsed_s", "cpu_s",
                                                                         "pid", "peak_rss_mb"),
                                      [dict(r.get("timing", {}), patient=r["patient"], status=r["status"])
                                       for r in sorted(records, key=lambda r: r["patient"])])}
    if strategies:
        paths["strategies.csv"] = _write_csv(os.path.join(out, "strategies.csv"), strategy_columns(strategies),
                                             strategy_rows(records, strategies))
    return paths
