"""``plan.PlanOptimizations[i]``: the plan optimization, its functions and the run.

The functions and their parameters are in :mod:`mock_tps._optimization_functions`, the
optimization parameters and progress in :mod:`mock_tps._optimization_parameters`, the
translation of the functions for the numerical core in :mod:`mock_tps._optimization_specs`.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- ``RunOptimization`` warm-starts from the beam set's current beamlet weights
  (RayStation's continued optimization); ``ResetOptimization`` puts them back to
  the initial ones.  The dose is always computed afterwards (the mock has no
  approximate dose).  ``RestrictToBeams``, ``IsRobust`` and ``UseRbeDose`` are
  stored, not modelled.
- Mock-only instrumentation: ``po._mock_run_count``, ``po._mock_last_result`` and
  ``mock_tps.statistics()``.
"""
from __future__ import annotations

import logging
import time
from typing import Any, List, Optional, Tuple

import numpy as np

from ._api import ApiObject, ArgumentException, Collection, InvalidOperationException, api_method
from ._optimization_functions import FUNCTION_TYPES, FunctionValue, Objective, OptimizationFunction
from ._optimization_parameters import OptimizationParameters, ProgressOfOptimization
from ._optimization_specs import function_specs
from . import _reference_dose as _ref

__all__ = ["PlanOptimization", "OptimizationFunction"]

logger = logging.getLogger(__name__)


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
        """The core's specs of ``funcs`` and the owning function of each (:func:`function_specs`)."""
        return function_specs(self, funcs, spec_cls)
