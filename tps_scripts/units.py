"""Unit conversions at the planning-system boundary (the only place cGy and cm exist).

RayStation reports dose in cGy and lengths/coordinates in cm; reirrad's packages work
in Gy and mm.  Every crossing goes through one of these named functions.
"""
from __future__ import annotations

CGY_PER_GY = 100.0
MM_PER_CM = 10.0

__all__ = ["cgy_to_gy", "gy_to_cgy", "cm_to_mm", "mm_to_cm", "CGY_PER_GY", "MM_PER_CM"]


def cgy_to_gy(dose_cgy):
    """cGy → Gy (scalars or arrays).

    >>> cgy_to_gy(1000.0)
    10.0
    """
    return dose_cgy / CGY_PER_GY


def gy_to_cgy(dose_gy):
    """Gy → cGy.

    >>> gy_to_cgy(24.0)
    2400.0
    """
    return dose_gy * CGY_PER_GY


def cm_to_mm(length_cm):
    """cm → mm.

    >>> cm_to_mm(0.25)
    2.5
    """
    return length_cm * MM_PER_CM


def mm_to_cm(length_mm):
    """mm → cm.

    >>> mm_to_cm(1.5)
    0.15
    """
    return length_mm / MM_PER_CM
