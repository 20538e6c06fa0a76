"""Optimization functions of ``plan.PlanOptimizations[i]``: each function, its
``DoseFunctionParameters`` and the ``Objective`` that holds the objective functions.

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
"""
from __future__ import annotations

from typing import Any, Optional

from ._api import ApiObject, ArgumentException, Collection, _check_finite_number, api_method
from . import _reference_dose as _ref

__all__ = ["FUNCTION_TYPES", "OptimizationFunction", "Objective", "FunctionValue", "DoseFunctionParameters",
           "DoseFallOffParameters", "UniformityConstraintParameters"]

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
