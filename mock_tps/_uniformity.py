"""Value and gradient of RayStation's UniformityConstraint, for the mock's optimizer.

A UniformityConstraint on an ROI asks that the dose's relative standard deviation
stay at or below ``PercentStdDeviation`` %.  With normalized volume weights
:math:`\\hat w_v` (Σ = 1):

.. math::

    \\mu = \\sum_v \\hat w_v d_v, \\quad
    \\sigma^2 = \\sum_v \\hat w_v (d_v - \\mu)^2, \\quad
    r = 100\\,\\sigma / \\mu \\;[\\%], \\quad
    f = (r - s)_+^2

with gradient :math:`\\partial r/\\partial d_v = 100\\,\\hat w_v\\,[(d_v - \\mu)/(\\sigma\\mu)
- \\sigma/\\mu^2]` (the :math:`\\partial\\mu` term of :math:`\\partial\\sigma^2` vanishes
because :math:`\\sum_v \\hat w_v (d_v - \\mu) = 0`).  The penalty form mirrors the
one-sided quadratic penalties of :mod:`mock_tps._tps_penalties`, whose
UniformityConstraint kernel calls :func:`uniformity_penalty`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["relative_std_percent", "uniformity_penalty"]


def relative_std_percent(dose_gy: np.ndarray, volume_weight: np.ndarray) -> Tuple[float, np.ndarray]:
    """Relative standard deviation r (%) of the dose and ∂r/∂d.

    Parameters
    ----------
    dose_gy : ndarray, shape (n,), Gy
    volume_weight : ndarray, shape (n,), > 0 (any unit; normalized here)

    Returns
    -------
    r_percent : float
    gradient : ndarray, shape (n,), % per Gy

    Raises
    ------
    ValueError
        Shapes differ, a weight is not positive, or the mean dose is not positive.
    """
    d = np.asarray(dose_gy, dtype=np.float64)
    w = np.asarray(volume_weight, dtype=np.float64)
    if d.shape != w.shape or d.ndim != 1 or d.size == 0:
        raise ValueError(f"dose and weights must be equal 1-D arrays, got {d.shape} and {w.shape}")
    if np.any(~(w > 0)):
        raise ValueError("volume weights must be > 0")
    w = w / w.sum()
    mu = float(w @ d)
    if not mu > 0:
        raise ValueError(f"the mean dose must be > 0 Gy, got {mu}")
    dev = d - mu
    sigma = float(np.sqrt(w @ (dev * dev)))
    r = 100.0 * sigma / mu
    if sigma == 0.0:
        return 0.0, np.zeros_like(d)
    grad = 100.0 * w * (dev / (sigma * mu) - sigma / (mu * mu))
    return r, grad


def uniformity_penalty(dose_gy: np.ndarray, volume_weight: np.ndarray,
                       percent_std_deviation: float) -> Tuple[float, np.ndarray]:
    """Penalty f = (r − s)₊² (%²) and ∂f/∂d (%² per Gy) of a UniformityConstraint at s %."""
    r, dr = relative_std_percent(dose_gy, volume_weight)
    excess = max(r - float(percent_std_deviation), 0.0)
    return excess * excess, 2.0 * excess * dr
