"""The assessment (read-only): cumulative and SBRT-only dose of every OAR in physical
dose, BED and EQD2 (α/β 2, 3, 10; the seed's Table 3 layout), the protocol's
constraints with pass/fail and margin, coverage goals and — when the configuration
gives the case facts — the eligibility recommendation.  Writes a JSON record and a
text report; changes nothing in the patient.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from constraints.dvh import compute_dvh
from constraints.eligibility import assess_eligibility, plan_evidence
from constraints.errors import ReirradError
from constraints.recovery import recovery_assumptions
from constraints.evaluation import Evaluation, dose_table, evaluate_protocol
from constraints.protocol import Protocol, load_protocol

from .adapter import Gathered, gather, get_api
from .config import PluginConfig, load_config
from .record import evaluation_block, protocol_block, software_version, write_record

__all__ = ["assessment_record", "assessment_report", "run_assessment", "main", "headlines", "gtv_block"]

_LOG = logging.getLogger(__name__)


def inputs_block(g: Gathered, config: PluginConfig) -> Dict[str, Any]:
    ident = dict(g.identity)
    if not config.show_identity:
        ident.pop("patient_name", None)
        ident.pop("patient_id", None)
    grid = g.case.grid
    return {
        "tps_objects": ident,
        "dose_grid": {"corner_mm": list(grid.corner_mm), "spacing_mm": list(grid.spacing_xyz_mm),
                      "shape_zyx": list(grid.shape_zyx)},
        "sbrt": {"fractions": g.sbrt_fractions, "prescription_gy": g.prescription_gy, "dose_digest": g.sbrt_digest},
        "priors": [{"name": p.name, "fractions": p.fractions, "recovery": p.recovery, "date": p.date,
                    "fractions_from": p.fractions_source, "resampled_to_dose_grid": p.resampled,
                    "voxels_assumed_organ_max": p.assumed_voxels, "dose_digest": p.dose_digest,
                    "total_gy": p.total_gy, "mapped_max_gy": p.mapped_max_gy,
                    "uncertainty_mm": p.uncertainty_mm} for p in g.priors],
        "excluded_doses": list(config.exclude_doses),
        "roi_match": dict(g.match.organ_to_roi),
        "unmatched_rois": list(g.match.unmatched_rois),
        "organs_without_roi": list(g.match.missing_organs),
        "empty_rois": list(g.empty_rois),
        "configuration": config.source,
        "unknown_prior_policy": config.unknown_prior,
        "sbrt_date": config.sbrt_date.isoformat() if config.sbrt_date else None,
        "assumptions": recovery_assumptions(g.case.priors),
    }


def assessment_record(g: Gathered, protocol: Protocol, ev: Evaluation, config: PluginConfig) -> Dict[str, Any]:
    tables = {}
    for organ, s in g.case.structures.items():
        if protocol.organs[organ].kind == "oar" or organ == protocol.prescription.target:
            tables[s.name] = dose_table(g.case, s)
    record: Dict[str, Any] = {
        "tool": "reirrad",
        "software_version": software_version(),
        "kind": "assessment",
        "protocol": protocol_block(protocol),
        "inputs": inputs_block(g, config),
        "evaluation": evaluation_block(ev),
        "table3": tables,
        "gtv": gtv_block(g),
        "geometry": [{"check": f.check, "rois": list(f.rois), "volume_cc": f.volume_cc, "severity": f.severity,
                      "message": f.message} for f in g.geometry],
    }
    if g.nominal_case is not None:
        nominal = {r.constraint_id: r for r in evaluate_protocol(g.nominal_case, protocol).results}
        record["registration_uncertainty"] = {
            "radius_mm": {p.name: p.uncertainty_mm for p in g.priors},
            "rule": "each prior course's dose replaced by its maximum over a sphere of its radius before summing "
                    "(verdict: with it)",
            "constraints": [{"id": r.constraint_id, "margin_with": r.margin, "pass_with": r.passed,
                             "margin_without": nominal[r.constraint_id].margin,
                             "pass_without": nominal[r.constraint_id].passed} for r in ev.results],
        }
    e = assess_eligibility(config.case, protocol, plan_evidence(g.case, protocol))   # on every assessment
    record["eligibility"] = {"eligible": e.eligible, "recommendation": e.recommendation, "status": e.status,
                             "route": e.route, "reasons": list(e.reasons), "warnings": list(e.warnings),
                             "unknown": list(e.unknown)}
    return record


def _recovery_text(r: Any) -> str:
    """A course's recovery: one number (every organ) or ``organ r, ...``."""
    return ", ".join(f"{k} {v:g}" for k, v in r.items()) if isinstance(r, dict) else f"{r:g}"


#: GTV metrics reported (SBRT physical dose, dose-grid voxel rule): the seed cites GTV Dmin
#: and D95 as predictors of local failure.
GTV_METRICS = (("d98_gy", 98.0), ("d95_gy", 95.0))


def gtv_block(g: Gathered) -> List[Dict[str, Any]]:
    """D98, D95 and Dmin (Gy, SBRT physical) of each GTV found."""
    out = []
    for s in g.gtvs:
        try:
            dvh = compute_dvh(g.case.sbrt.dose_gy, s)
            entry: Dict[str, Any] = {"roi": s.name, "volume_cc": s.volume_cc}
            entry.update({k: dvh.d_percent(p) for k, p in GTV_METRICS})
            entry["dmin_gy"] = dvh.dmin
        except ReirradError as exc:
            entry = {"roi": s.name, "not_evaluable": str(exc)}
        out.append(entry)
    return out


def headlines(record: Dict[str, Any]) -> List[str]:
    """The verdict's two headlines: protocol constraints, then target coverage with its numbers."""
    ev = record["evaluation"]
    fails = [c for c in ev["constraints"] if not c["pass"] and not c["advisory"]]
    first = ("PROTOCOL CONSTRAINTS: ALL PASS" if ev["all_pass"] else
             f"PROTOCOL CONSTRAINTS: {len(fails)} FAIL ({', '.join(c['id'] for c in fails)})")
    goals = ", ".join(f"{gl['metric']} {_fmt(gl['value'], 1)} {gl['unit']} (goal {gl['comparison']} {gl['goal']:g}"
                      f"{'' if gl['met'] else ', NOT met'})" for gl in ev["coverage_goals"])
    met = ev.get("coverage_goals_met", all(gl["met"] for gl in ev["coverage_goals"]))
    second = f"TARGET COVERAGE: {'GOALS MET' if met else 'GOALS NOT MET'}: {goals or 'no goal in the protocol'}"
    lines = [first, second]
    for gt in record.get("gtv", []):
        if "not_evaluable" in gt:
            lines.append(f"  {gt['roi']} (GTV): not evaluable ({gt['not_evaluable']})")
        else:
            lines.append(f"  {gt['roi']} (GTV, {gt['volume_cc']:.2f} cc): D98 {gt['d98_gy']:.2f} Gy, D95 "
                         f"{gt['d95_gy']:.2f} Gy, Dmin {gt['dmin_gy']:.2f} Gy (reported; no protocol goal)")
    return lines


def _fmt(v: Optional[float], digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def assessment_report(record: Dict[str, Any], title: str = "reirrad assessment") -> List[str]:
    """The human report (plain text) of an assessment record."""
    p = record["protocol"]
    inp = record["inputs"]
    ev = record["evaluation"]
    lines = [title, "=" * len(title),
             f"protocol {p['name']} v{p['version']} (sha256 {p['sha256'][:12]}...)",
             f"plan {inp['tps_objects'].get('plan')} / beam set {inp['tps_objects'].get('beam_set')} on "
             f"{inp['tps_objects'].get('examination')}",
             f"SBRT: {inp['sbrt']['prescription_gy']} Gy in {inp['sbrt']['fractions']} fractions",
             "dose grid: spacing {} mm, {} voxels (z, y, x)".format(
                 " x ".join(f"{s:g}" for s in inp["dose_grid"]["spacing_mm"]), inp["dose_grid"]["shape_zyx"]),
             "alpha/beta (Gy): " + ", ".join(f"{k} {v:g}" for k, v in p["alpha_beta_gy"].items()
                                             if k in inp["roi_match"]),
             "D0.035cc rule: dose of the voxel at which the hottest voxels' covered volume first reaches "
             "0.035 cc (no interpolation)"]
    for pr in inp["priors"]:
        lines.append(f"prior course {pr['name']!r}: {pr['fractions']} fx (from {pr['fractions_from']}), "
                     f"recovery {_recovery_text(pr['recovery'])}" + (", resampled onto the SBRT dose grid" if pr["resampled_to_dose_grid"] else ""))
    if not inp["priors"]:
        lines.append("no prior course found: cumulative = SBRT only")
    for pr in inp["priors"]:
        if pr.get("uncertainty_mm"):
            lines.append(f"prior course {pr['name']!r}: registration uncertainty {pr['uncertainty_mm']:g} mm (its dose "
                         "replaced by its maximum over a sphere of that radius)")
    lines.append("")
    lines.extend(headlines(record))
    lines.append("")
    lines.append("DVH rules: a Dmax or D_V passes only when the dose-grid voxel rule ('voxel') and the sub-voxel "
                 "rule ('sub-vox') both pass; the margin is the smaller one")
    lines.append(f"{'':2}{'ROI':<24}{'metric':<10}{'domain':<17}{'voxel':>9}{'sub-vox':>9}  {'limit':>10}  "
                 f"{'margin':>8}  result")
    for c in ev["constraints"]:
        flag = "pass" if c["pass"] else "FAIL"
        if c["advisory"]:
            flag += " (advisory)"
        lines.append(f"{'':2}{str(c['roi']):<23} {c['metric']:<10}{c['domain']:<17}{_fmt(c['value']):>9}"
                     f"{_fmt(c.get('value_subvoxel')):>9}  "
                     f"{c['comparison'] + ' ' + _fmt(c['limit']):>10}  {_fmt(c['margin']):>8}  {flag} {c['unit']}"
                     + (f"  [{c['note']}]" if c["note"] else ""))
    reg = record.get("registration_uncertainty")
    if reg:
        lines.append("")
        lines.append("registration uncertainty: margins with (verdict) / without it")
        for r in reg["constraints"]:
            lines.append(f"  {r['id']:<40}{_fmt(r['margin_with']):>9} / {_fmt(r['margin_without']):>9}"
                         + ("" if r["pass_with"] == r["pass_without"] else
                            f"  ({'pass' if r['pass_without'] else 'FAIL'} without it)"))
    if record.get("geometry"):
        lines.append("")
        lines.append("geometry findings (warnings; they do not change the verdict)")
        lines.extend(f"  ! {f['message']}" for f in record["geometry"])
    lines.append("")
    lines.append("coverage goals (reirrad defaults)")
    for gl in ev["coverage_goals"]:
        lines.append(f"  {gl['metric']:<10}{_fmt(gl['value'])} {gl['unit']}  goal {gl['comparison']} {gl['goal']:g}  "
                     + ("met" if gl["met"] else "NOT met"))
    for roi, t in record.get("table3", {}).items():
        lines.append("")
        lines.append(f"{roi}: Dmax / D0.035cc / D1cc")
        for scope in ("sbrt", "cumulative"):
            phys = t[scope]["physical"]["-"]
            lines.append(f"  {scope:<11}physical      " + " / ".join(_fmt(phys[m], 1) for m in phys) + " Gy")
            for kind in ("bed", "eqd2"):
                for ab, row in t[scope][kind].items():
                    lines.append(f"  {'':<11}{kind.upper():<4} a/b {ab:<4} " + " / ".join(_fmt(row[m], 1) for m in row))
    if inp["unmatched_rois"]:
        lines.append("")
        lines.append("ROIs not matched to a protocol organ (not evaluated): " + ", ".join(inp["unmatched_rois"]))
    if "eligibility" in record:
        e = record["eligibility"]
        lines.append("")
        lines.append(f"eligibility: {e['recommendation']}")
        lines.extend(f"  - {r}" for r in e["reasons"])
        lines.extend(f"  ! {w}" for w in e["warnings"])
    return lines


def run_assessment(api: Any = None, config: Optional[PluginConfig] = None, *,
                   input_files: Optional[Dict[str, Any]] = None) -> Tuple[str, Dict[str, Any]]:
    """Gather, evaluate, write the record; return (record path, record).

    ``input_files`` (role → {path, sha256}) goes into ``record["inputs"]["files"]``
    when the data came from files (``reirrad assess`` on DICOM exports).
    """
    api = api or get_api()
    config = config or load_config()
    protocol = load_protocol(config.protocol)
    g = gather(api, config, protocol)
    ev = evaluate_protocol(g.case, protocol)
    record = assessment_record(g, protocol, ev, config)
    if input_files is not None:
        record["inputs"]["files"] = input_files
    path = write_record("assessment", record, assessment_report(record), config.output_directory())
    return path, record


def summary_lines(record: Dict[str, Any]) -> List[str]:
    ev = record["evaluation"]
    fails = [c for c in ev["constraints"] if not c["pass"] and not c["advisory"]]
    lines = ["reirrad: " + line for line in headlines(record)]
    for c in fails:
        sv = "" if c.get("value_subvoxel") is None else f" (sub-voxel {_fmt(c['value_subvoxel'])})"
        lines.append(f"  FAIL {c['roi']} {c['metric']} {c['domain']}: {_fmt(c['value'])}{sv} vs {c['comparison']} "
                     f"{_fmt(c['limit'])} {c['unit']}")
    for f in record.get("geometry", []):
        lines.append(f"  ! {f['message']}")
    return lines


def main(config_path: Optional[str] = None) -> str:
    """Entry of ``reirrad_assess.py``: prints a summary, then the record path as the last line."""
    config = load_config(config_path)
    path, record = run_assessment(config=config)
    for line in summary_lines(record):
        print(line)
    print(path)
    return path
