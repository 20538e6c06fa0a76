"""``po.OptimizationParameters`` (algorithm, dose calculation, treatment setup settings) and
``po.ProgressOfOptimization``.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- ``MaxNumberOfIterations`` defaults to 40 (close to RayStation's UI default);
  ``OptimalityTolerance`` to 1e-5.
- ``ProgressOfOptimization`` is None before the first run, then holds the last
  run's ``Iterations`` (0..k) and ``ObjectiveValues`` (unitless, as the core's).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._api import ApiObject, ArgumentException, Collection, _check_finite_number

__all__ = ["OptimizationParameters", "TreatmentSetupSettings", "BeamSettings", "ProgressOfOptimization"]


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
