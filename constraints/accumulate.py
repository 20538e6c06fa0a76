"""Voxel-wise summation of courses in BED of one organ's α/β.

Each course keeps its own physical dose and fraction count (DESIGN §2); BED is made
per course with the voxel's own dose, discounted by the course's recovery fraction,
then summed:

    B_v = Σ_i (1 − r_i) · D_iv (1 + D_iv / (n_i α/β))

EQD2 follows as ``B_v / (1 + 2/α/β)``.  Courses must share one grid.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._validate import alpha_beta
from .dose_course import DoseCourse
from .errors import InputError
from .lq import _bed

__all__ = ["course_bed", "cumulative_bed", "cumulative_eqd2"]


def course_bed(course: DoseCourse, alpha_beta_gy: float, organ: Optional[str] = None) -> np.ndarray:
    """BED of one course after the recovery of ``organ``: ``(1 − r) · BED``, Gy (NaN stays NaN)."""
    ab = alpha_beta(alpha_beta_gy)
    return (1.0 - course.recovery_for(organ)) * _bed(course.dose_gy, course.fractions, ab)


def cumulative_bed(courses: Sequence[DoseCourse], alpha_beta_gy: float, organ: Optional[str] = None) -> np.ndarray:
    """Sum of the courses' BED (after the recovery each course claims for ``organ``),
    voxel by voxel, in the given order.

    Raises
    ------
    constraints.errors.InputError
        No course given, or an item is not a DoseCourse.
    constraints.errors.GridMismatchError
        The courses are on different grids.
    """
    courses = list(courses)
    if not courses:
        raise InputError("cumulative_bed needs at least one course")
    for c in courses:
        if not isinstance(c, DoseCourse):
            raise InputError(f"courses must be DoseCourse objects, got {type(c).__name__}")
    first = courses[0]
    total = course_bed(first, alpha_beta_gy, organ)
    for c in courses[1:]:
        first.grid.require_same(c.grid, f"course {c.label!r}")
        total = total + course_bed(c, alpha_beta_gy, organ)
    return total


def cumulative_eqd2(courses: Sequence[DoseCourse], alpha_beta_gy: float, organ: Optional[str] = None) -> np.ndarray:
    """Cumulative EQD2 (Gy) = cumulative BED / (1 + 2/α/β)."""
    ab = alpha_beta(alpha_beta_gy)
    return cumulative_bed(courses, ab, organ) / (1.0 + 2.0 / ab)
