"""The printable report: one self-contained HTML file, images inline (offline only).

Header (case, protocol name/version/hash, every assumption), the constraint table
(failures first, value, limit, margin, pass/fail), cumulative DVHs in EQD2 (α/β 2, as
the seed's Fig. 4) and in each organ's BED with its limits drawn, SBRT-only and
PTVeval DVHs, axial/sagittal slices of the per-voxel SBRT limit map and of the
cumulative EQD2 with the cord, esophagus and PTVeval outlines, the tuning log (table
and plot), the seed's Table 3 layout per OAR, the eligibility recommendation.  No
patient name or ID unless asked.  The page sets ``document.title`` to
``reirrad report: N images, M broken`` once loaded, so a headless browser can check it.
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from constraints.domain import DoseDomain
from constraints.evaluation import PlanCase, domain_dose
from constraints.protocol import Protocol

from . import _report_figures as figs
from .organ_limits import OrganLimits

__all__ = ["ReportInputs", "render_report", "write_report"]


@dataclass
class ReportInputs:
    """What the report shows.  ``record`` is the final assessment/optimization record
    of :mod:`tps_scripts` (plain JSON data); ``case`` the same plan in the neutral model."""

    protocol: Protocol
    case: PlanCase
    record: Dict[str, Any]
    limits: Mapping[str, OrganLimits]
    before_record: Optional[Dict[str, Any]] = None
    title: str = "reirrad — re-irradiation spine SBRT report"
    show_identity: bool = False
    identity: Dict[str, str] = field(default_factory=dict)


def _img(png: bytes, alt: str) -> str:
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}"><figcaption>{html.escape(alt)}</figcaption></figure>')


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _constraint_table(ev: Mapping[str, Any]) -> str:
    rows = []
    for c in ev["constraints"]:
        cls = "pass" if c["pass"] else ("advisory" if c["advisory"] else "fail")
        verdict = ("PASS" if c["pass"] else "FAIL") + (" (advisory)" if c["advisory"] else "")
        rows.append(f'<tr class="{cls}"><td>{_f(c["roi"])}</td><td>{_f(c["metric"])}</td><td>{_f(c["domain"])}</td>'
                    f'<td class="num">{_f(c["value"])}</td><td class="num">{_f(c.get("value_subvoxel"))}</td>'
                    f'<td class="num">{_f(c["comparison"])} {_f(c["limit"])}</td>'
                    f'<td class="num">{_f(c["margin"])}</td><td>{_f(c["unit"])}</td><td>{verdict}</td>'
                    f'<td class="note">{_f(c["note"])}</td></tr>')
    head = ("<tr><th>ROI</th><th>metric</th><th>domain</th><th>value (voxel rule)</th><th>value (sub-voxel rule)</th>"
            "<th>limit</th><th>margin</th><th>unit</th><th>result</th><th>note</th></tr>")
    return f'<table id="constraints">{head}{"".join(rows)}</table>'


def _banners(rec: Mapping[str, Any]) -> str:
    """The verdict's two headlines: protocol constraints, target coverage (with its numbers and the GTV's)."""
    ev = rec["evaluation"]
    ok = ev["all_pass"]
    fails = [c["id"] for c in ev["constraints"] if not c["pass"] and not c["advisory"]]
    met = ev.get("coverage_goals_met", all(g["met"] for g in ev["coverage_goals"]))
    goals = "; ".join(f"{html.escape(str(g['metric']))} {_f(g['value'], 1)} {html.escape(str(g['unit']))} "
                      f"(goal {html.escape(str(g['comparison']))} {g['goal']:g}{'' if g['met'] else ', not met'})"
                      for g in ev["coverage_goals"])
    gtv = "".join(f"<br><span class='gtv'>{html.escape(str(g['roi']))} (GTV): D98 {_f(g.get('d98_gy'))} Gy, D95 "
                  f"{_f(g.get('d95_gy'))} Gy, Dmin {_f(g.get('dmin_gy'))} Gy (reported; no protocol goal)</span>"
                  for g in rec.get("gtv", []))
    return (f'<div id="verdict-constraints" class="banner {"ok" if ok else "bad"}">'
            + ("Protocol constraints: all pass" if ok else
               f"Protocol constraints: {len(fails)} FAIL ({html.escape(', '.join(fails))})") + "</div>"
            + f'<div id="verdict-coverage" class="banner {"ok" if met else "warn"}">'
            + f"Target coverage: {'goals met' if met else 'goals NOT met'}: {goals or 'no goal in the protocol'}"
            + gtv + "</div>")


def _findings(rec: Mapping[str, Any]) -> str:
    parts = []
    if rec.get("geometry"):
        parts.append("<h2>Geometry findings</h2><p>Warnings: they do not change the verdict.</p><ul id='geometry'>"
                     + "".join(f"<li>{html.escape(f['message'])}</li>" for f in rec["geometry"]) + "</ul>")
    reg = rec.get("registration_uncertainty")
    if reg:
        rows = "".join(f"<tr class='{'pass' if r['pass_with'] else 'fail'}'><td>{html.escape(r['id'])}</td>"
                       f"<td class='num'>{_f(r['margin_with'])}</td><td class='num'>{_f(r['margin_without'])}</td>"
                       f"<td>{'pass' if r['pass_with'] else 'FAIL'} / {'pass' if r['pass_without'] else 'FAIL'}</td></tr>"
                       for r in reg["constraints"])
        radii = ", ".join(f"{html.escape(k)} {v:g} mm" for k, v in reg["radius_mm"].items())
        parts.append(f"<h2>Registration uncertainty</h2><p>{html.escape(reg['rule'])}: {radii}.</p>"
                     f"<table id='registration'><tr><th>constraint</th><th>margin with (verdict)</th>"
                     f"<th>margin without</th><th>with / without</th></tr>{rows}</table>")
    return "".join(parts)


def _goal_table(ev: Mapping[str, Any]) -> str:
    rows = "".join(f'<tr class="{"pass" if g["met"] else "fail"}"><td>{_f(g["metric"])}</td><td class="num">'
                   f'{_f(g["value"])} {_f(g["unit"])}</td><td>{_f(g["comparison"])} {_f(g["goal"])}</td>'
                   f'<td>{"met" if g["met"] else "not met"}</td></tr>' for g in ev["coverage_goals"])
    return f"<table><tr><th>PTVeval metric</th><th>value</th><th>goal</th><th></th></tr>{rows}</table>"


def _table3(name: str, t: Mapping[str, Any]) -> str:
    metrics = list(t["sbrt"]["physical"]["-"])
    head = "<tr><th></th><th></th>" + "".join(f"<th>{html.escape(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for scope in ("sbrt", "cumulative"):
        rows.append(f'<tr><td rowspan="7">{scope}</td><td>physical (Gy)</td>'
                    + "".join(f'<td class="num">{_f(t[scope]["physical"]["-"][m], 1)}</td>' for m in metrics) + "</tr>")
        for kind in ("eqd2", "bed"):
            for ab, row in t[scope][kind].items():
                rows.append(f"<tr><td>{kind.upper()} α/β {ab}</td>"
                            + "".join(f'<td class="num">{_f(row[m], 1)}</td>' for m in metrics) + "</tr>")
    return f"<h3>{html.escape(name)}</h3><table class='t3'>{head}{''.join(rows)}</table>"


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#111;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;border-bottom:1px solid #999;margin-top:28px}h3{font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #bbb;padding:3px 6px}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.note{font-size:10px;color:#444}
tr.fail td{background:#fde0e0}tr.pass td{background:#e6f4e6}tr.advisory td{background:#fff4d6}
.banner{padding:8px 12px;font-weight:bold;font-size:15px;margin:4px 0}.ok{background:#d7efd7}.bad{background:#f8caca}
.warn{background:#fde9b8}.gtv{font-weight:normal;font-size:12px}
figure{margin:10px 0;page-break-inside:avoid}figure img{max-width:100%}figcaption{font-size:11px;color:#444}
ul.assume li{font-size:12px}.foot{font-size:11px;color:#555;margin-top:30px}
@media print{body{margin:8mm}h2{page-break-after:avoid}table,figure{page-break-inside:avoid}}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) broken++; }
  document.title = 'reirrad report: ' + imgs.length + ' images, ' + broken + ' broken';
});
"""


def render_report(inp: ReportInputs) -> str:
    """The report as one HTML string."""
    p, case, rec = inp.protocol, inp.case, inp.record
    ev = rec["evaluation"]
    inputs = rec["inputs"]
    oars = [k for k in case.structures if p.organs[k].kind == "oar"]
    target = p.prescription.target
    parts: List[str] = []
    ident = ""
    if inp.show_identity and inp.identity:
        ident = (f"<p>patient {html.escape(inp.identity.get('patient_name', ''))}, ID "
                 f"{html.escape(inp.identity.get('patient_id', ''))}</p>")
    tps = inputs["tps_objects"]
    parts.append(f"<h1>{html.escape(inp.title)}</h1>{ident}"
                 f"<p>case {html.escape(str(tps.get('case')))}, plan <b>{html.escape(str(tps.get('plan')))}</b>, beam set "
                 f"{html.escape(str(tps.get('beam_set')))} on {html.escape(str(tps.get('examination')))}</p>")
    parts.append(_banners(rec))
    grid = inputs["dose_grid"]
    assumptions = [
        f"protocol {p.name} v{p.version} (SHA-256 {p.sha256[:16]}…): {html.escape(p.title)}",
        "α/β (Gy): " + ", ".join(f"{html.escape(p.organs[k].display_name)} {p.organs[k].alpha_beta_gy:g}"
                                 for k in case.structures),
        "courses summed voxel by voxel in BED of each organ's α/β; D is each voxel's own dose",
        f"SBRT: {inputs['sbrt']['prescription_gy']} Gy in {inputs['sbrt']['fractions']} fractions",
        f"dose grid {grid['shape_zyx']} voxels (z, y, x), spacing {grid['spacing_mm']} mm",
        "D0.035cc / D1cc rule: the dose of the voxel at which the hottest voxels' covered volume first "
        "reaches the volume (no interpolation; partial voxels weighted by coverage)",
        "a Dmax or D_V limit passes only when that voxel rule and the sub-voxel rule of reirrad dvh (ROI on "
        "~0.5 mm sub-voxels, dose interpolated and spread) both pass; the margin shown is the smaller",
        f"unknown prior dose policy: {inputs['unknown_prior_policy']}",
    ]
    for pr in inputs["priors"]:
        assumptions.append(f"prior course {html.escape(pr['name'])}: {pr['fractions']} fx (from {pr['fractions_from']}),"
                           f" recovery {pr['recovery'] if isinstance(pr['recovery'], dict) else format(pr['recovery'], 'g')}" + (", resampled to the dose grid (trilinear)"
                                                              if pr["resampled_to_dose_grid"] else "")
                           + (f", registration uncertainty {pr['uncertainty_mm']:g} mm (dose replaced by its maximum "
                              "over a sphere of that radius)" if pr.get("uncertainty_mm") else
                              ", registration: as mapped in the planning system")
                           + (f"; mapped maximum {pr['mapped_max_gy']:.1f} Gy for a stated total of "
                              f"{pr['total_gy']:g} Gy" if pr.get("total_gy") else ""))
    for name in inputs.get("excluded_doses", []):
        assumptions.append(f"evaluation dose {html.escape(name)}: excluded by the configuration (not a prior course)")
    if not inputs["priors"]:
        assumptions.append("no prior course: cumulative dose = SBRT dose")
    if p.notes:
        assumptions.append(html.escape(p.notes))
    parts.append("<h2>Assumptions</h2><ul class='assume'>" + "".join(f"<li>{a}</li>" for a in assumptions) + "</ul>")
    parts.append("<h2>Constraints (failures first)</h2>" + _constraint_table(ev) + _goal_table(ev))
    parts.append(_findings(rec))
    if rec.get("eligibility"):
        e = rec["eligibility"]
        parts.append(f"<h2>Eligibility</h2><p><b>{html.escape(e['recommendation'])}</b></p><ul>"
                     + "".join(f"<li>{html.escape(r)}</li>" for r in e["reasons"])
                     + "".join(f"<li><b>{html.escape(w)}</b></li>" for w in e["warnings"]) + "</ul>")
    if inp.before_record is not None:
        bev = inp.before_record["evaluation"]
        parts.append("<h2>Before optimization (the plan as loaded)</h2>"
                     + f'<div class="banner {"ok" if bev["all_pass"] else "bad"}">'
                     + ("all constraints pass" if bev["all_pass"] else "constraints fail") + "</div>"
                     + _constraint_table(bev))
    parts.append("<h2>Dose-volume histograms</h2>")
    markers_bed: Dict[str, list] = {}
    for c in ev["constraints"]:
        if c["domain"] == DoseDomain.CUMULATIVE_BED and c["limit"] is not None and not c["advisory"]:
            s = case.structures[c["organ"]]
            vol = {"Dmax": 0.0}.get(c["metric"])
            if c["metric"].endswith("cc"):
                vol = 100.0 * float(c["metric"][1:-2]) / s.volume_cc
            markers_bed.setdefault(c["organ"], []).append((c["limit"], vol or 0.0, f"{c['metric']} {c['comparison']} "
                                                                                   f"{c['limit']:g}"))
    parts.append(_img(figs.dvh_figure(case, p, DoseDomain.CUMULATIVE_EQD2, 2.0, "Cumulative EQD2 (α/β = 2 Gy), all courses",
                                      oars, xlabel="cumulative EQD2, α/β 2 (Gy)"),
                      "Cumulative EQD2 DVHs (α/β 2), as the seed's Fig. 4"))
    parts.append(_img(figs.dvh_figure(case, p, DoseDomain.CUMULATIVE_BED, None, "Cumulative BED (each organ's α/β) with the "
                                      "cumulative limits", oars, markers_bed, xlabel="cumulative BED (Gy)"),
                      "Cumulative BED DVHs with cumulative limits (crosses)"))
    markers_sbrt: Dict[str, list] = {}
    for c in ev["constraints"]:
        if c["domain"] == DoseDomain.SBRT_PHYSICAL and c["limit"] is not None and c["metric"].endswith("cc") \
                and c["organ"] in case.structures and not c["advisory"]:
            vol = 100.0 * float(c["metric"][1:-2]) / case.structures[c["organ"]].volume_cc
            markers_sbrt.setdefault(c["organ"], []).append((c["limit"], min(vol, 100.0), f"{c['metric']} ≤ {c['limit']:g}"))
    parts.append(_img(figs.dvh_figure(case, p, DoseDomain.SBRT_PHYSICAL, None, "SBRT only (physical dose)", oars + [target],
                                      markers_sbrt, xlabel="SBRT physical dose (Gy)"),
                      "SBRT-only DVHs with the SBRT-only limits (crosses), PTVeval included"))
    parts.append("<h2>Slices</h2>")
    limit_map = np.full(case.grid.shape_zyx, np.nan)
    for ol in inp.limits.values():
        if p.organs[ol.organ].kind != "oar":
            continue
        inside = case.structures[ol.organ].mask > 0 if ol.organ in case.structures else np.zeros(case.grid.shape_zyx, bool)
        limit_map = np.where(inside, np.fmin(limit_map, ol.strict_gy), limit_map)
    outline = [k for k in ("spinal_cord_prv", "esophagus", target) if k in case.structures]
    parts.append(_img(figs.slices_figure(case, p, limit_map, "Per-voxel SBRT limit (strict, Gy in "
                                         f"{case.sbrt.fractions} fx)", "Gy", outline, target),
                      "Per-voxel SBRT-only physical dose limit inside the organs at risk"))
    parts.append(_img(figs.slices_figure(case, p, domain_dose(case, DoseDomain.CUMULATIVE_EQD2, 2.0),
                                         "Cumulative EQD2 (α/β 2), all courses", "Gy", outline, target),
                      "Cumulative EQD2 (α/β 2)"))
    if rec.get("tuning_log"):
        log = rec["tuning_log"]
        parts.append("<h2>Tuning log</h2>")
        rows = "".join(
            f"<tr class='{'pass' if e['all_pass'] else 'fail'}'><td>{e['iteration']}</td>"
            f"<td class='num'>{e['ptv_eval']['v_rx_percent']:.1f}</td><td class='num'>{e['ptv_eval']['d95_gy']:.2f}</td>"
            f"<td>{'pass' if e['all_pass'] else 'FAIL: ' + html.escape(', '.join(e['failures']))}</td>"
            f"<td class='note'>{html.escape('; '.join(e['changes']) or 'no change')}</td></tr>" for e in log)
        parts.append(f"<table id='tuning'><tr><th>run</th><th>V{p.prescription.dose_gy:g}Gy (%)</th><th>D95 (Gy)</th>"
                     f"<th>protocol</th><th>changes</th></tr>{rows}</table>"
                     f"<p>RunOptimization calls: {rec.get('run_optimization_calls')}; stop: "
                     f"{html.escape(str(rec.get('stop_reason')))}</p>")
        replaced = rec.get("replaced_constraints") or []
        if replaced:
            items = "; ".join(f"{html.escape(str(c['roi']))} {html.escape(str(c['function']))}"
                              + (f" {c['dose_level_gy']:.2f} Gy" if c.get("dose_level_gy") is not None else "")
                              for c in replaced)
            parts.append(f"<p id='replaced'>Constraints of the source plan replaced by the limit zones in "
                         f"{html.escape(str(rec.get('optimized_plan')))} (the source plan keeps them): {items}</p>")
        parts.append(_img(figs.tuning_figure(log, p.prescription.dose_gy), "Coverage and worst margins per optimization"))
    parts.append("<h2>Dose metrics in the layout of the seed's Table 3</h2>")
    for name, t in rec.get("table3", {}).items():
        parts.append(_table3(name, t))
    unmatched = inputs.get("unmatched_rois", [])
    if unmatched:
        parts.append("<p>ROIs not matched to a protocol organ (not evaluated): "
                     + html.escape(", ".join(unmatched)) + "</p>")
    parts.append(f"<p class='foot'>reirrad {html.escape(str(rec.get('software_version')))}, record created "
                 f"{html.escape(str(rec.get('created', '')))}. Not for clinical use without local validation. "
                 "Source of the protocol: " + html.escape(p.source) + "</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>reirrad report</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>" + "\n".join(parts) + "</body></html>")


def write_report(inp: ReportInputs, path: str) -> str:
    """Render and write the report; return its path."""
    text = render_report(inp)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
