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
import scipy.linalg
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
_PENALTY_START = 10.0
# μ grows at most this much (beyond, the Gauss-Newton systems lose precision).
_PENALTY_MAX_GROWTH = 1e6
# Constraints aim this fraction of the constraint tolerance inside their levels.
_BACKOFF = 0.5
_FIRST_INNER_TOLERANCE = 1e-2
_INNER_TOLERANCE_DECAY = 0.1
# Above this fill the restricted matrix is made dense for the optimization.
_DENSE_FILL = 0.25
# Levenberg damping of the Gauss-Newton matrix, relative to its mean diagonal.
_DAMPING = 1e-9
# Block-pivoting passes of the bound-constrained Newton subproblem.
_PIVOT_PASSES = 20
# Slope evaluations of the line minimization.
_LINE_SEARCH_STEPS = 12
_TINY = 1e-300
# Conjugate-gradient steps (at most) and relative residual of the Newton system when the free
# beamlets are too many for a dense Gauss-Newton matrix.
_CG_MAX = 20
_CG_RTOL = 1e-2
# Up to this many free beamlets the Newton step is exact (dense Gauss-Newton matrix of the free
# beamlets on the curved rows, block principal pivoting); above, preconditioned CG.
_N_GRAM = 800
# Constraint rows (at most) whose curvature the CG preconditioner holds exactly (Woodbury).
_WOOD_MAX = 2000


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
    mu_max: float = math.inf
    backoff_gy: float = 0.0      # constraints aim this far inside their level
    last_violation_gy: float = math.inf
    mu_rel: object = 1.0

    @property
    def aim(self):
        """The level the constraint aims at: ``backoff_gy`` inside its own (Gy)."""
        ftype = self.spec.function_type
        if ftype == "UniformDose" or not self.spec.is_constraint:
            return self.level
        return self.level - self.backoff_gy if ftype in _UPPER else self.level + self.backoff_gy

    def shifted_level(self):
        ftype = self.spec.function_type
        if ftype == "UniformDose" or ftype in _UPPER:
            return self.aim - self.shift
        return self.aim + self.shift


def _curvature(ftype: str, value: float, grad: np.ndarray, v: np.ndarray):
    """Gauss-Newton curvature of a kernel in dose space: (diagonal or None, rank-one vector or None).

    The hinge-squared kernels have the generalized Hessian ``2 v̂`` on the voxels whose
    residual is positive (exactly those of non-zero gradient), UniformDose ``2 v̂`` on all;
    gEUD kernels ``f = r²`` have ``2 ∇E ∇Eᵀ = u uᵀ`` with ``u = ∇f / √(2 f)``.
    """
    if ftype == "UniformDose":
        return 2.0 * v, None
    if ftype in ("MaxEud", "MinEud"):
        return None, (grad / math.sqrt(2.0 * value) if value > 0 else None)
    return np.where(grad != 0.0, 2.0 * v, 0.0), None


@dataclass
class _Problem:
    matrix: object   # fractions × influence on the union rows (CSR, or ndarray when dense), Gy total per unit weight
    objectives: List[_Term]
    constraints: List[_Term]
    n_rows: int
    evaluations: int = 0
    locked: Optional[np.ndarray] = None   # beamlets held at zero (they reach a voxel whose upper bound is ≤ 0)

    matrix_sq: object = None

    def dose(self, weights: np.ndarray) -> np.ndarray:
        return _mv(self.matrix, weights)

    def objective_from_dose(self, d: np.ndarray, grad_d: Optional[np.ndarray]) -> float:
        total = 0.0
        for term in self.objectives:
            value, grad = _KERNELS[term.spec.function_type](d[term.local], term.level, term.v, term.param)
            total += term.spec.weight * value
            if grad_d is not None:
                grad_d[term.local] += term.spec.weight * grad
        return total

    def merit(self, d: np.ndarray, derivatives: bool = False):
        """Augmented Lagrangian L at dose ``d`` and the objective alone; with ``derivatives``
        also ∂L/∂d, the diagonal Gauss-Newton curvature and its rank-one terms (dose space)."""
        self.evaluations += 1
        grad_d = np.zeros(self.n_rows) if derivatives else None
        diag_d = np.zeros(self.n_rows) if derivatives else None
        rank_one: List[np.ndarray] = []
        con_d = np.zeros(self.n_rows) if derivatives else None
        self.con_d = con_d
        objective = 0.0
        total = 0.0
        for term, scale, level in ([(t, t.spec.weight, t.level) for t in self.objectives]
                                   + [(t, 0.5 * t.mu, t.shifted_level()) for t in self.constraints]):
            ftype = term.spec.function_type
            tv = term.v * term.mu_rel if (term.spec.is_constraint and isinstance(term.mu_rel, np.ndarray)) else term.v
            value, grad = _KERNELS[ftype](d[term.local], level, tv, term.param)
            total += scale * value
            if not term.spec.is_constraint:
                objective += scale * value
            if derivatives and scale > 0:
                grad_d[term.local] += scale * grad
                diag, vector = _curvature(ftype, value, grad, tv)
                if diag is not None:
                    diag_d[term.local] += scale * diag
                    if term.spec.is_constraint:
                        con_d[term.local] += scale * diag
                if vector is not None:
                    full = np.zeros(self.n_rows)
                    full[term.local] = math.sqrt(scale) * vector
                    rank_one.append(full)
        if derivatives:
            return total, objective, grad_d, diag_d, rank_one
        return total, objective

    def update_multipliers(self, d: np.ndarray, tolerance_gy: float) -> None:
        """AL update λ ← (λ + μ g)_+ written for σ = λ/μ; μ × 10 when the violation stalls."""
        for term in self.constraints:
            ftype = term.spec.function_type
            dl = d[term.local]
            violation = _achieved_violation_gy(ftype, dl, term.level, term.v, term.param)
            if ftype in _POINTWISE:
                h = dl - term.aim if ftype in _UPPER or ftype == "UniformDose" else term.aim - dl
                shift = term.shift + h
                term.shift = shift if ftype == "UniformDose" else np.maximum(shift, 0.0)
                true_h = dl - term.level if ftype in _UPPER else (term.level - dl if ftype != "UniformDose" else np.abs(dl - term.level))
                if not isinstance(term.last_violation_gy, np.ndarray):
                    term.last_violation_gy = np.full(dl.size, np.inf)
                    term.mu_rel = np.ones(dl.size)
                stalled = (true_h > tolerance_gy) & (true_h > 0.25 * term.last_violation_gy) & (term.mu_rel * _PENALTY_GROWTH <= _PENALTY_MAX_GROWTH)
                term.mu_rel = np.where(stalled, term.mu_rel * _PENALTY_GROWTH, term.mu_rel)
                term.shift = np.where(stalled, term.shift / _PENALTY_GROWTH, term.shift)
                term.last_violation_gy = true_h
                continue
            else:
                aimed = _achieved_violation_gy(ftype, dl, term.aim, term.v, term.param)
                term.shift = max(float(term.shift) + aimed, 0.0)
            stalled = violation > tolerance_gy and violation > 0.25 * term.last_violation_gy
            if stalled and term.mu * _PENALTY_GROWTH <= term.mu_max:
                term.mu *= _PENALTY_GROWTH
                term.shift = term.shift / _PENALTY_GROWTH  # keep λ = μ σ
            term.last_violation_gy = violation

    def violations_gy(self, d: np.ndarray) -> List[float]:
        return [_achieved_violation_gy(t.spec.function_type, d[t.local], t.level, t.v, t.param)
                for t in self.constraints]


@dataclass
class _Iterate:
    weights: np.ndarray
    dose: np.ndarray
    merit: float
    objective: float




def _mv(A, x):
    return np.asarray(A @ x.astype(A.dtype), dtype=np.float64)

def _rmv(A, y):
    return np.asarray(A.T @ y.astype(A.dtype), dtype=np.float64)

def _newton_step(problem, x):
    A = problem.matrix
    _, _, grad_d, diag_d, rank_one = problem.merit(x.dose, derivatives=True)
    g = _rmv(A, grad_d)
    w = x.weights
    locked = problem.locked if problem.locked is not None else np.zeros(w.size, dtype=bool)
    rows = np.flatnonzero(diag_d > 0.0)
    AR = A[rows]
    hR = diag_d[rows].astype(A.dtype)
    U = [_rmv(A, u) for u in rank_one]
    con_d = problem.con_d
    obj_d = diag_d - con_d
    hd_full = _rmv(problem.matrix_sq, diag_d) + sum(u * u for u in U)
    damp = _DAMPING * max(float(hd_full.mean()), _TINY)
    hd_full = hd_full + damp
    dg = _rmv(problem.matrix_sq, obj_d) + sum(u * u for u in U) + damp
    crows = np.flatnonzero(con_d > 0.0)
    if crows.size > _WOOD_MAX:
        excess = (x.dose - 0)[crows]
        crows = crows[np.argsort(-con_d[crows] * 0 - excess, kind="stable")[:_WOOD_MAX]]
        crows.sort()
    USE_W = crows.size > 0
    bound0 = None
    hd = hd_full
    dg = np.maximum(dg, 1e-12 * max(float(dg.max()), _TINY))
    # Bertsekas epsilon-active set
    scaled = np.maximum(w - g / hd, 0.0) - w
    eps = min(float(np.abs(scaled).max(initial=0.0)), 1e-3 * max(float(w.max(initial=0.0)), _TINY))
    bound = ((w <= eps) & (g > 0.0)) | locked
    free = ~bound
    def hess(p):
        q = _rmv(AR, hR * _mv(AR, p).astype(hR.dtype))
        for u in U:
            q += u * float(u @ p)
        return q + damp * p
    nfree = int(free.sum())
    if nfree <= _N_GRAM:
        F = np.flatnonzero(free)
        block = A[rows][:, F]
        block = block.toarray() if scipy.sparse.issparse(block) else block
        block = block * np.sqrt(hR)[:, None]
        HF = np.asarray(block.T @ block, dtype=np.float64)
        for u in U:
            HF += np.outer(u[F], u[F])
        HF.flat[::F.size + 1] += damp
        sF = _box_qp_step(HF, g[F], w[F], locked[F])
        s = np.where(bound, -np.minimum(w, np.where(locked, w, g / hd)), 0.0)
        s[F] = sF
        k = -1
        return _finish_step(problem, x, g, w, s, locked, hd, hess, free, crows, k)
    if USE_W:
        C = A[crows]
        C = (C.toarray() if scipy.sparse.issparse(C) else np.asarray(C, dtype=np.float64)) * free
        Cd = C / dg
        S = Cd @ C.T
        S.flat[::S.shape[0] + 1] += 1.0 / con_d[crows]
        try:
            cf = scipy.linalg.cho_factor(S, check_finite=False)
        except np.linalg.LinAlgError:
            cf = None
        if cf is not None:
            def precond(r):
                y = r / dg
                return np.where(free, y - (scipy.linalg.cho_solve(cf, C @ y, check_finite=False) @ Cd), 0.0)
        else:
            def precond(r):
                return r / hd
    else:
        def precond(r):
            return r / hd
    # PCG on the free variables
    s = np.zeros(w.size)
    r = np.where(free, -g, 0.0)
    z = precond(r)
    p = z.copy()
    rz = float(r @ z)
    r0 = math.sqrt(float(r @ r))
    for k in range(_CG_MAX):
        Hp = np.where(free, hess(p), 0.0)
        pHp = float(p @ Hp)
        if pHp <= 0:
            break
        a = rz / pHp
        s += a * p
        r -= a * Hp
        if math.sqrt(float(r @ r)) <= _CG_RTOL * r0:
            break
        z = precond(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    s = np.where(bound, -np.minimum(w, np.where(locked, w, g / hd)), s)
    return _finish_step(problem, x, g, w, s, locked, hd, hess, free, crows, k)


def _finish_step(problem, x, g, w, s, locked, hd, hess, free, crows, k):
    newton = s
    gradient = np.where(locked, -w, np.maximum(w - g / hd, 0.0) - w)
    for step in (newton, gradient):
        if not float(g @ step) < 0.0:
            continue
        alpha = _line_minimum(problem, x.dose, problem.dose(step))
        for _ in range(4):
            trial = np.maximum(w + alpha * step, 0.0)
            d = problem.dose(trial)
            merit, objective = problem.merit(d)
            if merit < x.merit:
                Hs = hess(step)
                predicted = -float(g @ step + 0.5 * step @ Hs)
                return _Iterate(trial, d, merit, objective), max(predicted, 0.0)
            alpha *= 0.3
    return x, 0.0


def _box_qp_step(hessian: np.ndarray, g: np.ndarray, w: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Step s minimizing the model ``gᵀs + ½ sᵀHs`` subject to ``w + s ≥ 0``, by block principal
    pivoting [3]_: solve on the free beamlets with the others at zero, move those the solution
    makes negative to the bound and release bound ones whose model gradient is negative;
    at most :data:`_PIVOT_PASSES` passes, the last solution projected onto ``w + s ≥ 0``."""
    bound = ((w <= 0.0) & (g > 0.0)) | locked
    y = np.maximum(w, 0.0)
    for _ in range(_PIVOT_PASSES):
        free = np.flatnonzero(~bound)
        fixed = np.flatnonzero(bound)
        y = np.zeros_like(w)
        if free.size:
            rhs = -(g[free] - hessian[np.ix_(free, fixed)] @ w[fixed])
            y[free] = w[free] + _solve_psd(hessian[np.ix_(free, free)], rhs)
        model_grad = g + hessian @ (y - w)
        new_bound = np.where(bound, model_grad >= 0.0, y < 0.0) | locked
        if np.array_equal(new_bound, bound):
            break
        bound = new_bound
    return np.maximum(y, 0.0) - w


def _locked_beamlets(problem: "_Problem") -> np.ndarray:
    """Beamlets that must be zero: those reaching a voxel whose upper-bound constraint
    (MaxDose, DoseFallOff) is ≤ 0 Gy — with non-negative influence and weights, such a
    voxel's dose is zero only if every beamlet reaching it is off."""
    A = problem.matrix
    zero_rows = np.zeros(problem.n_rows, dtype=bool)
    for term in problem.constraints:
        if term.spec.function_type in ("MaxDose", "DoseFallOff"):
            level = np.broadcast_to(term.level, term.local.shape)
            zero_rows[term.local[(level <= 0.0) & (term.v > 0)]] = True
    locked = np.zeros(A.shape[1], dtype=bool)
    if zero_rows.any():
        block = A[np.flatnonzero(zero_rows)]
        locked = np.asarray((block > 0).sum(axis=0)).ravel() > 0
    return locked


def _solve_psd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a damped Gauss-Newton system by Cholesky (diagonal scaling if it is not definite)."""
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix, check_finite=False), rhs,
                                      check_finite=False)
    except np.linalg.LinAlgError:
        return rhs / np.maximum(np.diag(matrix), _TINY)


def _line_minimum(problem: _Problem, dose: np.ndarray, dose_step: np.ndarray) -> float:
    """α in (0, 1] minimizing the merit along ``dose + α dose_step`` (regula falsi on the slope).

    The merit is convex piecewise quadratic in α for the pointwise functions, so the
    root of its slope is the minimum; a fixed number of slope evaluations, O(voxels) each.
    """
    def slope(alpha: float) -> float:
        return float(problem.merit(dose + alpha * dose_step, derivatives=True)[2] @ dose_step)

    lo, hi = 0.0, 1.0
    s_lo, s_hi = slope(lo), slope(hi)
    if s_hi <= 0.0 or s_lo >= 0.0:
        return hi
    side = 0
    for _ in range(_LINE_SEARCH_STEPS):
        alpha = (lo * s_hi - hi * s_lo) / (s_hi - s_lo)
        s = slope(alpha)
        if s > 0.0:
            hi, s_hi = alpha, s
            if side == -1:
                s_lo *= 0.5
            side = -1
        else:
            lo, s_lo = alpha, s
            if side == 1:
                s_hi *= 0.5
            side = 1
        if hi - lo <= 1e-6 or s == 0.0:
            break
    return max(lo, min(hi, alpha))


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


def _prepare(matrix: scipy.sparse.csr_matrix, functions: Sequence[FunctionSpec], fractions: int,
             backoff_gy: float = 0.0, single: bool = False) -> _Problem:
    rows = np.unique(np.concatenate([spec.voxel_index for spec in functions]))
    used = matrix if rows.size == matrix.shape[0] else matrix[rows]  # rows are sorted and unique
    restricted = (used * float(fractions)).tocsr()
    if restricted.nnz >= _DENSE_FILL * restricted.shape[0] * restricted.shape[1]:
        # photon beamlet matrices of the phantoms are 65-95 % filled: a dense BLAS product is
        # several times faster than a sparse one (measured in bench/bench_tps_optimizer.py)
        restricted = restricted.toarray()
        if single:
            # float32 halves the memory traffic of every product; doses stay float64
            restricted = restricted.astype(np.float32)
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
    # Penalty start: a constraint voxel's curvature μ v̂ is _PENALTY_START times the largest
    # curvature the objectives give one voxel (2 Σ ω v̂); a DVH/EUD constraint counts as one voxel.
    per_voxel = np.zeros(rows.size)
    for term in objectives:
        per_voxel[term.local] += 2.0 * term.spec.weight * term.v
    sq = restricted.multiply(restricted).tocsr() if scipy.sparse.issparse(restricted) else restricted * restricted
    c_obj = _rmv(sq, per_voxel)
    start_mu = _PENALTY_START
    for term in constraints:
        cv = np.zeros(rows.size); cv[term.local] = term.v
        c_c = _rmv(sq, cv)
        term.mu = start_mu * max(float(c_obj @ c_c) / max(float(c_c @ c_c), _TINY), _TINY)
        term.mu_max = term.mu * _PENALTY_MAX_GROWTH
        term.backoff_gy = backoff_gy
    return _Problem(matrix=restricted, objectives=objectives, constraints=constraints, n_rows=rows.size, matrix_sq=sq)



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
    return value, _rmv(problem.matrix, grad_d)


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
        Cap on the TOTAL number of (Newton) iterations over all outer loops
        (RayStation's ``MaxNumberOfIterations``), ≥ 1.
    optimality_tolerance : float
        A subproblem is solved when one iteration lowers its merit function by less than
        this fraction (relative), or predicts less.
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
    :math:`w \\ge 0` and the constraints, by an augmented Lagrangian [1]_ whose subproblems
    are solved by projected Gauss-Newton steps [2]_ (RayStation uses SQP; both reach a KKT
    point of the same problem, and on the convex functions — MinDose, MaxDose,
    UniformDose, DoseFallOff — its minimum).
    A constraint c enters the subproblem as :math:`\\tfrac{\\mu_c}{2} f_c(d; D_c \\mp \\sigma_c)`,
    its own penalty with the level shifted by :math:`\\sigma_c = \\lambda_c/\\mu_c` (per voxel
    for MaxDose, MinDose, UniformDose and DoseFallOff, so that each voxel bound
    :math:`d_v \\le r_v` has its own multiplier; one scalar for DVH and EUD). After every
    subproblem :math:`\\sigma_c \\leftarrow (\\sigma_c + g_c)_+` (:math:`g_c` the violation, per
    voxel or scalar) and :math:`\\mu_c` grows ten-fold when :math:`g_c` did not fall below a
    quarter of its previous value.

    One iteration: the Gauss-Newton model of the merit function (the penalties are
    piecewise quadratic in dose: curvature :math:`2\\hat w_v` where a residual is positive;
    gEUD terms rank one) is minimized over the beamlets not held at zero by a fixed
    number (:data:`_CG_STEPS`) of Jacobi-preconditioned conjugate-gradient steps, then
    the step is cut back along the projection arc :math:`\\max(w + \\alpha s, 0)` until the
    Armijo condition holds. Each subproblem gets at most a quarter of ``max_iterations``
    (at least 10) while constraints remain violated. No decision depends on a
    convergence test inside the linear algebra, so BLAS threading changes a result only
    by rounding. Deterministic.

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer (2006), ch. 17.
    .. [2] D. P. Bertsekas, "Projected Newton methods for optimization problems with simple
       constraints", SIAM J. Control Optim. 20(2), 221-246 (1982).

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
    problem = _prepare(matrix, functions, fractions, backoff_gy=_BACKOFF * constraint_tolerance_gy, single=True)
    problem.locked = _locked_beamlets(problem)
    weights = np.where(problem.locked, 0.0, weights)
    d = problem.dose(weights)
    merit, objective = problem.merit(d)
    x = _Iterate(weights, d, merit, objective)
    objective_values = [objective]
    iterations, outer, inner_solved, all_satisfied = 0, 0, False, True
    while iterations < max_iterations and outer < _MAX_OUTER_LOOPS:
        outer += 1
        remaining = max_iterations - iterations
        budget = remaining if not problem.constraints else min(remaining, max(10, max_iterations // 4))
        inner_solved = False
        # early subproblems are solved loosely: their multipliers are provisional
        tolerance = max(optimality_tolerance, _FIRST_INNER_TOLERANCE * _INNER_TOLERANCE_DECAY ** (outer - 1))
        if not problem.constraints:
            tolerance = optimality_tolerance
        for _ in range(budget):
            before = x.merit
            x, predicted = _newton_step(problem, x)
            iterations += 1
            objective_values.append(x.objective)
            if progress is not None:
                progress(iterations, x.objective)
            scale = max(abs(before), _TINY)
            if predicted <= tolerance * scale or before - x.merit <= tolerance * scale:
                inner_solved = tolerance <= optimality_tolerance or predicted <= optimality_tolerance * scale
                break
        if not problem.constraints:
            break
        violations = problem.violations_gy(x.dose)
        all_satisfied = all(v <= constraint_tolerance_gy for v in violations)
        if all_satisfied and inner_solved:
            break
        problem.update_multipliers(x.dose, constraint_tolerance_gy)
        x = _Iterate(x.weights, x.dose, *problem.merit(x.dose))   # the merit function changed
    weights = x.weights

    full_dose = np.zeros(matrix.shape[0])
    rows = np.unique(np.concatenate([spec.voxel_index for spec in functions]))
    full_dose[rows] = float(fractions) * (matrix[rows] @ weights)   # reported in float64
    function_values = tuple(float(penalty_value_and_dose_gradient(s, full_dose)[0]) for s in functions)
    violations_gy = tuple(constraint_violation_gy(s, full_dose) for s in functions)
    satisfied = tuple((v <= constraint_tolerance_gy) if s.is_constraint else None
                      for s, v in zip(functions, violations_gy))
    failed = [f"functions[{i}] {s.function_type} (violation {v:.4g} Gy > {constraint_tolerance_gy:g} Gy)"
              for i, (s, v, ok) in enumerate(zip(functions, violations_gy, satisfied)) if ok is False]
    converged = inner_solved and not failed
    if failed:
        message = ("constraints not satisfied after "
                   f"{iterations} of {max_iterations} iterations: " + "; ".join(failed))
        _LOG.warning(message)
    elif inner_solved:
        message = f"converged after {iterations} iterations ({outer} outer loops)"
    else:
        message = f"stopped after {iterations} of {max_iterations} iterations (iteration limit)"
    return OptimizationResult(
        weights=_read_only(weights), iterations=iterations, function_evaluations=problem.evaluations,
        outer_iterations=outer, objective_values=tuple(float(v) for v in objective_values),
        function_values=function_values, constraint_violations_gy=violations_gy, constraint_satisfied=satisfied,
        converged=converged, message=message, time_s=time.perf_counter() - start)
