"""What ``RunOptimization`` hands the numerical core: each API function as
:class:`~mock_tps._tps_function_spec.FunctionSpec` (s) on the dose grid.

- A function's ROI is the dose-grid voxels with coverage > 0, weighted by
  coverage × voxel volume (cm³).  An ROI with no such voxel raises
  :class:`~mock_tps._api.InvalidOperationException` naming it.
- Dose levels are read in cGy (totals over all fractions) and passed in Gy.
- DoseFallOff distances are measured (Euclidean, mm, between voxel centres) to
  the union (coverage ≥ 0.5 on the dose grid) of the ROIs of the target
  functions (MinDose, MinDvh, UniformDose, MinEud, TargetEud) of the same
  optimization, or of the ROIs with OrganType 'Target' when there are none.
  With ``AdaptToTargetDoseLevels`` the high level is the highest target DoseLevel.
- A TargetEud becomes MaxEud + MinEud at its level (the same penalty (E − D)²).
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from ._api import InvalidOperationException
from ._dose import cgy_to_gy
from ._geometry import MM_PER_CM
from ._optimization_functions import _TARGET_FUNCTIONS, OptimizationFunction
from . import _reference_dose as _ref

__all__ = ["function_specs"]


def function_specs(po: Any, funcs: List[OptimizationFunction], spec_cls: Any) -> Tuple[list, np.ndarray]:
    """The core's function specs of ``funcs`` (functions of the plan optimization ``po``) and,
    for each spec, the index in ``funcs`` of the function it comes from."""
    bs = po._beam_set
    grid = bs.FractionDose._grid
    ss = bs._structure_set
    vox_cc = float(np.prod(grid.spacing_xyz_mm)) / 1000.0
    distance = None
    specs = []
    owners: List[int] = []
    for k, f in enumerate(funcs):
        n_before = len(specs)
        name = f.ForRegionOfInterest.Name
        cov = ss._geometry(name)._coverage_on(grid).ravel()
        idx = np.flatnonzero(cov > 0)
        if idx.size == 0:
            raise InvalidOperationException(f"ROI '{name}' of a {f._type} function has no geometry "
                                            "on the dose grid: contour it or delete the function.")
        p = f.DoseFunctionParameters
        common = dict(voxel_index=idx, voxel_volume_weight=cov[idx] * vox_cc,
                      weight=p.Weight, is_constraint=f._is_constraint)
        if f._type == "DoseFallOff":
            if distance is None:
                distance = _distance_to_targets_mm(po, funcs)
            high = p.HighDoseLevel
            if p.AdaptToTargetDoseLevels:
                high = max((g.DoseFunctionParameters.DoseLevel for g in funcs
                            if g._type in _TARGET_FUNCTIONS), default=high)
            specs.append(spec_cls(function_type="DoseFallOff", high_dose_level_gy=cgy_to_gy(high),
                                  low_dose_level_gy=cgy_to_gy(p.LowDoseLevel),
                                  low_dose_distance_mm=p.LowDoseDistance * MM_PER_CM,
                                  distance_mm=distance[idx], **common))
        elif f._type == "UniformityConstraint":
            specs.append(spec_cls(function_type="UniformityConstraint",
                                  percent_std_deviation=p.PercentStdDeviation, **common))
        elif f._type == "MaxRefDose":
            reference = _ref.reference_total_gy(p.OfReferenceDose, bs.FractionationPattern.NumberOfFractions)
            specs.append(_ref.max_ref_dose_spec(spec_cls, reference, common))
        else:
            extra = {}
            if f._type in ("MaxDvh", "MinDvh"):
                extra["percent_volume"] = p.PercentVolume
            if f._type in ("MaxEud", "MinEud", "TargetEud"):
                extra["eud_parameter_a"] = p.EudParameterA
            # TargetEud = MaxEud + MinEud at the same level: (E - D)^2 exactly, one term zero.
            for t in (("MaxEud", "MinEud") if f._type == "TargetEud" else (f._type,)):
                specs.append(spec_cls(function_type=t, dose_level_gy=cgy_to_gy(p.DoseLevel), **extra, **common))
        owners.extend([k] * (len(specs) - n_before))
    return specs, np.asarray(owners, dtype=int)


def _distance_to_targets_mm(po: Any, funcs: List[OptimizationFunction]) -> np.ndarray:
    """Distance (mm) of every dose-grid voxel (flattened z, y, x) to the fall-off's targets (0 inside)."""
    from scipy.ndimage import distance_transform_edt

    bs = po._beam_set
    grid = bs.FractionDose._grid
    ss = bs._structure_set
    names = {f.ForRegionOfInterest.Name for f in funcs if f._type in _TARGET_FUNCTIONS}
    if not names:
        names = {r.Name for r in po._plan._case.PatientModel.RegionsOfInterest
                 if r.OrganData.OrganType == "Target" and ss._geometry(r.Name).HasContours()}
    if not names:
        raise InvalidOperationException("DoseFallOff needs a target: add a target function or a "
                                        "Target ROI with geometry.")
    mask = np.zeros(grid.shape_zyx, dtype=bool)
    for n in names:
        mask |= ss._geometry(n)._coverage_on(grid) >= 0.5
    if not mask.any():
        raise InvalidOperationException(f"DoseFallOff target(s) {sorted(names)} cover no dose-grid voxel "
                                        "by half or more.")
    dx, dy, dz = grid.spacing_xyz_mm
    return distance_transform_edt(~mask, sampling=(dz, dy, dx)).ravel()
