"""Validators shared by every public boundary of reirrad.

Each takes the *name* of the argument it checks, so its error message names it.
They raise :class:`constraints.errors.InputError` (a ``ValueError``).
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .errors import InputError


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_dose_array(value: Any, name: str, *, allow_nan: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 array after checking it is a finite dose ≥ 0.

    Parameters
    ----------
    value : array_like
        Dose values (Gy, BED or EQD2).
    name : str
        Argument name used in error messages.
    allow_nan : bool
        Allow NaN (meaning "unknown") but still refuse ±inf and negatives.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric dose values in Gy, got {_describe(value)}") from None
    if arr.size == 0:
        return arr
    if allow_nan:
        bad_inf = np.isinf(arr)
        if bad_inf.any():
            raise InputError(f"{name} contains {int(bad_inf.sum())} infinite value(s); doses must be finite")
        finite = arr[~np.isnan(arr)]
    else:
        finite_mask = np.isfinite(arr)
        if not finite_mask.all():
            n_bad = int(arr.size - finite_mask.sum())
            raise InputError(
                f"{name} contains {n_bad} non-finite value(s) (NaN or inf); doses must be finite numbers in Gy"
            )
        finite = arr
    if finite.size and finite.min() < 0:
        raise InputError(f"{name} must be >= 0 Gy, found a minimum of {float(finite.min()):g}")
    return arr


def positive_number(value: Any, name: str, unit: str = "") -> float:
    """Check ``value`` is a finite real number > 0 and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number > 0{(' ' + unit) if unit else ''}, got {_describe(value)}")
    out = float(value)
    if not math.isfinite(out) or out <= 0:
        raise InputError(f"{name} must be a finite number > 0{(' ' + unit) if unit else ''}, got {out!r}")
    return out


def nonnegative_number(value: Any, name: str, unit: str = "") -> float:
    """Check ``value`` is a finite real number ≥ 0 and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number >= 0{(' ' + unit) if unit else ''}, got {_describe(value)}")
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise InputError(f"{name} must be a finite number >= 0{(' ' + unit) if unit else ''}, got {out!r}")
    return out


def fraction_count(value: Any, name: str = "fractions") -> int:
    """Check ``value`` is an integer number of fractions ≥ 1 and return it as int."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        out = int(value)
    else:
        raise InputError(f"{name} must be an integer >= 1, got {_describe(value)}")
    if out < 1:
        raise InputError(f"{name} must be an integer >= 1, got {out}")
    return out


def alpha_beta(value: Any, name: str = "alpha_beta_gy") -> float:
    """Check an α/β ratio (Gy): finite and > 0."""
    return positive_number(value, name, "Gy")


def recovery_fraction(value: Any, name: str = "recovery") -> float:
    """Check a tissue recovery fraction r in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a number in [0, 1), got {_describe(value)}")
    out = float(value)
    if not 0.0 <= out < 1.0:
        raise InputError(f"{name} must be in [0, 1) (0 = no recovery, conservative), got {out!r}")
    return out
