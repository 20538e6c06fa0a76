"""Numerical core of the mock TPS optimizer: beamlet-weight optimization with
RayStation-style penalty functions and constraints.

This module knows nothing of the mock object model: it takes an influence matrix
(Gy per fraction per unit beamlet weight) and a sequence of :class:`FunctionSpec`,
and returns an :class:`OptimizationResult`. ``PlanOptimization.RunOptimization()``
of the mock calls :func:`optimize_beamlet_weights`.

All dose levels are TOTAL planned doses in Gy (all fractions), as RayStation's
optimization functions refer to the beam set's total dose; the planned total dose
is ``fractions * influence_gy @ weights``.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.optimize
import scipy.sparse

from constraints.errors import InputError

__all__ = [
    "FUNCTION_TYPES",
    "FunctionSpec",
    "OptimizationResult",
    "penalty_value_and_dose_gradient",
    "constraint_violation_gy",
    "objective_value_and_gradient",
    "optimize_beamlet_weights",
]

_LOG = logging.getLogger(__name__)

#: The penalty function types, with RayStation's ``FunctionType`` names.
FUNCTION_TYPES: Tuple[str, ...] = (
    "MaxDose", "MinDose", "MaxDvh", "MinDvh", "UniformDose", "DoseFallOff", "MaxEud", "MinEud",
)
_USES_DOSE_LEVEL = frozenset(("MaxDose", "MinDose", "MaxDvh", "MinDvh", "UniformDose", "MaxEud", "MinEud"))
_POINTWISE = frozenset(("MaxDose", "MinDose", "UniformDose", "DoseFallOff"))
_UPPER = frozenset(("MaxDose", "MaxDvh", "DoseFallOff", "MaxEud"))  # penalize too much dose
# Volume fractions within this of the V % boundary count as on it (cumulative-sum rounding).
_VOLUME_EPS = 1e-12
# gEUD evaluates doses below this as this, so that a < 1 stays finite at zero dose.
_EUD_DOSE_FLOOR_GY = 1e-6
# Outer (augmented-Lagrangian) loops are capped, whatever the iteration budget.
_MAX_OUTER_LOOPS = 30
_PENALTY_GROWTH = 10.0
# Above this fill the restricted matrix is made dense for the optimization.
_DENSE_FILL = 0.25


# --------------------------------------------------------------------------- specs
def _real(name: str, value: object, *, low: float, low_open: bool = False, high: float = math.inf,
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


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class FunctionSpec:
    """One optimization function (objective or constraint) on a set of voxels.

    Parameters
    ----------
    function_type : {'MaxDose', 'MinDose', 'MaxDvh', 'MinDvh', 'UniformDose', 'DoseFallOff', 'MaxEud', 'MinEud'}
        RayStation's ``FunctionType`` name.
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
        object.__setattr__(self, "voxel_index", _read_only(index.astype(np.int64)))
        self._set_voxel_array("voxel_volume_weight", self.voxel_volume_weight, index.size)
        if not self.voxel_volume_weight.sum() > 0:
            raise InputError("voxel_volume_weight must have a positive sum, got all zeros")
        needed = {"percent_volume": ftype in ("MaxDvh", "MinDvh"),
                  "eud_parameter_a": ftype in ("MaxEud", "MinEud"),
                  "dose_level_gy": ftype in _USES_DOSE_LEVEL,
                  "high_dose_level_gy": ftype == "DoseFallOff",
                  "low_dose_level_gy": ftype == "DoseFallOff",
                  "low_dose_distance_mm": ftype == "DoseFallOff",
                  "distance_mm": ftype == "DoseFallOff"}
        for name, required in needed.items():
            if required and getattr(self, name) is None:
                raise InputError(f"{name} is required for function_type {ftype!r}, got None")
        if ftype in _USES_DOSE_LEVEL:
            object.__setattr__(self, "dose_level_gy", _real("dose_level_gy", self.dose_level_gy, low=0.0,
                                                            unit="Gy"))
        if ftype == "MaxDvh":
            object.__setattr__(self, "percent_volume", _real("percent_volume", self.percent_volume, low=0.0,
                                                             high=100.0, high_open=True, unit="%"))
        if ftype == "MinDvh":
            object.__setattr__(self, "percent_volume", _real("percent_volume", self.percent_volume, low=0.0,
                                                             low_open=True, high=100.0, unit="%"))
        if ftype in ("MaxEud", "MinEud"):
            a = _real("eud_parameter_a", self.eud_parameter_a, low=-1000.0, high=1000.0)
            if a == 0.0:
                raise InputError("eud_parameter_a must be non-zero, got 0")
            object.__setattr__(self, "eud_parameter_a", a)
        if ftype == "DoseFallOff":
            high = _real("high_dose_level_gy", self.high_dose_level_gy, low=0.0, unit="Gy")
            low = _real("low_dose_level_gy", self.low_dose_level_gy, low=0.0, high=high, unit="Gy")
            dist = _real("low_dose_distance_mm", self.low_dose_distance_mm, low=0.0, low_open=True, unit="mm")
            object.__setattr__(self, "high_dose_level_gy", high)
            object.__setattr__(self, "low_dose_level_gy", low)
            object.__setattr__(self, "low_dose_distance_mm", dist)
            self._set_voxel_array("distance_mm", self.distance_mm, index.size)
        object.__setattr__(self, "weight", _real("weight", self.weight, low=0.0))
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
        object.__setattr__(self, name, _read_only(array))


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    """Outcome of :func:`optimize_beamlet_weights`.

    Attributes
    ----------
    weights : ndarray of float, shape (n_beamlets,)
        Optimized beamlet weights (≥ 0, read-only), same unit as the input weights.
    iterations : int
        Total L-BFGS-B iterations over all outer loops (≤ ``max_iterations``).
    function_evaluations : int
        Number of objective-and-gradient evaluations.
    outer_iterations : int
        Number of augmented-Lagrangian outer loops (1 without constraints).
    objective_values : tuple of float
        Objective Σ weight_i f_i (objectives only, Gy²) at the initial weights, then
        after every iteration: ``len == iterations + 1``.
    function_values : tuple of float
        Penalty value f_i (Gy², unweighted) of every function, input order.
    constraint_violations_gy : tuple of float
        Violation of every function read as a constraint (Gy, input order; ≤ 0 means
        met exactly), see :func:`constraint_violation_gy`.
    constraint_satisfied : tuple of (bool or None)
        For constraints: violation ≤ ``constraint_tolerance_gy``; None for objectives.
    converged : bool
        L-BFGS-B met its optimality tolerance and every constraint is satisfied.
    message : str
        Why the optimization stopped, naming violated constraints.
    time_s : float
        Wall-clock time of the call in seconds.
    """

    weights: np.ndarray
    iterations: int
    function_evaluations: int
    outer_iterations: int
    objective_values: Tuple[float, ...]
    function_values: Tuple[float, ...]
    constraint_violations_gy: Tuple[float, ...]
    constraint_satisfied: Tuple[Optional[bool], ...]
    converged: bool
    message: str
    time_s: float


# ----------------------------------------------------------------- penalty kernels
# Each kernel takes the dose d (Gy, total) at the function's voxels, the reference level
# (scalar or per-voxel, Gy), normalized volume weights v (Σ v = 1) and the type's
# parameter; it returns (f in Gy², ∂f/∂d per voxel in Gy).
def _upper(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = np.maximum(d - level, 0.0)
    return float(v @ (r * r)), 2.0 * v * r


def _lower(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = np.maximum(level - d, 0.0)
    return float(v @ (r * r)), -2.0 * v * r


def _two_sided(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = d - level
    return float(v @ (r * r)), 2.0 * v * r


def _max_dvh_exempt(d: np.ndarray, v: np.ndarray, percent: float) -> np.ndarray:
    """Mask of the hottest voxels that fit entirely within ``percent`` % of the volume."""
    order = np.argsort(-d, kind="stable")
    exempt = np.empty(d.size, dtype=bool)
    exempt[order] = np.cumsum(v[order]) <= percent / 100.0 + _VOLUME_EPS
    return exempt


def _min_dvh_covered(d: np.ndarray, v: np.ndarray, percent: float) -> np.ndarray:
    """Mask of the hottest voxels needed to make up ``percent`` % of the volume."""
    order = np.argsort(-d, kind="stable")
    vs = v[order]
    covered = np.empty(d.size, dtype=bool)
    covered[order] = (np.cumsum(vs) - vs) < percent / 100.0 - _VOLUME_EPS
    return covered


def _max_dvh(d: np.ndarray, level, v: np.ndarray, percent: float) -> Tuple[float, np.ndarray]:
    r = np.where(_max_dvh_exempt(d, v, percent), 0.0, np.maximum(d - level, 0.0))
    return float(v @ (r * r)), 2.0 * v * r


def _min_dvh(d: np.ndarray, level, v: np.ndarray, percent: float) -> Tuple[float, np.ndarray]:
    r = np.where(_min_dvh_covered(d, v, percent), np.maximum(level - d, 0.0), 0.0)
    return float(v @ (r * r)), -2.0 * v * r


def _geud(d: np.ndarray, v: np.ndarray, a: float) -> Tuple[float, np.ndarray]:
    """gEUD (Gy) and its gradient, scaled by the max (a > 0) or min (a < 0) dose against overflow."""
    de = np.maximum(d, _EUD_DOSE_FLOOR_GY)
    scale = de.max() if a > 0 else de.min()
    x = de / scale
    mean = float(v @ x ** a)
    eud = scale * mean ** (1.0 / a)
    grad = mean ** (1.0 / a - 1.0) * v * x ** (a - 1.0)
    return eud, grad


def _max_eud(d: np.ndarray, level, v: np.ndarray, a: float) -> Tuple[float, np.ndarray]:
    eud, deud = _geud(d, v, a)
    r = max(eud - float(level), 0.0)
    return r * r, 2.0 * r * deud


def _min_eud(d: np.ndarray, level, v: np.ndarray, a: float) -> Tuple[float, np.ndarray]:
    eud, deud = _geud(d, v, a)
    r = max(float(level) - eud, 0.0)
    return r * r, -2.0 * r * deud


_KERNELS: Dict[str, Callable[..., Tuple[float, np.ndarray]]] = {
    "MaxDose": _upper, "MinDose": _lower, "UniformDose": _two_sided, "DoseFallOff": _upper,
    "MaxDvh": _max_dvh, "MinDvh": _min_dvh, "MaxEud": _max_eud, "MinEud": _min_eud,
}


def _reference_level(spec: FunctionSpec):
    """Dose level D (Gy), or for DoseFallOff the per-voxel reference dose (Gy)."""
    if spec.function_type != "DoseFallOff":
        return spec.dose_level_gy
    high, low = spec.high_dose_level_gy, spec.low_dose_level_gy
    return np.maximum(low, high - (high - low) * spec.distance_mm / spec.low_dose_distance_mm)


def _parameter(spec: FunctionSpec):
    if spec.function_type in ("MaxDvh", "MinDvh"):
        return spec.percent_volume
    if spec.function_type in ("MaxEud", "MinEud"):
        return spec.eud_parameter_a
    return None


def _normalized_weights(spec: FunctionSpec) -> np.ndarray:
    return spec.voxel_volume_weight / spec.voxel_volume_weight.sum()


def _check_dose(spec: FunctionSpec, dose_gy: np.ndarray) -> np.ndarray:
    dose_gy = np.asarray(dose_gy, dtype=np.float64)
    if dose_gy.ndim != 1 or spec.voxel_index.max() >= dose_gy.size:
        raise InputError(f"dose_gy must be a 1-D array covering voxel_index (max {spec.voxel_index.max()}), "
                         f"got shape {dose_gy.shape}")
    return dose_gy[spec.voxel_index]


def penalty_value_and_dose_gradient(spec: FunctionSpec, dose_gy: np.ndarray) -> Tuple[float, np.ndarray]:
    """Penalty f of one function and its gradient with respect to the voxel doses.

    Parameters
    ----------
    spec : FunctionSpec
        The function.
    dose_gy : ndarray of float, shape (n_voxels,), Gy
        Total planned dose of every influence-matrix row.

    Returns
    -------
    value_gy2 : float
        f in Gy² (unweighted: ``spec.weight`` is not applied).
    gradient_gy : ndarray of float, shape (len(spec.voxel_index),), Gy
        ∂f/∂d_v at ``spec.voxel_index`` (zero elsewhere).

    Raises
    ------
    InputError
        ``dose_gy`` is not 1-D or too short for ``spec.voxel_index``.

    Notes
    -----
    With normalized volume weights :math:`\\hat w_v = w_v / \\sum_u w_u`, dose level D
    and :math:`(x)_+ = \\max(x, 0)` [1]_ [2]_:

    - MaxDose :math:`f = \\sum_v \\hat w_v (d_v - D)_+^2`; MinDose with :math:`(D - d_v)_+`;
      UniformDose with :math:`(d_v - D)`.
    - MaxDvh: the hottest voxels whose cumulative volume fits within V % are exempt;
      every other voxel contributes :math:`\\hat w_v (d_v - D)_+^2`, i.e. the voxels
      with :math:`D < d_v \\le D_V`, :math:`D_V` the dose at volume V % [3]_.
      MinDvh: the hottest voxels needed to make up V % contribute
      :math:`\\hat w_v (D - d_v)_+^2`, i.e. those with :math:`D_V \\le d_v < D`.
    - DoseFallOff: reference :math:`r_v = \\max(L, H - (H - L)\\, s_v / s_L)` with H, L the
      high and low levels, :math:`s_v` the voxel's distance to the target and
      :math:`s_L` the low-dose distance; :math:`f = \\sum_v \\hat w_v (d_v - r_v)_+^2`.
    - gEUD :math:`E = (\\sum_v \\hat w_v d_v^a)^{1/a}` [4]_; MaxEud :math:`f = (E - D)_+^2`,
      MinEud :math:`f = (D - E)_+^2`; :math:`\\partial E/\\partial d_v =
      \\hat w_v d_v^{a-1} (\\sum_u \\hat w_u d_u^a)^{1/a - 1}`. Doses below 1e-6 Gy are
      evaluated as 1e-6 Gy (gradient passed through), so that a < 1 stays finite.

    The DVH gradients hold the exempt/covered sets fixed (the functions are piecewise
    smooth; the sets change only where two voxel doses cross).

    References
    ----------
    .. [1] RaySearch Laboratories, *RayStation Reference Manual*, "Optimization functions".
    .. [2] L. Engberg, A. Forsgren, K. Eriksson, B. Hårdemark, "Explicit optimization of
       plan quality measures in intensity-modulated radiation therapy treatment
       planning", Med. Phys. 44(6), 2045-2053 (2017).
    .. [3] Q. Wu, R. Mohan, "Algorithms and functionality of an intensity modulated
       radiotherapy optimization system", Med. Phys. 27(4), 701-711 (2000).
    .. [4] A. Niemierko, "A generalized concept of equivalent uniform dose (EUD)",
       Med. Phys. 26, 1100 (1999).

    Examples
    --------
    >>> spec = FunctionSpec("MaxDose", np.array([0, 1]), np.array([1.0, 1.0]), dose_level_gy=10.0)
    >>> value, grad = penalty_value_and_dose_gradient(spec, np.array([12.0, 8.0]))
    >>> value, grad.tolist()   # (0.5 * 2**2, [2 * 0.5 * 2, 0])
    (2.0, [2.0, 0.0])
    """
    d = _check_dose(spec, dose_gy)
    return _KERNELS[spec.function_type](d, _reference_level(spec), _normalized_weights(spec), _parameter(spec))


def _achieved_violation_gy(ftype: str, d: np.ndarray, level, v: np.ndarray, param) -> float:
    counted = v > 0
    if ftype == "MaxDose" or ftype == "DoseFallOff":
        return float(np.max((d - level)[counted]))
    if ftype == "MinDose":
        return float(np.max((level - d)[counted]))
    if ftype == "UniformDose":
        return float(np.max(np.abs(d - level)[counted]))
    if ftype == "MaxDvh":
        # D_V: the hottest dose of the voxels not exempt (volume above it ≤ V % is impossible).
        free = ~_max_dvh_exempt(d, v, param) & counted
        return float(d[free].max() - level) if free.any() else -math.inf
    if ftype == "MinDvh":
        return float(level - d[_min_dvh_covered(d, v, param) & counted].min())
    eud = _geud(d, v, param)[0]
    return float(eud - level) if ftype == "MaxEud" else float(level - eud)


def constraint_violation_gy(spec: FunctionSpec, dose_gy: np.ndarray) -> float:
    """How far a function, read as a constraint, is from being met (Gy; ≤ 0: met).

    Parameters
    ----------
    spec : FunctionSpec
        The function (objective or constraint).
    dose_gy : ndarray of float, shape (n_voxels,), Gy
        Total planned dose of every influence-matrix row.

    Returns
    -------
    float
        MaxDose :math:`\\max_v d_v - D`; MinDose :math:`D - \\min_v d_v`; UniformDose
        :math:`\\max_v |d_v - D|`; DoseFallOff :math:`\\max_v (d_v - r_v)`; MaxDvh
        :math:`D_V - D`; MinDvh :math:`D - D_V`; MaxEud :math:`E - D`; MinEud
        :math:`D - E`. Maxima and minima run over voxels of positive volume weight.
        :math:`D_V` is the lowest dose of the voxels that make up the hottest V % (MinDvh),
        or the highest dose of the voxels outside it (MaxDvh). A MaxDvh whose hottest
        V % holds every voxel returns ``-inf``.

    Raises
    ------
    InputError
        ``dose_gy`` is not 1-D or too short for ``spec.voxel_index``.

    Examples
    --------
    >>> spec = FunctionSpec("MinDvh", np.arange(4), np.ones(4), dose_level_gy=20.0, percent_volume=50.0)
    >>> constraint_violation_gy(spec, np.array([25.0, 19.0, 10.0, 5.0]))   # D50% = 19 Gy
    1.0
    """
    d = _check_dose(spec, dose_gy)
    return _achieved_violation_gy(spec.function_type, d, _reference_level(spec), _normalized_weights(spec),
                                  _parameter(spec))


# ------------------------------------------------------------------ the problem
@dataclass
class _Term:
    """One function prepared on the union of rows (internal, mutable AL state)."""

    spec: FunctionSpec
    local: np.ndarray            # indices into the union of rows
    v: np.ndarray                # normalized volume weights
    level: object                # D (float) or per-voxel reference (ndarray), Gy
    param: object
    shift: object = 0.0          # AL shift σ = λ/μ (Gy): scalar, or per voxel for pointwise
    mu: float = 0.0              # AL penalty parameter (1/Gy² scale of the objective)
    last_violation_gy: float = math.inf

    def shifted_level(self):
        ftype = self.spec.function_type
        if ftype == "UniformDose" or ftype in _UPPER:
            return self.level - self.shift
        return self.level + self.shift


@dataclass
class _Problem:
    matrix: object   # fractions × influence on the union rows (CSR, or ndarray when dense), Gy total per unit weight
    objectives: List[_Term]
    constraints: List[_Term]
    n_rows: int
    evaluations: int = 0
    cache: Dict[str, object] = field(default_factory=dict)

    def dose(self, weights: np.ndarray) -> np.ndarray:
        return self.matrix @ weights

    def objective_from_dose(self, d: np.ndarray, grad_d: Optional[np.ndarray]) -> float:
        total = 0.0
        for term in self.objectives:
            value, grad = _KERNELS[term.spec.function_type](d[term.local], term.level, term.v, term.param)
            total += term.spec.weight * value
            if grad_d is not None:
                grad_d[term.local] += term.spec.weight * grad
        return total

    def value_and_gradient(self, weights: np.ndarray) -> Tuple[float, np.ndarray]:
        """Augmented Lagrangian and its gradient; caches the pure objective at ``weights``."""
        self.evaluations += 1
        d = self.dose(weights)
        grad_d = np.zeros(self.n_rows)
        objective = self.objective_from_dose(d, grad_d)
        total = objective
        for term in self.constraints:
            value, grad = _KERNELS[term.spec.function_type](d[term.local], term.shifted_level(), term.v,
                                                            term.param)
            total += 0.5 * term.mu * value
            grad_d[term.local] += 0.5 * term.mu * grad
        self.cache["weights"] = weights.copy()
        self.cache["objective"] = objective
        return total, self.matrix.T @ grad_d

    def objective(self, weights: np.ndarray) -> float:
        cached = self.cache.get("weights")
        if cached is not None and np.array_equal(cached, weights):
            return float(self.cache["objective"])  # type: ignore[arg-type]
        return self.objective_from_dose(self.dose(weights), None)

    def update_multipliers(self, d: np.ndarray, tolerance_gy: float) -> None:
        """AL update λ ← (λ + μ g)_+ written for σ = λ/μ; μ × 10 when the violation stalls."""
        for term in self.constraints:
            ftype = term.spec.function_type
            dl = d[term.local]
            violation = _achieved_violation_gy(ftype, dl, term.level, term.v, term.param)
            if ftype in _POINTWISE:
                h = dl - term.level if ftype in _UPPER or ftype == "UniformDose" else term.level - dl
                shift = term.shift + h
                term.shift = shift if ftype == "UniformDose" else np.maximum(shift, 0.0)
            else:
                term.shift = max(float(term.shift) + violation, 0.0)
            if violation > tolerance_gy and violation > 0.25 * term.last_violation_gy:
                term.mu *= _PENALTY_GROWTH
                term.shift = term.shift / _PENALTY_GROWTH  # keep λ = μ σ
            term.last_violation_gy = violation


def _validate_problem(influence_gy, functions, fractions, initial_weights, max_iterations,
                      optimality_tolerance, constraint_tolerance_gy) -> Tuple[scipy.sparse.csr_matrix, np.ndarray]:
    if not scipy.sparse.issparse(influence_gy) or len(influence_gy.shape) != 2:
        raise InputError(f"influence_gy must be a 2-D scipy.sparse matrix (voxels × beamlets, Gy per fraction "
                         f"per unit weight), got {type(influence_gy).__name__}")
    matrix = scipy.sparse.csr_matrix(influence_gy, dtype=np.float64)
    if not np.all(np.isfinite(matrix.data)):
        raise InputError("influence_gy contains non-finite values")
    n_voxels, n_beamlets = matrix.shape
    if isinstance(fractions, bool) or not isinstance(fractions, (int, np.integer)) or fractions < 1:
        raise InputError(f"fractions must be an integer >= 1, got {fractions!r}")
    weights = np.asarray(initial_weights, dtype=np.float64)
    if weights.shape != (n_beamlets,):
        raise InputError(f"initial_weights must have shape ({n_beamlets},) (one per beamlet column of "
                         f"influence_gy), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or weights.min(initial=0.0) < 0:
        raise InputError("initial_weights must be finite and >= 0")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)) or max_iterations < 1:
        raise InputError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    _real("optimality_tolerance", optimality_tolerance, low=0.0, low_open=True)
    _real("constraint_tolerance_gy", constraint_tolerance_gy, low=0.0, low_open=True, unit="Gy")
    if isinstance(functions, (str, bytes)) or not hasattr(functions, "__len__"):
        raise InputError(f"functions must be a sequence of FunctionSpec, got {type(functions).__name__}")
    if len(functions) == 0:
        raise InputError("functions must hold at least one FunctionSpec, got none")
    for position, spec in enumerate(functions):
        if not isinstance(spec, FunctionSpec):
            raise InputError(f"functions[{position}] must be a FunctionSpec, got {type(spec).__name__}")
        if spec.voxel_index.max() >= n_voxels:
            raise InputError(f"functions[{position}].voxel_index reaches row {int(spec.voxel_index.max())}, "
                             f"but influence_gy has {n_voxels} rows")
    return matrix, weights


def _prepare(matrix: scipy.sparse.csr_matrix, functions: Sequence[FunctionSpec], fractions: int) -> _Problem:
    rows = np.unique(np.concatenate([spec.voxel_index for spec in functions]))
    used = matrix if rows.size == matrix.shape[0] else matrix[rows]  # rows are sorted and unique
    restricted = (used * float(fractions)).tocsr()
    if restricted.nnz >= _DENSE_FILL * restricted.shape[0] * restricted.shape[1]:
        # photon beamlet matrices of the phantoms are 65-95 % filled: a dense BLAS product is
        # several times faster than a sparse one (measured in bench/bench_tps_optimizer.py)
        restricted = restricted.toarray()
    objectives, constraints = [], []
    for spec in functions:
        term = _Term(spec=spec, local=np.searchsorted(rows, spec.voxel_index), v=_normalized_weights(spec),
                     level=_reference_level(spec), param=_parameter(spec))
        if spec.is_constraint:
            pointwise = spec.function_type in _POINTWISE
            term.shift = np.zeros(spec.voxel_index.size) if pointwise else 0.0
            constraints.append(term)
        else:
            objectives.append(term)
    # Penalty start: pointwise constraints count each voxel ~ like a whole objective ROI.
    total_weight = max(sum(t.spec.weight for t in objectives), 1.0)
    for term in constraints:
        scale = term.spec.voxel_index.size if term.spec.function_type in _POINTWISE else 1.0
        term.mu = 10.0 * total_weight * scale
    return _Problem(matrix=restricted, objectives=objectives, constraints=constraints, n_rows=rows.size)


def objective_value_and_gradient(influence_gy, functions: Sequence[FunctionSpec], weights: np.ndarray, *,
                                 fractions: int) -> Tuple[float, np.ndarray]:
    """Objective Σ weight_i f_i over the non-constraint functions, and its weight gradient.

    Parameters
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets), Gy per fraction per unit weight
    functions : sequence of FunctionSpec
    weights : ndarray of float, shape (n_beamlets,), ≥ 0
    fractions : int, ≥ 1

    Returns
    -------
    value_gy2 : float
        :math:`F(w) = \\sum_i \\omega_i f_i(n A w)` in Gy² (ω_i the weights, n fractions).
    gradient : ndarray of float, shape (n_beamlets,)
        :math:`\\nabla F = n A^T \\sum_i \\omega_i \\nabla_d f_i`.

    Raises
    ------
    InputError
        As :func:`optimize_beamlet_weights`.
    """
    matrix, weights = _validate_problem(influence_gy, functions, fractions, weights, 1, 1.0, 1.0)
    problem = _prepare(matrix, functions, fractions)
    d = problem.dose(weights)
    grad_d = np.zeros(problem.n_rows)
    value = problem.objective_from_dose(d, grad_d)
    return value, problem.matrix.T @ grad_d


def optimize_beamlet_weights(influence_gy, functions: Sequence[FunctionSpec], *, fractions: int,
                             initial_weights: np.ndarray, max_iterations: int = 100,
                             optimality_tolerance: float = 1e-6, constraint_tolerance_gy: float = 0.05,
                             progress: Optional[Callable[[int, float], None]] = None) -> OptimizationResult:
    """Optimize non-negative beamlet weights against penalty functions and constraints.

    Parameters
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets), Gy per fraction per unit weight
        Rows are flattened dose-grid voxels. The total planned dose is
        ``fractions * influence_gy @ weights``.
    functions : sequence of FunctionSpec
        Objectives (``is_constraint=False``) and constraints; dose levels are total Gy.
    fractions : int
        Number of fractions of the beam set, ≥ 1.
    initial_weights : ndarray of float, shape (n_beamlets,)
        Start point (≥ 0), e.g. the current plan's weights or zeros.
    max_iterations : int
        Cap on the TOTAL number of L-BFGS-B iterations over all outer loops
        (RayStation's ``MaxNumberOfIterations``), ≥ 1.
    optimality_tolerance : float
        L-BFGS-B ``ftol`` (relative objective decrease) and ``gtol`` (projected gradient).
    constraint_tolerance_gy : float
        A constraint is satisfied when its violation (see :func:`constraint_violation_gy`)
        is ≤ this, in Gy (> 0).
    progress : callable (iteration, objective_value_gy2) -> None, optional
        Called after every iteration with the running iteration count (1-based) and
        the objective value, as RayStation's ``ProgressOfOptimization``.

    Returns
    -------
    OptimizationResult
        Unconverged or infeasible runs are returned, not raised: ``converged`` is False,
        ``constraint_satisfied`` and ``message`` say which constraint fails.

    Raises
    ------
    InputError
        A wrong type, shape or value of any argument, or a function's ``voxel_index``
        beyond the rows of ``influence_gy``.

    Notes
    -----
    Minimizes :math:`F(w) = \\sum_{i \\in obj} \\omega_i f_i(d)`, :math:`d = n A w`, subject to
    :math:`w \\ge 0` and the constraints, by an augmented Lagrangian [1]_ around
    L-BFGS-B [2]_ (RayStation uses SQP; both reach a KKT point of the same problem).
    A constraint c enters the subproblem as :math:`\\tfrac{\\mu_c}{2} f_c(d; D_c \\mp \\sigma_c)`,
    its own penalty with the level shifted by :math:`\\sigma_c = \\lambda_c/\\mu_c` (per voxel
    for MaxDose, MinDose, UniformDose and DoseFallOff, so that each voxel bound
    :math:`d_v \\le r_v` has its own multiplier; one scalar for DVH and EUD). After every
    subproblem :math:`\\sigma_c \\leftarrow (\\sigma_c + g_c)_+` (:math:`g_c` the violation, per
    voxel or scalar) and :math:`\\mu_c` grows ten-fold when :math:`g_c` did not fall below a
    quarter of its previous value. Each subproblem gets at most a quarter of
    ``max_iterations`` (at least 10) while constraints remain violated. The influence
    matrix is restricted once to the rows that some function uses; one forward and one
    transposed sparse product per evaluation. Deterministic.

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer (2006), ch. 17.
    .. [2] R. H. Byrd, P. Lu, J. Nocedal, C. Zhu, "A limited memory algorithm for bound
       constrained optimization", SIAM J. Sci. Comput. 16(5), 1190-1208 (1995).

    Examples
    --------
    >>> import scipy.sparse
    >>> influence = scipy.sparse.identity(2, format="csr")      # 1 Gy per fraction per unit weight
    >>> specs = [FunctionSpec("MinDose", np.array([0]), np.ones(1), dose_level_gy=24.0),
    ...          FunctionSpec("MaxDose", np.array([1]), np.ones(1), dose_level_gy=6.0)]
    >>> result = optimize_beamlet_weights(influence, specs, fractions=2, initial_weights=np.zeros(2))
    >>> np.round(result.weights, 3).tolist()   # 24 Gy / 2 fx on voxel 0; voxel 1 stays at 0
    [12.0, 0.0]
    """
    start = time.perf_counter()
    matrix, weights = _validate_problem(influence_gy, functions, fractions, initial_weights, max_iterations,
                                        optimality_tolerance, constraint_tolerance_gy)
    problem = _prepare(matrix, functions, fractions)
    objective_values = [problem.objective(weights)]

    def record(xk: np.ndarray) -> None:
        objective_values.append(problem.objective(xk))
        if progress is not None:
            progress(len(objective_values) - 1, objective_values[-1])

    bounds = scipy.optimize.Bounds(np.zeros(weights.size), np.full(weights.size, np.inf))
    iterations, outer, inner_success, inner_message = 0, 0, False, "no iteration run"
    all_satisfied = True
    while iterations < max_iterations and outer < _MAX_OUTER_LOOPS:
        outer += 1
        remaining = max_iterations - iterations
        budget = remaining if not problem.constraints else min(remaining, max(10, max_iterations // 4))
        result = scipy.optimize.minimize(
            problem.value_and_gradient, weights, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
            options={"maxiter": budget, "ftol": optimality_tolerance, "gtol": optimality_tolerance,
                     "maxfun": 20 * budget + 20})
        weights = np.maximum(result.x, 0.0)
        iterations += int(result.nit)
        inner_success, inner_message = bool(result.success), str(result.message)
        if not problem.constraints:
            break
        d = problem.dose(weights)
        violations = [_achieved_violation_gy(t.spec.function_type, d[t.local], t.level, t.v, t.param)
                      for t in problem.constraints]
        all_satisfied = all(v <= constraint_tolerance_gy for v in violations)
        if all_satisfied and inner_success:
            break
        if all_satisfied and result.nit == 0:
            break
        problem.update_multipliers(d, constraint_tolerance_gy)
    # Iterations reported by the callback and by nit agree for L-BFGS-B; keep the cap exact.
    del objective_values[iterations + 1:]

    full_dose = np.zeros(matrix.shape[0])
    rows = np.unique(np.concatenate([spec.voxel_index for spec in functions]))
    full_dose[rows] = problem.dose(weights)
    function_values = tuple(float(penalty_value_and_dose_gradient(s, full_dose)[0]) for s in functions)
    violations_gy = tuple(constraint_violation_gy(s, full_dose) for s in functions)
    satisfied = tuple((v <= constraint_tolerance_gy) if s.is_constraint else None
                      for s, v in zip(functions, violations_gy))
    failed = [f"functions[{i}] {s.function_type} (violation {v:.4g} Gy > {constraint_tolerance_gy:g} Gy)"
              for i, (s, v, ok) in enumerate(zip(functions, violations_gy, satisfied)) if ok is False]
    converged = inner_success and not failed
    if failed:
        message = ("constraints not satisfied after "
                   f"{iterations} of {max_iterations} iterations: " + "; ".join(failed))
        _LOG.warning(message)
    elif inner_success:
        message = f"converged after {iterations} iterations ({inner_message})"
    else:
        message = f"stopped after {iterations} of {max_iterations} iterations ({inner_message})"
    return OptimizationResult(
        weights=_read_only(weights), iterations=iterations, function_evaluations=problem.evaluations,
        outer_iterations=outer, objective_values=tuple(float(v) for v in objective_values),
        function_values=function_values, constraint_violations_gy=violations_gy, constraint_satisfied=satisfied,
        converged=converged, message=message, time_s=time.perf_counter() - start)
