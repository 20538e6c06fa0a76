"""``cohort.html``: the headline counts, the seed's Fig. 4 bundle and the esophagus rows of Table 3.

Fig. 4 of the seed: the cumulative esophageal DVHs (EQD2, α/β 2 Gy) of every patient,
the one who died of esophageal perforation in red.  Here red marks every patient whose
plan breaches a cumulative esophageal limit of the protocol (the plans that met the
SBRT-only limits and would still have been refused), black the others.  The figure is
a matplotlib PNG embedded in the page (Agg backend; no file beside the page).
"""
from __future__ import annotations

import base64
import html
import io
import os
from typing import Any, Dict, List, Sequence

__all__ = ["headline_counts", "dvh_figure_png", "write_html"]


def headline_counts(records: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """Patients, completed, failed; plans meeting the SBRT-only limits; of those, breaching a cumulative limit."""
    done = [r for r in records if r["status"] == "completed"]
    sbrt_ok = [r for r in done if r["summary"]["sbrt_only_pass"]]
    return {"patients": len(records), "completed": len(done), "failed": len(records) - len(done),
            "sbrt_only_pass": len(sbrt_ok),
            "sbrt_only_pass_but_cumulative_breach": sum(1 for r in sbrt_ok if r["summary"]["cumulative_breach"]),
            "cumulative_esophagus_breach": sum(1 for r in done if r["summary"]["cumulative_esophagus_breach"]),
            "all_pass": sum(1 for r in done if r["summary"]["all_pass"])}


def dvh_figure_png(records: Sequence[Dict[str, Any]]) -> bytes:
    """The Fig. 4-style bundle as PNG bytes."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    red = black = 0
    for r in sorted(records, key=lambda r: r["patient"]):
        d = r.get("esophagus_dvh_eqd2_ab2") if r["status"] == "completed" else None
        if not d:
            continue
        breach = r["summary"]["cumulative_esophagus_breach"]
        red, black = red + breach, black + (not breach)
        ax.plot(d["dose_gy"], d["volume_cc"], color="red" if breach else "black", lw=1.6 if breach else 0.8,
                alpha=0.95 if breach else 0.6, zorder=3 if breach else 2)
    ax.plot([], [], color="red", label=f"breaches a cumulative esophageal limit ({red})")
    ax.plot([], [], color="black", label=f"within the cumulative esophageal limits ({black})")
    ax.set_xlabel("cumulative dose, EQD2 (α/β = 2 Gy), Gy")
    ax.set_ylabel("esophagus volume, cm³")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}"
    return html.escape(str(v))


def _table(columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(path: str, records: Sequence[Dict[str, Any]], table3: Sequence[Dict[str, Any]],
               strategy_rows: Sequence[Dict[str, Any]], protocol_line: str) -> str:
    """Write the page (atomically); return its path."""
    c = headline_counts(records)
    failed = [r for r in sorted(records, key=lambda r: r["patient"]) if r["status"] != "completed"]
    png = base64.b64encode(dvh_figure_png(records)).decode("ascii")
    parts: List[str] = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>reirrad cohort</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:1em auto}table{border-collapse:collapse;"
        "font-size:85%}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        ".fail{color:#b00}</style></head><body>",
        "<h1>reirrad cohort</h1>", f"<p>{html.escape(protocol_line)}</p>",
        "<h2>Headline</h2><ul>",
        f"<li>{c['patients']} patients: {c['completed']} assessed, {c['failed']} failed</li>",
        f"<li>{c['sbrt_only_pass']} plans meet every SBRT-only limit; <b>{c['sbrt_only_pass_but_cumulative_breach']}"
        "</b> of them breach a cumulative limit (the SBRT-only constraints were not enough)</li>",
        f"<li>{c['cumulative_esophagus_breach']} plans breach a cumulative esophageal limit; {c['all_pass']} meet "
        "every binding constraint</li></ul>",
        "<h2>Cumulative esophageal DVHs (Fig. 4 of the seed)</h2>",
        f"<figure><img alt='cumulative esophageal DVHs' src='data:image/png;base64,{png}'><figcaption>EQD2 "
        "(α/β 2 Gy) of all courses; red: the plan breaches a cumulative esophageal limit.</figcaption></figure>",
        "<h2>Esophagus (Table 3 layout: median [Q1, Q3], maximum)</h2>",
    ]
    eso = [r for r in table3 if r["organ"] == "esophagus"]
    cols = ["dose", "quantity", "alpha_beta_gy", "n"] + [f"{m}_{s}" for m in ("Dmax", "D0.035cc", "D1cc")
                                                         for s in ("median", "q1", "q3", "max")]
    parts.append(_table(cols, eso) if eso else "<p>no esophagus assessed</p>")
    if strategy_rows:
        parts.append("<h2>FMO strategies</h2>")
        cols = [k for k in strategy_rows[0] if k not in ("error",)]
        parts.append(_table(cols, strategy_rows))
    parts.append("<h2>Failed patients</h2>")
    if failed:
        parts.append("<ul>" + "".join(f"<li class='fail'><b>{html.escape(r['patient'])}</b>: "
                                      f"{html.escape(str(r['error']))}</li>" for r in failed) + "</ul>")
    else:
        parts.append("<p>none</p>")
    parts.append("</body></html>")
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    os.replace(tmp, path)
    return path
