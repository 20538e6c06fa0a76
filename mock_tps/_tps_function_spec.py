"""One optimization function of the mock TPS optimizer, as its numerical core sees it.

A :class:`FunctionSpec` is a RayStation optimization function (objective or
constraint) resolved to dose-grid voxels: its ``FunctionType``, the influence-matrix
rows it acts on with their relative volumes, and its parameters in Gy, %, mm.
``PlanOptimization.RunOptimization()`` of the mock builds one per function (two for a
TargetEud) and hands them to :func:`mock_tps._tps_optimizer.optimize_beamlet_weights`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from constraints.errors import InputError

__all__ = ["FUNCTION_TYPES", "FunctionSpec"]

#: The penalty function types, with RayStation's ``FunctionType`` names.
FUNCTION_TYPES: Tuple[str, ...] = (
    "MaxDose", "MinDose", "MaxDvh", "MinDvh", "UniformDose", "DoseFallOff", "MaxEud", "MinEud",
    "UniformityConstraint",
)
_USES_DOSE_LEVEL = frozenset(("MaxDose", "MinDose", "MaxDvh", "MinDvh", "UniformDose", "MaxEud", "MinEud"))
#: Types whose penalty is a sum of one term per voxel (an AL multiplier per voxel).
POINTWISE = frozenset(("MaxDose", "MinDose", "UniformDose", "DoseFallOff"))
#: Types that penalize too much dose (or spread, for UniformityConstraint).
UPPER = frozenset(("MaxDose", "MaxDvh", "DoseFallOff", "MaxEud", "UniformityConstraint"))


def real_in_range(name: str, value: object, *, low: float, low_open: bool = False, high: float = math.inf,
          high_open: bool = False, unit: str = "") -> float:
    """Return ``value`` as float, or raise InputError naming ``name`` and the range."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a real number{' in ' + unit if unit else ''}, "
                         f"got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"{name} must be a finite real number, got {value!r}")
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise InputError(f"{name} must lie in {lo}{low:g}, {high:g}{hi}{' ' + unit if unit else ''}, "
                         f"got {number:g}")
    return number


def read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class FunctionSpec:
    """One optimization function (objective or constraint) on a set of voxels.

    Parameters
    ----------
    function_type : str
        One of :data:`FUNCTION_TYPES`: 'MaxDose', 'MinDose', 'MaxDvh', 'MinDvh', 'UniformDose',
        'DoseFallOff', 'MaxEud', 'MinEud', 'UniformityConstraint'.
        RayStation's ``FunctionType`` name (``UniformityConstraint`` is the function RayStation
        adds by that name, a constraint on the relative standard deviation of the dose).
    voxel_index : ndarray of int, shape (n,)
        Rows of the influence matrix (flattened dose-grid voxels) the function acts on;
        non-empty, non-negative, no repeats.
    voxel_volume_weight : ndarray of float, shape (n,)
        Relative volume of each voxel in the ROI (fractional coverage × voxel volume);
        ≥ 0, finite, positive sum. Only ratios matter. Voxels of weight 0 are ignored.
    dose_level_gy : float, optional
        Total dose level D in Gy; required (≥ 0) by every type except DoseFallOff.
    percent_volume : float, optional
        V in percent; required by MaxDvh (0 ≤ V < 100) and MinDvh (0 < V ≤ 100).
    eud_parameter_a : float, optional
        gEUD parameter a (≠ 0, |a| ≤ 1000); required by MaxEud and MinEud.
    high_dose_level_gy, low_dose_level_gy : float, optional
        DoseFallOff levels in Gy (total), 0 ≤ low ≤ high.
    low_dose_distance_mm : float, optional
        DoseFallOff distance (> 0 mm) at which the reference dose reaches the low level.
    distance_mm : ndarray of float, shape (n,), optional
        DoseFallOff: each voxel's distance to the target in mm (≥ 0, finite).
    percent_std_deviation : float, optional
        UniformityConstraint: the largest relative standard deviation of the dose, in %
        (0 < s ≤ 100).
    weight : float
        Objective weight (≥ 0); ignored for constraints.
    is_constraint : bool
        True: the function is a constraint to satisfy, not a term of the objective.

    Raises
    ------
    InputError
        A field is missing for the type, of wrong type or shape, or out of range; the
        message names the field and the value.

    Notes
    -----
    Arrays are copied and made read-only; equality is identity (``eq=False``).
    """

    function_type: str
    voxel_index: np.ndarray
    voxel_volume_weight: np.ndarray
    dose_level_gy: Optional[float] = None
    percent_volume: Optional[float] = None
    eud_parameter_a: Optional[float] = None
    high_dose_level_gy: Optional[float] = None
    low_dose_level_gy: Optional[float] = None
    low_dose_distance_mm: Optional[float] = None
    distance_mm: Optional[np.ndarray] = None
    percent_std_deviation: Optional[float] = None
    weight: float = 1.0
    is_constraint: bool = False

    def __post_init__(self) -> None:
        ftype = self.function_type
        if ftype not in FUNCTION_TYPES:
            raise InputError(f"function_type must be one of {', '.join(FUNCTION_TYPES)}, got {ftype!r}")
        index = np.asarray(self.voxel_index)
        if index.ndim != 1 or index.size == 0 or not (
                np.issubdtype(index.dtype, np.integer) and not np.issubdtype(index.dtype, np.bool_)):
            raise InputError(f"voxel_index must be a non-empty 1-D integer array, got dtype {index.dtype} "
                             f"shape {index.shape}")
        if index.min() < 0:
            raise InputError(f"voxel_index must be >= 0, found {int(index.min())}")
        if np.unique(index).size != index.size:
            raise InputError(f"voxel_index must not repeat a voxel ({index.size - np.unique(index).size} "
                             f"repeat(s) in {ftype})")
        object.__setattr__(self, "voxel_index", read_only(index.astype(np.int64)))
        self._set_voxel_array("voxel_volume_weight", self.voxel_volume_weight, index.size)
        if not self.voxel_volume_weight.sum() > 0:
            raise InputError("voxel_volume_weight must have a positive sum, got all zeros")
        needed = {"percent_volume": ftype in ("MaxDvh", "MinDvh"),
                  "eud_parameter_a": ftype in ("MaxEud", "MinEud"),
                  "dose_level_gy": ftype in _USES_DOSE_LEVEL,
                  "high_dose_level_gy": ftype == "DoseFallOff",
                  "low_dose_level_gy": ftype == "DoseFallOff",
                  "low_dose_distance_mm": ftype == "DoseFallOff",
                  "distance_mm": ftype == "DoseFallOff",
                  "percent_std_deviation": ftype == "UniformityConstraint"}
        for name, required in needed.items():
            if required and getattr(self, name) is None:
                raise InputError(f"{name} is required for function_type {ftype!r}, got None")
        if ftype in _USES_DOSE_LEVEL:
            object.__setattr__(self, "dose_level_gy", real_in_range("dose_level_gy", self.dose_level_gy, low=0.0,
                                                            unit="Gy"))
        if ftype == "MaxDvh":
            object.__setattr__(self, "percent_volume", real_in_range("percent_volume", self.percent_volume, low=0.0,
                                                             high=100.0, high_open=True, unit="%"))
        if ftype == "MinDvh":
            object.__setattr__(self, "percent_volume", real_in_range("percent_volume", self.percent_volume, low=0.0,
                                                             low_open=True, high=100.0, unit="%"))
        if ftype in ("MaxEud", "MinEud"):
            a = real_in_range("eud_parameter_a", self.eud_parameter_a, low=-1000.0, high=1000.0)
            if a == 0.0:
                raise InputError("eud_parameter_a must be non-zero, got 0")
            object.__setattr__(self, "eud_parameter_a", a)
        if ftype == "DoseFallOff":
            high = real_in_range("high_dose_level_gy", self.high_dose_level_gy, low=0.0, unit="Gy")
            low = real_in_range("low_dose_level_gy", self.low_dose_level_gy, low=0.0, high=high, unit="Gy")
            dist = real_in_range("low_dose_distance_mm", self.low_dose_distance_mm, low=0.0, low_open=True, unit="mm")
            object.__setattr__(self, "high_dose_level_gy", high)
            object.__setattr__(self, "low_dose_level_gy", low)
            object.__setattr__(self, "low_dose_distance_mm", dist)
            self._set_voxel_array("distance_mm", self.distance_mm, index.size)
        if ftype == "UniformityConstraint":
            object.__setattr__(self, "percent_std_deviation", real_in_range(
                "percent_std_deviation", self.percent_std_deviation, low=0.0, low_open=True, high=100.0, unit="%"))
        object.__setattr__(self, "weight", real_in_range("weight", self.weight, low=0.0))
        if not isinstance(self.is_constraint, (bool, np.bool_)):
            raise InputError(f"is_constraint must be True or False, got {self.is_constraint!r}")
        object.__setattr__(self, "is_constraint", bool(self.is_constraint))

    def _set_voxel_array(self, name: str, value: object, size: int) -> None:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a 1-D array of real numbers, got {type(value).__name__}") from None
        if array.shape != (size,):
            raise InputError(f"{name} must have shape ({size},) like voxel_index, got {array.shape}")
        if not np.all(np.isfinite(array)) or array.min() < 0:
            raise InputError(f"{name} must be finite and >= 0, found minimum {np.nanmin(array):g} "
                             f"and {int(np.sum(~np.isfinite(array)))} non-finite value(s)")
        object.__setattr__(self, name, read_only(array))
