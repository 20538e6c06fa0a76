"""Decimal strings (DICOM DS) to float64 in one vectorized pass, the same doubles as ``float()``.

The rule (Clinger 1990, "How to read floating point numbers accurately", the fast
path of every correctly rounded ``strtod``): a decimal ``±d…d.d…d`` with at most 15
digits is ``M / 10**k`` with the integer mantissa M < 10¹⁵ < 2⁵³ and k ≤ 15, both
exact doubles, so one IEEE division rounds it correctly; Python's ``float()`` (David
Gay's correctly rounded conversion) returns the same double.  Any other value
(an exponent, ``+``, spaces, more than 15 digits, an empty or malformed value) is
converted by ``np.array(values, dtype=float64)``, with its errors.

Why: an RTSTRUCT's ContourData is most of the file (264 000 values in dicompyler-core's
example), and converting the values one by one was a tenth of a ``reirrad dvh`` process
(``docs/decisions/dvh-process-speed.md``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["parse_decimal_strings"]

_MAX_DIGITS = 15
#: 10**0 … 10**22, exact doubles.
_POW10 = 10.0 ** np.arange(23)
_BACKSLASH, _DOT, _MINUS, _ZERO = 92, 46, 45, 48


def parse_decimal_strings(text: bytes) -> np.ndarray:
    """The backslash-separated decimal strings of ``text`` as float64 (the doubles
    ``np.array(text.split(b"\\\\"), dtype=np.float64)`` gives).

    Raises
    ------
    ValueError
        A value that is not a number (as ``np.array(..., dtype=float64)`` raises it).
    """
    if not text:
        return np.array([text], dtype=np.float64)    # raises, as numpy does for an empty value
    b = np.frombuffer(text, np.uint8)
    digit = b - np.uint8(_ZERO)                       # 0-9 for digits; others wrap to >= 10
    is_digit = digit < 10
    sep = b == _BACKSLASH
    seps = np.flatnonzero(sep)
    dots = np.flatnonzero(b == _DOT)
    minus = np.flatnonzero(b == _MINUS)
    n = seps.size + 1
    starts = np.empty(n, np.intp)
    starts[0] = 0
    starts[1:] = seps + 1
    ends = np.empty(n, np.intp)
    ends[:-1] = seps
    ends[-1] = b.size
    value_of = np.cumsum(sep, dtype=np.int32)         # the value each byte belongs to
    dot_value, minus_value = value_of.take(dots), value_of.take(minus)
    negative = np.zeros(n, bool)
    negative[minus_value] = True
    has_dot = np.zeros(n, bool)
    has_dot[dot_value] = True
    decimals = np.zeros(n, np.intp)
    decimals[dot_value] = ends.take(dot_value) - dots - 1
    n_digits = ends - starts - negative - has_dot
    slow = (n_digits < 1) | (n_digits > _MAX_DIGITS)
    if np.count_nonzero(is_digit) + seps.size + dots.size + minus.size != b.size:
        other = ~is_digit & ~sep & (b != _DOT) & (b != _MINUS)
        slow[value_of.take(np.flatnonzero(other))] = True
    slow[minus_value[minus != starts.take(minus_value)]] = True      # a minus sign not in front
    slow[dot_value[1:][dot_value[1:] == dot_value[:-1]]] = True      # two dots
    # M = Σ digit × 10^(digits after it in its value): integers < 2⁵³, exact in any order
    digits_to = np.cumsum(is_digit, dtype=np.int32)
    power = digits_to.take(ends - 1).take(value_of)
    power -= digits_to
    np.minimum(power, _POW10.size - 1, out=power)     # only slow values exceed 15
    term = _POW10.take(power)
    digit *= is_digit
    term *= digit
    mantissa = np.add.reduceat(term, np.minimum(starts, b.size - 1))   # a trailing empty value is slow
    value = mantissa / _POW10.take(np.minimum(decimals, _POW10.size - 1))
    value *= np.where(negative, -1.0, 1.0)
    if slow.any():
        k = np.flatnonzero(slow)
        value[k] = np.array([text[s:e] for s, e in zip(starts.take(k).tolist(), ends.take(k).tolist())],
                            dtype=np.float64)
    return value
