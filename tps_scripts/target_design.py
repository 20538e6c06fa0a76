"""How the loop asks for PTVeval's coverage: the target objectives, the dose fall-off, the
optional cut of PTVeval into a core and an edge, and the MinDvh volume that adapts to what
the limits let reach Rx.

The objectives must not fight the limit zones: a MinDose at Rx on every PTVeval voxel
spends the optimizer on voxels the limits hold below Rx.  The default
(:class:`~tps_scripts.tuning_settings.TuningSettings` ``target_design='min_dvh'``) is a MinDvh
at Rx + 0.5 Gy to 80 % of PTVeval with a weak MinDose at Rx; when a passing run's V(Rx) is
under ``adapt_ratio`` × its V(Rx − 2 Gy), the MinDvh asks for that V(Rx − 2 Gy) instead
(:func:`adapt_min_dvh_wanted`, :func:`adapted_min_dvh_percent`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from constraints.dvh import compute_dvh
from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

from .limit_zones import Zone
from .tuning_settings import TuningSettings
from .writeback import add_function, create_algebra_roi, create_dose_threshold_roi, step

__all__ = ["ptv_coverage", "add_target_functions", "split_by_distance", "split_by_dose",
           "replace_target_by_dose_split", "adapt_min_dvh_wanted", "adapted_min_dvh_percent"]


def ptv_coverage(dose_gy: np.ndarray, case: PlanCase, protocol: Protocol) -> Dict[str, float]:
    """PTVeval's V(Rx) (%), D95 (Gy) and Dmax (Gy) of a total dose (Gy), by the voxel DVH rule."""
    target = case.structures[protocol.prescription.target]
    h = compute_dvh(dose_gy, target)
    rx = protocol.prescription.dose_gy
    return {f"v{rx:g}gy_percent": h.v_percent(rx), "d95_gy": h.d_percent(95), "dmax_gy": h.dmax,
            "v_rx_percent": h.v_percent(rx)}


def add_target_functions(po: Any, case: PlanCase, protocol: Protocol, s: TuningSettings,
                         target_rois: Tuple[str, Optional[str]]) -> List[Any]:
    """Add the target objectives on ``target_rois`` (core, edge or None), PTVeval's MaxDose
    objective and the dose fall-off on the external; return the target functions (the MinDvh
    first under ``'min_dvh'``), which the loop may later change or delete."""
    rx = protocol.prescription.dose_gy
    target = case.structures[protocol.prescription.target].name
    core, edge = target_rois
    made = []
    with step(f"add PTV objectives on {core}" + (f" and {edge}" if edge else "")):
        if s.target_design == "min_dvh":
            made.append(add_function(po, "MinDvh", core, dose_level_gy=rx + s.target_headroom_gy,
                                     percent_volume=s.target_dvh_percent, weight=s.target_min_dose_weight))
            made.append(add_function(po, "MinDose", core, dose_level_gy=rx * s.edge_level_factor,
                                     weight=s.edge_weight))
        else:
            made.append(add_function(po, "MinDose", core, dose_level_gy=rx + s.target_headroom_gy,
                                     weight=s.target_min_dose_weight))
        if edge:
            made.append(add_function(po, "MinDose", edge, dose_level_gy=rx * s.edge_level_factor,
                                     weight=s.edge_weight))
        add_function(po, "MaxDose", target, dose_level_gy=rx * s.target_max_dose_factor,
                     weight=s.target_max_dose_weight)
    external = [st.name for k, st in case.structures.items() if protocol.organs[k].kind == "external"]
    if external:
        with step(f"add dose fall-off on {external[0]}"):
            add_function(po, "DoseFallOff", external[0], high_dose_gy=rx * s.falloff_high_factor,
                         low_dose_gy=rx * s.falloff_low_factor, low_dose_distance_mm=s.falloff_distance_mm,
                         weight=s.falloff_weight)
    return made


def split_by_distance(pm: Any, examination: Any, zones: List[Zone], case: PlanCase, protocol: Protocol,
                      s: TuningSettings) -> Tuple[str, Optional[str]]:
    """``rr_PTVeval_core`` = PTVeval minus every organ below Rx expanded by (Rx − its lowest zone
    level) / gradient; ``rr_PTVeval_edge`` = PTVeval minus the core.  (PTVeval, None) when no
    organ's zones lie below Rx or the core would be empty."""
    rx = protocol.prescription.dose_gy
    target = case.structures[protocol.prescription.target].name
    lowest: Dict[str, float] = {}
    for z in zones:
        if z.kind == "whole" and z.created:
            continue          # a region of the external (unspecified tissue): no cut
        name = case.structures[z.organ].name
        lowest[name] = min(lowest.get(name, np.inf), z.level_gy())
    cuts = [(name, min((rx - level) / s.split_gradient_gy_per_mm, 30.0)) for name, level in sorted(lowest.items())
            if level < rx]
    if not cuts:
        return target, None
    previous = target
    made = []
    for k, (name, margin_mm) in enumerate(cuts):
        with step(f"cut PTVeval core: minus {name} + {margin_mm:.1f} mm"):
            roi = create_algebra_roi(pm, f"rr_{target}_core" if k == len(cuts) - 1 else f"rr_tmp_core_{k + 1}",
                                     examination, [previous], b_rois=[name], b_expand_mm=margin_mm,
                                     result="Subtraction", color="Cyan")
        made.append(roi)
        previous = roi.Name
    core = made[-1]
    with step("create PTVeval edge (PTVeval minus its core)"):
        edge = create_algebra_roi(pm, f"rr_{target}_edge", examination, [target], b_rois=[core.Name],
                                  result="Subtraction", color="Blue")
    with step("delete temporary core ROIs"):
        for roi in made[:-1]:
            roi.DeleteRoi()
    return core.Name, edge.Name


def split_by_dose(pm: Any, examination: Any, dose: Any, fractions: int, case: PlanCase, protocol: Protocol,
                  s: TuningSettings) -> Tuple[str, str]:
    """``rr_PTVeval_core`` = PTVeval ∩ {dose ≥ Rx − margin}; ``rr_PTVeval_edge`` = the rest."""
    rx = protocol.prescription.dose_gy
    target = case.structures[protocol.prescription.target].name
    with step("create the reached-isodose ROI of the last run"):
        iso = create_dose_threshold_roi(pm, "rr_tmp_isodose", dose, (rx - s.split_dose_margin_gy) / fractions)
    with step("cut PTVeval core and edge by the reached isodose"):
        core = create_algebra_roi(pm, f"rr_{target}_core", examination, [target, iso.Name],
                                  a_operation="Intersection", color="Cyan")
        edge = create_algebra_roi(pm, f"rr_{target}_edge", examination, [target], b_rois=[iso.Name],
                                  result="Subtraction", color="Blue")
        iso.DeleteRoi()
    return core.Name, edge.Name


def replace_target_by_dose_split(po: Any, pm: Any, examination: Any, dose: Any, fractions: int, case: PlanCase,
                                 protocol: Protocol, s: TuningSettings, target_functions: List[Any]) -> str:
    """``'split_dose'`` after the first passing run: delete the target functions, cut PTVeval
    by that run's Rx − ``split_dose_margin_gy`` isodose and ask the core for Rx + headroom and the
    edge for Rx; return the change for the tuning log."""
    with step("delete the PTVeval MinDose before splitting PTVeval"):
        for f in target_functions:
            f.DeleteFunction()
    core, edge = split_by_dose(pm, examination, dose, fractions, case, protocol, s)
    rx = protocol.prescription.dose_gy
    with step(f"add MinDose objectives on {core} and {edge}"):
        add_function(po, "MinDose", core, dose_level_gy=rx + s.target_headroom_gy,
                     weight=s.target_min_dose_weight)
        add_function(po, "MinDose", edge, dose_level_gy=rx * s.edge_level_factor,
                     weight=s.edge_weight)
    return f"split PTVeval at the {rx - s.split_dose_margin_gy:g} Gy isodose"


def _raise_wanted(entry: Dict[str, Any], s: TuningSettings) -> bool:
    return (s.adapt_raise_within_percent > 0
            and entry["ptv_eval"]["v_rx_percent"] >= s.target_dvh_percent - s.adapt_raise_within_percent
            and entry["v_below_rx_percent"] > s.target_dvh_percent + s.min_gain_percent)


def adapt_min_dvh_wanted(entry: Dict[str, Any], s: TuningSettings) -> bool:
    """Whether a passing run (``entry`` of the tuning log) should change the MinDvh volume:

    * lower it: V(Rx) under ``adapt_ratio`` × V(Rx − ``adapt_dvh_below_gy``) (at least
      ``min_dvh_percent``), and that volume below the one asked; where V(Rx) is already most
      of it, a smaller volume covered less;
    * raise it: V(Rx) within ``adapt_raise_within_percent`` of the volume asked and V(Rx −
      ``adapt_dvh_below_gy``) above it: the DVH penalty is met and pushes no further, while
      the limits let more volume come near Rx."""
    if s.target_design != "min_dvh" or not s.adapt_dvh_percent:
        return False
    lower = (entry["ptv_eval"]["v_rx_percent"] < s.adapt_ratio * max(entry["v_below_rx_percent"], s.min_dvh_percent)
             and entry["v_below_rx_percent"] < s.target_dvh_percent)
    return lower or _raise_wanted(entry, s)


def adapted_min_dvh_percent(entry: Dict[str, Any], s: TuningSettings) -> float:
    """The MinDvh volume (%) to ask next: the run's V(Rx − ``adapt_dvh_below_gy``), at least
    ``min_dvh_percent`` and, unless raising (see :func:`adapt_min_dvh_wanted`), at most
    ``target_dvh_percent``; below 100 %."""
    v = max(s.min_dvh_percent, entry["v_below_rx_percent"])
    return min(v, 99.0) if _raise_wanted(entry, s) else min(s.target_dvh_percent, v)
