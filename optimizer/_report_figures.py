"""Matplotlib figures of the report, returned as PNG bytes (offline only; Agg backend).

Every function takes neutral-model data (Gy, mm, arrays (z, y, x)) and returns the PNG
of one figure.  matplotlib is imported inside the functions.
"""
from __future__ import annotations

import io
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from constraints.dvh import compute_dvh
from constraints.domain import DoseDomain
from constraints.evaluation import PlanCase, domain_dose
from constraints.protocol import Protocol

__all__ = ["dvh_figure", "slices_figure", "tuning_figure"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _curve(values: np.ndarray, structure, n: int = 400) -> Tuple[np.ndarray, np.ndarray]:
    h = compute_dvh(values, structure)
    levels = np.linspace(0.0, max(h.dmax * 1.02, 1e-6), n)
    return levels, 100.0 * h.curve(levels) / h.total_volume_cc


def dvh_figure(case: PlanCase, protocol: Protocol, domain: DoseDomain, alpha_beta_gy: Optional[float], title: str,
               organs: Sequence[str], limit_markers: Mapping[str, List[Tuple[float, float, str]]] = {},
               xlabel: str = "") -> bytes:
    """Cumulative DVHs (relative volume) of ``organs`` in one domain, with limit markers.

    ``limit_markers[organ]`` = list of (dose, volume %, label) points drawn as crosses.
    ``alpha_beta_gy`` None means: each organ's own α/β.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for i, key in enumerate(organs):
        s = case.structures[key]
        ab = alpha_beta_gy if alpha_beta_gy is not None else protocol.organs[key].alpha_beta_gy
        try:
            x, y = _curve(domain_dose(case, domain, ab), s)
        except Exception as exc:  # not evaluable (unknown prior dose): say so in the legend
            ax.plot([], [], color=_COLORS[i % len(_COLORS)], label=f"{s.name}: not evaluable ({type(exc).__name__})")
            continue
        color = _COLORS[i % len(_COLORS)]
        ax.plot(x, y, color=color, lw=1.8, label=f"{s.name} ({s.volume_cc:.1f} cc)")
        for dose, vol, label in limit_markers.get(key, []):
            ax.plot([dose], [vol], marker="x", ms=9, mew=2, color=color)
            ax.annotate(label, (dose, vol), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
    ax.set_xlabel(xlabel or domain)
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)


def _centre_index(mask: np.ndarray) -> Tuple[int, int, int]:
    idx = np.argwhere(mask > 0.5)
    if idx.size == 0:
        idx = np.argwhere(mask > 0)
    return tuple(int(v) for v in np.round(idx.mean(axis=0)))


def slices_figure(case: PlanCase, protocol: Protocol, values: np.ndarray, title: str, unit: str,
                  outline_organs: Sequence[str], centre_organ: str, vmax: Optional[float] = None) -> bytes:
    """Axial and sagittal slices of ``values`` through ``centre_organ``'s centre, with outlines."""
    plt = _plt()
    iz, iy, ix = _centre_index(case.structures[centre_organ].mask)
    g = case.grid
    x, y, z = g.axes_mm()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    finite = values[np.isfinite(values)]
    vmax = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    panels = [(axes[0], values[iz], (x[0], x[-1], y[-1], y[0]), "x (mm)", "y (mm)", f"axial z = {z[iz]:.1f} mm",
               lambda m: m[iz]),
              (axes[1], values[:, :, ix], (y[0], y[-1], z[0], z[-1]), "y (mm)", "z (mm)", f"sagittal x = {x[ix]:.1f} mm",
               lambda m: m[:, :, ix])]
    for ax, img, extent, xl, yl, ttl, cut in panels:
        origin = "upper" if ax is axes[0] else "lower"
        im = ax.imshow(np.ma.masked_invalid(img), cmap="viridis", vmin=0, vmax=vmax, extent=extent, origin=origin,
                       aspect="equal", interpolation="nearest")
        for i, key in enumerate(outline_organs):
            if key not in case.structures:
                continue
            m = cut(case.structures[key].mask)
            if (m >= 0.5).any() and (m < 0.5).any():
                ax.contour(m, levels=[0.5], colors=[_COLORS[(i + 1) % len(_COLORS)]], linewidths=1.2,
                           extent=extent, origin=origin)
                ax.plot([], [], color=_COLORS[(i + 1) % len(_COLORS)], label=case.structures[key].name)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(ttl, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    cbar = fig.colorbar(im, ax=axes, shrink=0.85)
    cbar.set_label(unit)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def tuning_figure(log: Sequence[Mapping[str, object]], rx_gy: float) -> bytes:
    """Coverage (V_rx, %) and worst margin per organ across the tuning iterations."""
    plt = _plt()
    it = [int(e["iteration"]) for e in log]
    # the twin axis's label sits right of the left panel: room between the panels keeps it clear of the right
    # panel's tick labels and label (they overlapped at the default spacing)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"wspace": 0.55})
    a1.plot(it, [e["ptv_eval"]["v_rx_percent"] for e in log], "o-", color="#1f77b4", label=f"V{rx_gy:g}Gy (%)")
    a1b = a1.twinx()
    a1b.plot(it, [e["ptv_eval"]["d95_gy"] for e in log], "s--", color="#d62728", label="D95 (Gy)")
    a1.set_xlabel("optimization")
    a1.set_ylabel(f"PTVeval V{rx_gy:g}Gy (%)", color="#1f77b4")
    a1b.set_ylabel("PTVeval D95 (Gy)", color="#d62728")
    a1.set_xticks(it)
    a1.grid(alpha=0.3)
    a1.set_title("coverage", fontsize=9)
    names = sorted({k for e in log for k in e["worst_margin"]})
    for i, n in enumerate(names):
        a2.plot(it, [e["worst_margin"].get(n, np.nan) for e in log], "o-", color=_COLORS[i % len(_COLORS)], label=n)
    a2.axhline(0.0, color="k", lw=0.8)
    a2.set_xlabel("optimization")
    a2.set_ylabel("worst margin (limit unit)")
    a2.set_xticks(it)
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    a2.set_title("worst margin per ROI (< 0 fails)", fontsize=9)
    return _png(fig)
