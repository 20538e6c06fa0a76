"""What reirrad removes from its copy of the user's plan before adding its own functions.

The copy (``rr_<plan>``) starts with the user's objectives and constraints.  Constraints on
the organs that get limit zones, and MaxDose functions on ROIs wholly inside one organ's
zones (a planner's ring), are superseded by the zones' exact per-voxel limits; the copied
objectives on PTVeval and the dose fall-offs ask for 24 Gy everywhere and fight those limits.
Each removal is one write step, and each is listed in the record; the user's plan keeps them.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

from .limit_zones import Zone
from .units import cgy_to_gy
from .writeback import step

__all__ = ["replace_copied_constraints", "replace_copied_target_objectives", "inside_zones"]


def replace_copied_target_objectives(po: Any, case: PlanCase, protocol: Protocol, zones: List[Zone] = (),
                                     coverage_of: Any = None) -> List[Dict[str, Any]]:
    """Delete, in reirrad's copy, the copied objectives on PTVeval, the copied dose fall-offs
    (reirrad sets its own) and the copied MaxDose objectives on ROIs wholly inside one organ's
    zones (a planner's ring: the zone holds the exact limit there); returns what was removed
    (for the record)."""
    target = case.structures[protocol.prescription.target].name
    removed = []
    functions = list(po.Objective.ConstituentFunctions) if po.Objective is not None else []
    for f in functions:
        roi = f.ForRegionOfInterest.Name
        p = f.DoseFunctionParameters
        ftype = str(getattr(p, "FunctionType", type(p).__name__))
        is_falloff = getattr(p, "HighDoseLevel", None) is not None
        zoned = (ftype == "MaxDose" and coverage_of is not None and roi != target
                 and inside_zones(coverage_of(roi), list(zones)))
        if roi != target and not is_falloff and not zoned:
            continue
        item = {"roi": roi, "function": "DoseFallOff" if is_falloff else ftype}
        with step(f"remove the copied {item['function']} objective on {roi} (replaced by reirrad's)"):
            f.DeleteFunction()
        removed.append(item)
    return removed


def inside_zones(coverage: np.ndarray, zones: List[Zone]) -> bool:
    """True when every dose-grid voxel an ROI touches lies in one organ's zones."""
    touched = coverage > 0
    if not touched.any():
        return False
    by_organ: Dict[str, np.ndarray] = {}
    for z in zones:
        by_organ[z.organ] = by_organ.get(z.organ, np.zeros(coverage.shape, dtype=bool)) | (z.coverage > 0)
    return any(not (touched & ~region).any() for region in by_organ.values())


def replace_copied_constraints(po: Any, zones: List[Zone], case: PlanCase,
                               coverage_of: Any = None) -> List[Dict[str, Any]]:
    """Delete, in reirrad's copy of the plan, the copied constraints on the organs reirrad puts
    limit zones on, and the copied MaxDose constraints on ROIs that lie wholly inside one
    organ's zones (e.g. a planner's ring ``External − (PTV + 5 mm)`` inside the unspecified
    tissue's zone): the zones' exact limits supersede them, and a stricter planning level
    there only costs coverage.  The user's plan keeps them.  Objectives are kept.
    ``coverage_of(roi_name)`` gives an ROI's coverage on the dose grid.  Returns what was
    removed (for the record)."""
    managed = {case.structures[z.organ].name for z in zones if z.organ in case.structures}
    removed = []
    for f in list(po.Constraints):
        roi = f.ForRegionOfInterest.Name
        ftype = str(getattr(f.DoseFunctionParameters, "FunctionType", ""))
        superseded = (roi not in managed and coverage_of is not None and ftype == "MaxDose"
                      and inside_zones(coverage_of(roi), zones))
        if roi not in managed and not superseded:
            continue
        p = f.DoseFunctionParameters
        item = {"roi": roi, "function": str(getattr(p, "FunctionType", type(p).__name__))}
        level = getattr(p, "DoseLevel", None)
        if level is not None:
            item["dose_level_gy"] = cgy_to_gy(float(level))
        with step(f"remove the copied {item['function']} constraint on {roi} (replaced by reirrad's limit zones)"):
            f.DeleteFunction()
        removed.append(item)
    return removed
