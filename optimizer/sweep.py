"""Strategy comparison and the coverage-versus-margin trade-off curve (offline).

:func:`compare_strategies` solves ``exact``, ``zones`` and ``sbrt-only`` on one
influence matrix; :func:`margin_sweep` repeats each strategy for several safety
margins on the esophagus/cord limits; :func:`sweep_table` and :func:`plot_sweep`
present the result (matplotlib imported inside, Agg backend, PNG).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from constraints.protocol import Protocol

from .fmo import FmoOptions
from .fmo_case import FmoCase
from .fmo_strategies import STRATEGIES, StrategyPlan, plan_strategy

__all__ = ["SweepPoint", "compare_strategies", "margin_sweep", "sweep_table", "plot_sweep", "DEFAULT_MARGINS_GY"]

DEFAULT_MARGINS_GY = (0.0, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class SweepPoint:
    """One (strategy, margin) solve, summarized.

    Attributes
    ----------
    strategy : str
    margin_gy : float, Gy
    status : str
    solve_s : float, s
    v_rx_percent, d95_gy : float or None  (PTVeval V24Gy %, D95 Gy)
    cumulative_pass : bool or None  (esophageal cumulative limits, exact evaluation)
    all_pass : bool or None
    """

    strategy: str
    margin_gy: float
    status: str
    solve_s: float
    v_rx_percent: Optional[float]
    d95_gy: Optional[float]
    cumulative_pass: Optional[bool]
    all_pass: Optional[bool]


def _point(p: StrategyPlan) -> SweepPoint:
    return SweepPoint(p.strategy, p.margin_gy, p.result.status, p.result.solve_s, p.v_rx_percent, p.d95_gy,
                      p.cumulative_pass, p.all_pass)


def compare_strategies(fcase: FmoCase, protocol: Protocol, *, strategies: Sequence[str] = STRATEGIES,
                       margin_gy: float = 0.0, options: FmoOptions = FmoOptions()) -> Tuple[StrategyPlan, ...]:
    """Every strategy on the same matrix and objective (see :mod:`optimizer.fmo_strategies`)."""
    return tuple(plan_strategy(fcase, protocol, s, margin_gy=margin_gy, options=options) for s in strategies)


def margin_sweep(fcase: FmoCase, protocol: Protocol, *, margins_gy: Sequence[float] = DEFAULT_MARGINS_GY,
                 strategies: Sequence[str] = STRATEGIES, options: FmoOptions = FmoOptions()) -> Tuple[SweepPoint, ...]:
    """Coverage against the safety margin on the esophagus/cord limits (Gy), per strategy.

    ``sbrt-only`` ignores cumulative limits; its margin lowers the cord table limit
    and the esophagus 20 Gy cap only.
    """
    out: List[SweepPoint] = []
    for s in strategies:
        for m in margins_gy:
            out.append(_point(plan_strategy(fcase, protocol, s, margin_gy=float(m), options=options)))
    return tuple(out)


def sweep_table(points: Sequence[SweepPoint]) -> Tuple[Tuple[str, ...], List[list]]:
    """Headers and rows for :func:`optimizer.cli._output.print_table`."""
    headers = ("strategy", "margin_gy", "status", "solve_s", "V24Gy_%", "D95_gy", "esoph_cum_pass", "all_pass")
    rows = [[p.strategy, p.margin_gy, p.status, p.solve_s, p.v_rx_percent, p.d95_gy, p.cumulative_pass, p.all_pass]
            for p in points]
    return headers, rows


def plot_sweep(points: Sequence[SweepPoint], path: str, *, title: str = "") -> str:
    """PTVeval V24Gy (%) against margin (Gy), one line per strategy; failed cumulative checks marked ×."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for s in dict.fromkeys(p.strategy for p in points):
        pts = [p for p in points if p.strategy == s and p.v_rx_percent is not None]
        if not pts:
            continue
        line, = ax.plot([p.margin_gy for p in pts], [p.v_rx_percent for p in pts], "o-", label=s)
        bad = [p for p in pts if p.cumulative_pass is False]
        if bad:
            ax.plot([p.margin_gy for p in bad], [p.v_rx_percent for p in bad], "x", color="red", markersize=10,
                    label=f"{s}: cumulative esophagus limit breached")
    ax.set_xlabel("safety margin on esophagus / cord PRV limits (Gy)")
    ax.set_ylabel("PTVeval V24Gy (%)")
    ax.set_title(title or "FMO coverage ceiling vs margin")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
