"""Decimal strings (DICOM DS) to float64 in one vectorized pass, the same doubles as ``float()``.

The rule (Clinger 1990, "How to read floating point numbers accurately", the fast
path of every correctly rounded ``strtod``): a decimal ``±d…d.d…d`` with at most 15
digits is ``M / 10**k`` with the integer mantissa M < 10¹⁵ < 2⁵³ and k ≤ 15, both
exact doubles, so one IEEE division rounds it correctly; Python's ``float()`` (David
Gay's correctly rounded conversion) returns the same double.  Any other value
(an exponent, ``+``, spaces, more than 15 digits or more than 8 before the dot, an
empty or malformed value) is converted by ``np.array(values, dtype=float64)``, with
its errors.

How, per value rather than per byte: the 8 bytes before each value's dot and the 16
after it are read as three little-endian 64-bit words (an unaligned view of the
bytes); the bytes outside the value's digits are set to ``'0'``; a word holding 8
ASCII digits is then checked and converted with a few integer operations (SWAR:
Lemire, "Fast number parsing", Software: Practice and Experience 51 (2021)).  The
integer part I, the first 8 and the next 8 fraction digits F₁, F₂ give
``M = I·10^k + (F₁·10⁸ + F₂) // 10^(16−k)``, exactly, in 64-bit integers.

Why: an RTSTRUCT's ContourData is most of the file (264 000 values in dicompyler-core's
example), and converting the values one by one was a tenth of a ``reirrad dvh`` process
(``docs/decisions/dvh-process-speed.md``).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["parse_decimal_strings"]

_MAX_DIGITS = 15
_PAD = 8                                   # bytes around the text, so every word read lies inside
_BACKSLASH, _DOT, _MINUS = 92, 46, 45
_ZEROS = np.uint64(0x3030303030303030)     # eight ASCII '0'
_HIGH = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIX = np.uint64(0x0606060606060606)
#: Masks keeping the last k bytes of a word (the k digits just before a dot), k = 0…8.
_KEEP_LAST = np.array([((1 << (8 * k)) - 1) << (8 * (8 - k)) for k in range(9)], dtype=np.uint64)
#: Masks keeping the first k bytes of a word (k digits just after a dot), k = 0…8.
_KEEP_FIRST = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_POW10 = 10.0 ** np.arange(17)             # exact doubles
_POW10_INT = 10 ** np.arange(17, dtype=np.uint64)
_SIGN = np.array([1.0, -1.0])


def _eight_digits(word: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Words of 8 ASCII bytes (first in the lowest byte) as the integers they spell, and whether
    all 8 bytes are digits (then the integer is right).  ``word`` is overwritten."""
    ok = (word & _HIGH) == _ZEROS                      # every byte 0x30-0x3F ...
    v = word - _ZEROS
    word += _SIX                                       # ... and none above 0x39 (no carry: all < 0x40)
    word &= _HIGH
    ok &= word == _ZEROS
    v = v * np.uint64(10) + (v >> np.uint64(8))        # pairs of digits, 2 bytes each
    lo = v & np.uint64(0x000000FF000000FF)
    lo *= np.uint64(100 + (1000000 << 32))
    v >>= np.uint64(16)
    v &= np.uint64(0x000000FF000000FF)
    v *= np.uint64(1 + (10000 << 32))
    v += lo
    v >>= np.uint64(32)                                # 8 digits, < 10⁸
    return v, ok


#: Text converted in pieces of about this many bytes (cut at a backslash): the temporaries, ~30 bytes
#: a byte of text, stay near 8 MB instead of 30 MB for a body's contours (fewer pages touched).
_PIECE_BYTES = 1 << 18


def parse_decimal_strings(text: bytes) -> np.ndarray:
    """The backslash-separated decimal strings of ``text`` as float64 (the doubles
    ``np.array(text.split(b"\\\\"), dtype=np.float64)`` gives).

    Raises
    ------
    ValueError
        A value that is not a number (as ``np.array(..., dtype=float64)`` raises it).
    """
    if len(text) <= 2 * _PIECE_BYTES:
        return _parse(text)
    pieces = []
    start = 0
    while True:
        cut = text.find(b"\\", start + _PIECE_BYTES) if start + 2 * _PIECE_BYTES < len(text) else -1
        if cut < 0:
            pieces.append(_parse(text[start:]))
            return np.concatenate(pieces)
        pieces.append(_parse(text[start:cut]))
        start = cut + 1


def _parse(text: bytes) -> np.ndarray:
    """:func:`parse_decimal_strings` of one piece."""
    if not text:
        return np.array([text], dtype=np.float64)    # raises, as numpy does for an empty value
    n_text = len(text)
    b = np.frombuffer(b"\\" * _PAD + text + b"\\" * (2 * _PAD + 1), np.uint8)
    body = b[_PAD:_PAD + n_text]
    is_sep = body == _BACKSLASH
    seps = np.flatnonzero(is_sep)
    dots = np.flatnonzero(body == _DOT)
    n = seps.size + 1
    starts = np.empty(n, np.intp)
    starts[0] = 0
    starts[1:] = seps + 1
    ends = np.empty(n, np.intp)
    ends[:-1] = seps
    ends[-1] = n_text
    negative = b.take(starts + _PAD) == _MINUS
    dot = ends.copy()                                 # no dot: as if after the last digit
    if dots.size:
        value_of_dot = np.cumsum(is_sep, dtype=np.int32).take(dots)
        first = np.empty(dots.size, bool)             # the first dot of its value (a second one is slow)
        first[0] = True
        np.not_equal(value_of_dot[1:], value_of_dot[:-1], out=first[1:])
        dot[value_of_dot[first]] = dots[first]
    n_int = dot - starts - negative
    n_frac = ends - dot - 1                           # -1 without a dot
    n_digits = n_int + n_frac
    fast = (n_int <= 8) & (n_digits >= 1) & (n_digits <= _MAX_DIGITS)
    np.clip(n_int, 0, 8, out=n_int)
    np.clip(n_frac, 0, 16, out=n_frac)
    # the 8 bytes before the dot, the 8 after it and the next 8, as words; other bytes -> '0'
    words = np.ndarray((b.size - 7,), dtype="<u8", buffer=b, strides=(1,))
    at = dot + (_PAD - 8)
    w = words.take(np.concatenate([at, at + 9, at + 17]))
    keep = np.concatenate([_KEEP_LAST.take(n_int), _KEEP_FIRST.take(np.minimum(n_frac, 8)),
                           _KEEP_FIRST.take(np.maximum(n_frac - 8, 0))])
    w &= keep
    keep = ~keep
    keep &= _ZEROS
    w |= keep
    v, ok = _eight_digits(w)
    fast &= ok.reshape(3, n).all(axis=0)
    v = v.reshape(3, n)
    frac = v[1] * np.uint64(100_000_000)
    frac += v[2]                                      # 16 fraction digits, < 10¹⁶ < 2⁶⁴
    frac //= _POW10_INT.take(16 - n_frac)             # exact: the dropped digits are the '0' fill
    mantissa = v[0] * _POW10_INT.take(n_frac)
    mantissa += frac                                  # < 10¹⁵ when fast: an exact double
    value = mantissa.astype(np.float64)
    value *= _SIGN.take(negative.view(np.int8))
    value /= _POW10.take(n_frac)
    if not fast.all():
        k = np.flatnonzero(~fast)
        value[k] = np.array([text[s:e] for s, e in zip(starts.take(k).tolist(), ends.take(k).tolist())],
                            dtype=np.float64)
    return value
