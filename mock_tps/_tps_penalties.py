"""Penalty values, dose gradients and constraint violations of RayStation's optimization
functions, as the mock TPS optimizer evaluates them.

Each kernel takes the dose d (Gy, total over all fractions) at the function's voxels,
the reference level (scalar or per voxel), the normalized volume weights v̂ (Σ = 1)
and the type's parameter, and returns (f, ∂f/∂d). The penalties are RayStation's
one-sided quadratic ones (Gy²); UniformityConstraint's is in %² (see
:mod:`mock_tps._uniformity`).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import numpy as np

from constraints.errors import InputError

from ._tps_function_spec import FunctionSpec
from ._uniformity import relative_std_percent, uniformity_penalty

__all__ = ["penalty_value_and_dose_gradient", "constraint_violation_gy"]

# Volume fractions within this of the V % boundary count as on it (cumulative-sum rounding).
_VOLUME_EPS = 1e-12
# gEUD evaluates doses below this as this, so that a < 1 stays finite at zero dose.
_EUD_DOSE_FLOOR_GY = 1e-6


def _upper(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = np.maximum(d - level, 0.0)
    return float(v @ (r * r)), 2.0 * v * r


def _lower(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = np.maximum(level - d, 0.0)
    return float(v @ (r * r)), -2.0 * v * r


def _two_sided(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    r = d - level
    return float(v @ (r * r)), 2.0 * v * r


def _hottest_first(d: np.ndarray, v: np.ndarray, volume: float) -> np.ndarray:
    """The voxel indices in the order of a stable sort by decreasing dose, as far as the
    first ones holding more than ``volume`` (of ``sum(v)``) — or all of them.

    A DVH function needs only the hottest few voxels of a large ROI: they are sorted
    after a partition, ties at the cut included, so the prefix equals the full sort's."""
    n = d.size
    k = min(n, 64)
    while True:
        if k >= n:
            return np.argsort(-d, kind="stable")
        cut = -np.partition(-d, k - 1)[k - 1]   # the k-th highest dose
        candidates = np.flatnonzero(d >= cut)
        order = candidates[np.argsort(-d[candidates], kind="stable")]
        if float(v[order].sum()) > volume:
            return order
        k *= 4


def _max_dvh_exempt(d: np.ndarray, v: np.ndarray, percent: float) -> np.ndarray:
    """Mask of the hottest voxels that fit entirely within ``percent`` % of the volume."""
    limit = percent / 100.0 + _VOLUME_EPS
    order = _hottest_first(d, v, limit)
    exempt = np.zeros(d.size, dtype=bool)
    exempt[order] = np.cumsum(v[order]) <= limit
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


def _uniformity(d: np.ndarray, level, v: np.ndarray, _p) -> Tuple[float, np.ndarray]:
    """(r − s)₊² in %² with r the relative standard deviation (%); 0 where no dose is given."""
    keep = v > 0
    grad = np.zeros(d.size)
    if not float(v @ d) > 0.0:
        return 0.0, grad       # zero dose is uniform: the constraint starts to act once dose is given
    value, grad[keep] = uniformity_penalty(d[keep], v[keep], float(level))
    return value, grad


def uniformity_curvature(d: np.ndarray, level, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton curvature of the UniformityConstraint penalty f = (r − s)₊² in dose space:
    ``2 ∇r ∇rᵀ`` (returned as u with u uᵀ) plus the positive diagonal part of ``2 (r − s)₊ ∇²r``,
    ``2 (r − s)₊ · 100 v̂ / (σ μ)`` (from ∂²σ/∂d² ≈ diag(v̂)/σ): without it the model sees one
    direction only and a step barely lowers the spread."""
    diag, u = np.zeros(d.size), np.zeros(d.size)
    keep = v > 0
    if not float(v @ d) > 0.0:
        return diag, u
    r, dr = relative_std_percent(d[keep], v[keep])
    excess = r - float(level)
    if excess <= 0.0 or r == 0.0:
        return diag, u
    w = v[keep] / v[keep].sum()
    mean = float(w @ d[keep])
    sigma = r * mean / 100.0
    u[keep] = math.sqrt(2.0) * dr
    diag[keep] = 2.0 * excess * 100.0 * w / (sigma * mean)
    return diag, u


#: The kernel of every function type.
KERNELS: Dict[str, Callable[..., Tuple[float, np.ndarray]]] = {
    "MaxDose": _upper, "MinDose": _lower, "UniformDose": _two_sided, "DoseFallOff": _upper,
    "MaxDvh": _max_dvh, "MinDvh": _min_dvh, "MaxEud": _max_eud, "MinEud": _min_eud,
    "UniformityConstraint": _uniformity,
}


def reference_level(spec: FunctionSpec):
    """Dose level D (Gy), for DoseFallOff the per-voxel reference dose (Gy), for
    UniformityConstraint the largest relative standard deviation s (%)."""
    if spec.function_type == "UniformityConstraint":
        return spec.percent_std_deviation
    if spec.function_type != "DoseFallOff":
        return spec.dose_level_gy
    high, low = spec.high_dose_level_gy, spec.low_dose_level_gy
    return np.maximum(low, high - (high - low) * spec.distance_mm / spec.low_dose_distance_mm)


def function_parameter(spec: FunctionSpec):
    if spec.function_type in ("MaxDvh", "MinDvh"):
        return spec.percent_volume
    if spec.function_type in ("MaxEud", "MinEud"):
        return spec.eud_parameter_a
    return None


def normalized_weights(spec: FunctionSpec) -> np.ndarray:
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
        f in Gy² (%² for UniformityConstraint; unweighted: ``spec.weight`` is not applied).
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
    - UniformityConstraint: :math:`f = (r - s)_+^2` (%²) with :math:`r = 100\\,\\sigma/\\mu`
      the relative standard deviation of the dose (:mod:`mock_tps._uniformity`); 0 when
      the mean dose is 0.

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
    return KERNELS[spec.function_type](d, reference_level(spec), normalized_weights(spec), function_parameter(spec))


def achieved_violation(ftype: str, d: np.ndarray, level, v: np.ndarray, param) -> float:
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
    if ftype == "UniformityConstraint":
        r = relative_std_percent(d[counted], v[counted])[0] if float(v @ d) > 0.0 else 0.0
        return float(r - level)
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
        :math:`D - E`; UniformityConstraint :math:`r - s` in percentage points.
        Maxima and minima run over voxels of positive volume weight.
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
    return achieved_violation(spec.function_type, d, reference_level(spec), normalized_weights(spec),
                              function_parameter(spec))
