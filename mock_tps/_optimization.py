"""``plan.PlanOptimizations[i]``: optimization functions, parameters and the run.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- Supported ``FunctionType`` values are those of the numerical core
  (:data:`mock_tps._tps_optimizer.FUNCTION_TYPES`): MaxDose, MinDose, MaxDvh,
  MinDvh, UniformDose, DoseFallOff, MaxEud, MinEud.  Others raise
  :class:`~mock_tps._api.ArgumentException` naming the type.  Reference-dose
  functions (MaxRefDose, ...; RayStation 2025) are added with
  ``AddReferenceOptimizationFunction``: see :mod:`mock_tps._reference_dose`.
- New functions start at DoseLevel 0 cGy, PercentVolume 0, Weight 1,
  EudParameterA 1; DoseFallOff at HighDoseLevel 0, LowDoseLevel 0,
  LowDoseDistance 1 cm, AdaptToTargetDoseLevels False.  Scripts set them after
  adding the function, as in RayStation.
- Dose levels are total planned doses (all fractions) in cGy.
- ``MaxNumberOfIterations`` defaults to 40 (close to RayStation's UI default);
  ``OptimalityTolerance`` to 1e-5.
- ``RunOptimization`` warm-starts from the beam set's current beamlet weights
  (RayStation's continued optimization).  It passes each function's ROI as the
  dose-grid voxels with coverage > 0, weighted by coverage × voxel volume (cm³).
  DoseFallOff distances are measured (Euclidean, mm, between voxel centres) to
  the union (coverage ≥ 0.5 on the dose grid) of the ROIs of the target
  functions (MinDose, MinDvh, UniformDose, MinEud) of the same optimization, or
  of the ROIs with OrganType 'Target' when there are none.  With
  ``AdaptToTargetDoseLevels`` the high level is the highest target DoseLevel.
  The dose is always computed afterwards (the mock has no approximate dose).
  ``RestrictToBeams``, ``IsRobust`` and ``UseRbeDose`` are stored, not modelled.
- ``ProgressOfOptimization`` is None before the first run, then holds the last
  run's ``Iterations`` (0..k) and ``ObjectiveValues`` (unitless, as the core's).
- Mock-only instrumentation: ``po._mock_run_count``, ``po._mock_last_result`` and
  ``mock_tps.statistics()``.
"""
from __future__ import annotations

import logging
import time
from typing import Any, List, Optional, Tuple

import numpy as np

from ._api import (ApiObject, ArgumentException, Collection, InvalidOperationException,
                   _check_finite_number, api_method)
from ._dose import cgy_to_gy
from ._geometry import MM_PER_CM
from . import _reference_dose as _ref

__all__ = ["PlanOptimization", "OptimizationFunction"]

logger = logging.getLogger(__name__)

FUNCTION_TYPES = ("MaxDose", "MinDose", "MaxDvh", "MinDvh", "UniformDose", "DoseFallOff",
                  "MaxEud", "MinEud", "TargetEud", "UniformityConstraint")
_TARGET_FUNCTIONS = ("MinDose", "MinDvh", "UniformDose", "MinEud", "TargetEud")
#: RayStation reads a TargetEud back as 'UniformEud' (s2atoru's CopyOptimizationFunctions).
_READ_BACK_TYPE = {"TargetEud": "UniformEud"}


class _Parameters(ApiObject):
    """Common checks of function parameters: approved plan, finite numbers, ranges."""

    def __init__(self, function: "OptimizationFunction") -> None:
        self._function = function

    def _on_set(self, name: str, value: Any) -> Any:
        self._function._po._plan._check_editable(f"change {name}")
        if name == "AdaptToTargetDoseLevels":
            return bool(value)
        v = _check_finite_number("DoseFunctionParameters", name, value)
        if name == "PercentVolume" and not 0 <= v <= 100:
            raise ArgumentException(f"PercentVolume must be in 0–100 %, got {value!r}")
        if name == "LowDoseDistance" and v <= 0:
            raise ArgumentException(f"LowDoseDistance must be > 0 cm, got {value!r}")
        if v < 0:
            raise ArgumentException(f"{name} must be ≥ 0, got {value!r}")
        return v


class DoseFunctionParameters(_Parameters):
    """Dose-based function parameters (cGy, %), with ``FunctionType``."""

    _settable = ("DoseLevel", "PercentVolume", "Weight", "EudParameterA")

    def __init__(self, function: "OptimizationFunction", function_type: str) -> None:
        super().__init__(function)
        self._init(FunctionType=function_type, DoseLevel=0.0, PercentVolume=0.0, Weight=1.0,
                   EudParameterA=1.0)

    def _on_set(self, name: str, value: Any) -> Any:
        if name == "EudParameterA":
            self._function._po._plan._check_editable(f"change {name}")
            v = _check_finite_number("DoseFunctionParameters", name, value)
            if v == 0:
                raise ArgumentException("EudParameterA must be non-zero.")
            return v
        return super()._on_set(name, value)


class DoseFallOffParameters(_Parameters):
    """DoseFallOff parameters: no ``FunctionType`` attribute, as in RayStation."""

    _settable = ("HighDoseLevel", "LowDoseLevel", "LowDoseDistance", "Weight", "AdaptToTargetDoseLevels")

    def __init__(self, function: "OptimizationFunction") -> None:
        super().__init__(function)
        self._init(HighDoseLevel=0.0, LowDoseLevel=0.0, LowDoseDistance=1.0, Weight=1.0,
                   AdaptToTargetDoseLevels=False)


class UniformityConstraintParameters(_Parameters):
    """UniformityConstraint parameters: ``PercentStdDeviation`` (%), no ``FunctionType``."""

    _settable = ("PercentStdDeviation", "Weight")

    def __init__(self, function: "OptimizationFunction") -> None:
        super().__init__(function)
        self._init(PercentStdDeviation=5.0, Weight=1.0)

    def _on_set(self, name: str, value: Any) -> Any:
        v = super()._on_set(name, value)
        if name == "PercentStdDeviation" and not 0 < v <= 100:
            raise ArgumentException(f"PercentStdDeviation must be in (0, 100] %, got {value!r}")
        return v


class FunctionValue(ApiObject):
    def __init__(self, value: float) -> None:
        self._init(FunctionValue=float(value))


class OptimizationFunction(ApiObject):
    """A constituent function or constraint of a plan optimization."""

    def __init__(self, po: "PlanOptimization", function_type: str, roi: Any, is_constraint: bool,
                 restrict_to_beams: Any, is_robust: bool, use_rbe: bool, reference: Any = None) -> None:
        self._po = po
        self._type = function_type
        self._is_constraint = is_constraint
        self._mock_restrict_to_beams = restrict_to_beams
        self._mock_use_rbe = use_rbe
        if function_type == "DoseFallOff":
            params: Any = DoseFallOffParameters(self)
        elif function_type in _ref.REFERENCE_FUNCTION_TYPES:
            params = _ref.ReferenceDoseFunctionParameters(self, function_type, reference)
        elif function_type == "UniformityConstraint":
            params = UniformityConstraintParameters(self)
        else:
            params = DoseFunctionParameters(self, _READ_BACK_TYPE.get(function_type, function_type))
        self._value: Optional[FunctionValue] = None
        self._init(ForRegionOfInterest=roi, DoseFunctionParameters=params, UseRobustness=bool(is_robust))

    @property
    def FunctionValue(self) -> Optional[FunctionValue]:  # noqa: N802
        """None until optimized; then ``.FunctionValue`` (float)."""
        return self._value

    @api_method
    def DeleteFunction(self) -> None:  # noqa: N802
        self._po._plan._check_editable("delete an optimization function")
        self._po._remove_function(self)

    def _snapshot(self) -> dict:
        p = self.DoseFunctionParameters
        keys = [k for k in ("FunctionType", "DoseLevel", "PercentVolume", "Weight", "EudParameterA",
                            "HighDoseLevel", "LowDoseLevel", "LowDoseDistance", "AdaptToTargetDoseLevels",
                            "PercentStdDeviation")
                if k in p.__dict__]
        ref = p.__dict__.get("OfReferenceDose")
        extra = {} if ref is None else {"reference": ref.Name if hasattr(ref, "Name") else type(ref).__name__,
                                        "reference_digest": ref._snapshot()}
        return {"type": self._type, "roi": self.ForRegionOfInterest.Name, "constraint": self._is_constraint,
                **{k: p.__dict__[k] for k in keys}, **extra}


class Objective(ApiObject):
    """``po.Objective``: ``ConstituentFunctions`` and ``FunctionValue`` (the weighted sum of the
    objective functions' values after the last run; None before)."""

    def __init__(self) -> None:
        self._value: Optional[FunctionValue] = None
        self._init(ConstituentFunctions=Collection(key="_none"))

    @property
    def FunctionValue(self) -> Optional[FunctionValue]:  # noqa: N802
        return self._value


class _Algorithm(ApiObject):
    _settable = ("MaxNumberOfIterations", "OptimalityTolerance")

    def __init__(self, plan: Any) -> None:
        self._plan = plan
        self._init(MaxNumberOfIterations=40, OptimalityTolerance=1e-5)

    def _on_set(self, name: str, value: Any) -> Any:
        self._plan._check_editable(f"change {name}")
        v = _check_finite_number("Algorithm", name, value)
        if name == "MaxNumberOfIterations":
            if v < 1 or v != int(v):
                raise ArgumentException(f"MaxNumberOfIterations must be an integer ≥ 1, got {value!r}")
            return int(v)
        if v <= 0:
            raise ArgumentException(f"OptimalityTolerance must be > 0, got {value!r}")
        return v


class _DoseCalculation(ApiObject):
    _settable = ("ComputeFinalDose", "ComputeIntermediateDose", "IterationsInPreparationsPhase")

    def __init__(self) -> None:
        self._init(ComputeFinalDose=True, ComputeIntermediateDose=False, IterationsInPreparationsPhase=7)


class BeamSettings(ApiObject):
    """``TreatmentSetupSettings[0].BeamSettings[i]``: ``ForBeam``; static beams have no
    ``ArcConversionPropertiesPerBeam`` (None)."""

    def __init__(self, beam: Any) -> None:
        self._init(ForBeam=beam, ArcConversionPropertiesPerBeam=None)


class TreatmentSetupSettings(ApiObject):
    """``OptimizationParameters.TreatmentSetupSettings[i]``: ``ForTreatmentSetup`` (the beam
    set) and one ``BeamSettings`` per beam."""

    def __init__(self, beam_set: Any) -> None:
        self._init(ForTreatmentSetup=beam_set,
                   BeamSettings=Collection([BeamSettings(b) for b in beam_set.Beams], key="_none"))


class OptimizationParameters(ApiObject):
    def __init__(self, plan: Any, beam_set: Any = None) -> None:
        self._init(Algorithm=_Algorithm(plan), DoseCalculation=_DoseCalculation(),
                   TreatmentSetupSettings=Collection([] if beam_set is None else
                                                     [TreatmentSetupSettings(beam_set)], key="_none"))


class ProgressOfOptimization(ApiObject):
    """``po.ProgressOfOptimization``: ``Iterations`` and ``ObjectiveValues`` (per iteration),
    ``FunctionValues`` (each function's value after the run, objective functions then
    constraints, as ``f.FunctionValue.FunctionValue``)."""

    def __init__(self, objective_values: Any, function_values: Any = ()) -> None:
        vals = np.asarray(objective_values, dtype=np.float64)
        self._iterations = np.arange(vals.size)
        self._values = vals
        self._function_values = np.asarray(function_values, dtype=np.float64)

    @property
    def FunctionValues(self) -> np.ndarray:  # noqa: N802
        return self._function_values.copy()

    @property
    def Iterations(self) -> np.ndarray:  # noqa: N802
        return self._iterations.copy()

    @property
    def ObjectiveValues(self) -> np.ndarray:  # noqa: N802
        return self._values.copy()


class PlanOptimization(ApiObject):
    """``plan.PlanOptimizations[i]`` for one beam set."""

    def __init__(self, plan: Any, beam_set: Any) -> None:
        self._plan = plan
        self._beam_set = beam_set
        self._objective: Optional[Objective] = None
        self._progress: Optional[ProgressOfOptimization] = None
        self._mock_run_count = 0
        self._mock_last_result: Any = None
        self._init(OptimizedBeamSets=Collection([beam_set], key="DicomPlanLabel"),
                   Constraints=Collection(key="_none"),
                   OptimizationParameters=OptimizationParameters(plan, beam_set), AutoScaleToPrescription=False)

    @property
    def Objective(self) -> Optional[Objective]:  # noqa: N802
        """None when there are no objective functions."""
        return self._objective

    @property
    def ProgressOfOptimization(self) -> Optional[ProgressOfOptimization]:  # noqa: N802
        return self._progress

    def _functions(self) -> List[OptimizationFunction]:
        obj = [] if self._objective is None else list(self._objective.ConstituentFunctions)
        return obj + list(self.Constraints)

    def _remove_function(self, f: OptimizationFunction) -> None:
        if f._is_constraint:
            self.Constraints._remove(f)
        elif self._objective is not None:
            self._objective.ConstituentFunctions._remove(f)
            if self._objective.ConstituentFunctions.Count == 0:
                self._objective = None

    @api_method
    def AddOptimizationFunction(self, FunctionType: str, RoiName: str, IsConstraint: bool = False,  # noqa: N802,N803
                                RestrictAllBeamsIndividually: bool = False, RestrictToBeams: Any = None,
                                RestrictToBeam: Any = None, IsRobust: bool = False, RestrictToBeamSet: Any = None,
                                UseRbeDose: bool = False) -> OptimizationFunction:
        """Add an objective function or constraint on an ROI; returns it.

        ``RestrictToBeam`` up to 12A, ``RestrictToBeams`` from 2023B (the version profile
        refuses the other spelling).  A UniformityConstraint must be a constraint.
        """
        self._plan._check_editable("add an optimization function")
        if RestrictToBeams is None:
            RestrictToBeams = RestrictToBeam
        if FunctionType == "UniformityConstraint" and not IsConstraint:
            raise ArgumentException("A UniformityConstraint is a constraint: pass IsConstraint=True.")
        if FunctionType not in FUNCTION_TYPES:
            raise ArgumentException(f"Unknown or unsupported FunctionType '{FunctionType}'; "
                                    f"the mock supports {', '.join(FUNCTION_TYPES)}.")
        return self._add_function(FunctionType, RoiName, IsConstraint, RestrictToBeams, IsRobust, UseRbeDose)

    @api_method
    def AddReferenceOptimizationFunction(self, FunctionType: str, ReferenceDoseDistribution: Any,  # noqa: N802,N803
                                         RoiName: str, IsConstraint: bool = False,
                                         RestrictAllBeamsIndividually: bool = False, RestrictToBeams: Any = None,
                                         IsRobust: bool = False, RestrictToBeamSet: Any = None,
                                         UseRbeDose: bool = False, UseEqd: bool = False) -> OptimizationFunction:
        """Add a function of the dose relative to a reference dose (RayStation 2025); returns it.

        The mock models MaxRefDose, MinRefDose and UniformRefDose on a fraction-dose
        reference on this beam set's dose grid (see :mod:`mock_tps._reference_dose`);
        ``UseEqd`` is stored, not modelled (True is refused).
        """
        self._plan._check_editable("add an optimization function")
        _ref.check_reference_dose(FunctionType, ReferenceDoseDistribution, self._beam_set)
        if UseEqd:
            raise ArgumentException("UseEqd=True is not modelled by the mock.")
        return self._add_function(FunctionType, RoiName, IsConstraint, RestrictToBeams, IsRobust, UseRbeDose,
                                  reference=ReferenceDoseDistribution)

    def _add_function(self, function_type: str, roi_name: str, is_constraint: bool, restrict_to_beams: Any,
                      is_robust: bool, use_rbe_dose: bool, reference: Any = None) -> OptimizationFunction:
        """Create a function on an existing ROI and file it as a constraint or an objective."""
        rois = self._plan._case.PatientModel.RegionsOfInterest
        if roi_name not in rois.Keys:
            raise ArgumentException(f"ROI '{roi_name}' does not exist. Known ROIs: {', '.join(rois.Keys)}.")
        f = OptimizationFunction(self, function_type, rois[roi_name], bool(is_constraint), restrict_to_beams,
                                 is_robust, use_rbe_dose, reference=reference)
        if is_constraint:
            self.Constraints._append(f)
        else:
            if self._objective is None:
                self._objective = Objective()
            self._objective.ConstituentFunctions._append(f)
        return f

    @api_method
    def ResetOptimization(self) -> None:  # noqa: N802
        """Weights back to the initial state; dose, function values and progress cleared."""
        self._plan._check_editable("reset the optimization")
        bs = self._beam_set
        bs._weights = bs._initial_weights.copy()
        bs._clear_dose()
        for f in self._functions():
            f._value = None
        if self._objective is not None:
            self._objective._value = None
        self._progress = None

    @api_method
    def RunOptimization(self, ScalingOfSoftMachineConstraints: Optional[float] = None) -> None:  # noqa: N802,N803
        """Optimize the beamlet weights (warm start), then compute the dose.

        ``ScalingOfSoftMachineConstraints`` is accepted (the mock has no machine
        constraints).  A TargetEud is optimized as MaxEud + MinEud at its level (the
        same penalty (E − D)²); a UniformityConstraint bounds the relative standard
        deviation of the ROI's dose (:mod:`mock_tps._uniformity`).
        """
        from . import _tps_optimizer
        from ._bridge import _session

        self._plan._check_editable("run the optimization")
        funcs = self._functions()
        if not funcs:
            raise InvalidOperationException("There are no optimization functions: add at least one objective.")
        t0 = time.perf_counter()
        unsupported = [f for f in funcs
                       if f._type in _ref.REFERENCE_FUNCTION_TYPES and f._type not in _ref.RUNNABLE_REFERENCE_TYPES]
        if unsupported:
            raise InvalidOperationException(
                f"The mock's optimizer cannot run a {unsupported[0]._type} (ROI "
                f"'{unsupported[0].ForRegionOfInterest.Name}'): delete it.")
        specs, owners = self._function_specs(funcs, _tps_optimizer.FunctionSpec)
        bs = self._beam_set
        algo = self.OptimizationParameters.Algorithm
        result = _tps_optimizer.optimize_beamlet_weights(
            bs._influence.value, specs, fractions=bs.FractionationPattern.NumberOfFractions,
            initial_weights=bs._weights, max_iterations=algo.MaxNumberOfIterations,
            optimality_tolerance=algo.OptimalityTolerance)
        bs._weights = np.array(result.weights, dtype=np.float64)
        values = np.zeros(len(funcs))
        np.add.at(values, owners, np.asarray(result.function_values, dtype=np.float64))
        for f, v in zip(funcs, values):
            f._value = FunctionValue(v)
        if self._objective is not None:
            self._objective._value = FunctionValue(sum(
                f.DoseFunctionParameters.Weight * f._value.FunctionValue for f in self._objective.ConstituentFunctions))
        self._progress = ProgressOfOptimization(result.objective_values, values)
        self._mock_run_count += 1
        self._mock_last_result = result
        if not result.converged:
            logger.info("Optimization stopped without convergence: %s", result.message)
        bs._compute_dose()
        s = _session()
        s.count("optimization_runs")
        s.count("optimization_iterations", result.iterations)
        s.count("optimization_seconds", time.perf_counter() - t0)

    def _function_specs(self, funcs: List[OptimizationFunction], spec_cls: Any) -> Tuple[list, np.ndarray]:
        bs = self._beam_set
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
                    distance = self._distance_to_targets_mm(funcs)
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

    def _distance_to_targets_mm(self, funcs: List[OptimizationFunction]) -> np.ndarray:
        from scipy.ndimage import distance_transform_edt

        bs = self._beam_set
        grid = bs.FractionDose._grid
        ss = bs._structure_set
        names = {f.ForRegionOfInterest.Name for f in funcs if f._type in _TARGET_FUNCTIONS}
        if not names:
            names = {r.Name for r in self._plan._case.PatientModel.RegionsOfInterest
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
