"""Per-voxel SBRT limits: the highest new physical dose each voxel can still take.

With prior BED ``b_v`` (Σ over prior courses of ``(1 − r_i)·BED_i`` in the organ's
α/β), a cumulative limit ``X`` (BED) and ``n`` new fractions (DESIGN §2):

    L_v = D(max(X − b_v, 0); n, α/β),   D(B; n, α/β) = (n α/β / 2)(sqrt(1 + 4B/(n α/β)) − 1)

then ``L_v ← min(L_v, cap)`` for an SBRT-only cap.  The cumulative BED
``b_v + D(1 + D/(n α/β))`` increases strictly with the new dose D ≥ 0, so
``cumulative ≤ X ⇔ D ≤ L_v``: a linear bound per voxel.

Soundness contract: for every voxel with tolerance left, any new dose
``0 ≤ D ≤ L_v`` gives ``b_v + BED_new(D) ≤ X`` *in floating point*, evaluated as
``prior_bed_gy + bed(D)``.  After the closed form, voxels where round-off would
break this are lowered by one ulp at a time (a vectorized fix over the whole array,
at most a few passes).  Voxels whose prior BED already reaches ``X`` get ``L_v = 0``
and are reported in ``exhausted``: no new dose keeps them within the limit.

Examples
--------
A voxel that received 60 Gy/30 fx (BED3 100) under ``Dmax < 203 Gy3``:

>>> import numpy as np
>>> round(float(limit_from_prior_bed(np.array(100.0), alpha_beta_gy=3, cumulative_limit_bed_gy=203,
...                                  fractions=2)[0]), 2)
22.04
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from constraints._validate import alpha_beta, as_dose_array, fraction_count, positive_number
from constraints.accumulate import cumulative_bed
from constraints.dose_course import DoseCourse
from constraints.errors import InputError, NotEvaluableError
from constraints.lq import bed_unchecked as _bed, dose_from_bed_unchecked as _dose_from_bed

__all__ = ["LimitMap", "sbrt_limit_map", "limit_from_prior_bed", "UNKNOWN_PRIOR_POLICIES"]

#: How to treat voxels whose prior dose is unknown (NaN): refuse (default), or assume
#: the highest prior BED of the organ (only when the user explicitly allows it).
UNKNOWN_PRIOR_POLICIES = ("refuse", "organ_max")


@dataclass(frozen=True, eq=False)
class LimitMap:
    """Per-voxel SBRT-only physical dose limits of one organ.

    Attributes
    ----------
    limit_gy : ndarray, Gy
        Highest total SBRT physical dose (over ``fractions``) per voxel.
    prior_bed_gy : ndarray, Gy (BED, organ α/β)
    remaining_bed_gy : ndarray, Gy (BED)
        ``X − b_v`` (negative where the prior alone exceeds the limit).
    exhausted : ndarray of bool
        Voxels with no tolerance left (``X − b_v ≤ 0``): limit 0.
    capped : ndarray of bool
        Voxels where the SBRT-only cap, not the cumulative limit, binds.
    alpha_beta_gy, cumulative_limit_bed_gy, fractions, cap_gy : the inputs.
    """

    limit_gy: np.ndarray
    prior_bed_gy: np.ndarray
    remaining_bed_gy: np.ndarray
    exhausted: np.ndarray
    capped: np.ndarray
    alpha_beta_gy: float
    cumulative_limit_bed_gy: float
    fractions: int
    cap_gy: Optional[float]

    @property
    def n_exhausted(self) -> int:
        return int(np.count_nonzero(self.exhausted))


def limit_from_prior_bed(prior_bed_gy, *, alpha_beta_gy: float, cumulative_limit_bed_gy: float,
                         fractions: int, cap_gy: Optional[float] = None
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-voxel limit from a prior-BED array.

    Parameters
    ----------
    prior_bed_gy : array_like, Gy (BED of ``alpha_beta_gy``)
        Prior BED after recovery (finite, ≥ 0).
    alpha_beta_gy : float, Gy
    cumulative_limit_bed_gy : float, Gy (BED)
    fractions : int
        Fractions of the new course.
    cap_gy : float, optional
        SBRT-only physical cap (Gy, total over the new course).

    Returns
    -------
    limit_gy, exhausted, capped : ndarray, ndarray of bool, ndarray of bool
    """
    b = as_dose_array(prior_bed_gy, "prior_bed_gy")
    ab = alpha_beta(alpha_beta_gy)
    x = positive_number(cumulative_limit_bed_gy, "cumulative_limit_bed_gy", "Gy BED")
    n = fraction_count(fractions)
    cap = None if cap_gy is None else positive_number(cap_gy, "cap_gy", "Gy")
    return _limit_kernel(b, ab, x, n, cap)


def _limit_kernel(b, ab, x, n, cap):
    remaining = x - b
    exhausted = remaining <= 0
    limit = _dose_from_bed(np.maximum(remaining, 0.0), n, ab)
    # Round-off repair: lower by one ulp where b + BED(L) > X (bounded number of passes).
    for _ in range(8):
        over = (b + _bed(limit, n, ab) > x) & ~exhausted
        if not over.any():
            break
        limit = np.where(over, np.nextafter(limit, 0.0), limit)
    else:  # pragma: no cover - would mean the closed form is far off, a bug
        raise RuntimeError("limit map round-off repair did not converge")
    limit = np.where(exhausted, 0.0, limit)
    capped = np.zeros(np.shape(limit), dtype=bool)
    if cap is not None:
        capped = limit > cap
        limit = np.where(capped, cap, limit)
    return limit, exhausted, capped


def sbrt_limit_map(prior_courses: Sequence[DoseCourse], *, alpha_beta_gy: float, cumulative_limit_bed_gy: float,
                   fractions: int, cap_gy: Optional[float] = None, mask: Optional[np.ndarray] = None,
                   unknown_prior: str = "refuse", organ: Optional[str] = None) -> LimitMap:
    """Map of the highest SBRT physical dose per voxel of one organ.

    Parameters
    ----------
    prior_courses : sequence of DoseCourse
        Prior courses on one grid, each with its own fractions and recovery.
        An empty sequence means no prior dose (limit = the de novo limit).
    alpha_beta_gy : float, Gy
        The organ's α/β.
    cumulative_limit_bed_gy : float, Gy (BED)
        Cumulative limit X (e.g. 203 Gy3 for the esophageal Dmax; 140 Gy2 = 70 Gy EQD2 cord).
    fractions : int
        Fractions of the new SBRT course.
    cap_gy : float, optional
        SBRT-only physical cap (e.g. 20 Gy).
    mask : ndarray, optional
        The organ's fractional mask; voxels with coverage 0 are not checked for
        unknown prior dose (and, with ``unknown_prior='organ_max'``, the organ's
        maximum prior BED is taken over coverage > 0).
    unknown_prior : {'refuse', 'organ_max'}
        Unknown (NaN) prior dose inside the organ: raise, or assume the organ's
        highest known prior BED (only on the user's explicit choice; never zero).
    organ : str, optional
        Organ key: each course's recovery for this organ (see ``DoseCourse.recovery``).

    Returns
    -------
    LimitMap

    Raises
    ------
    constraints.errors.InputError
        Bad α/β, limit, fractions or cap; unknown ``unknown_prior``.
    constraints.errors.GridMismatchError
        Courses (or the mask) on different grids.
    constraints.errors.NotEvaluableError
        Unknown prior dose inside the organ with ``unknown_prior='refuse'``.
    """
    ab = alpha_beta(alpha_beta_gy)
    x = positive_number(cumulative_limit_bed_gy, "cumulative_limit_bed_gy", "Gy BED")
    n = fraction_count(fractions)
    cap = None if cap_gy is None else positive_number(cap_gy, "cap_gy", "Gy")
    if unknown_prior not in UNKNOWN_PRIOR_POLICIES:
        raise InputError(f"unknown_prior must be one of {UNKNOWN_PRIOR_POLICIES}, got {unknown_prior!r}")
    courses = list(prior_courses)
    if courses:
        b = cumulative_bed(courses, ab, organ)
        grid = courses[0].grid
    elif mask is not None:
        b = np.zeros(np.shape(mask))
        grid = None
    else:
        raise InputError("sbrt_limit_map needs prior courses or a mask giving the grid shape")
    inside = np.ones(b.shape, dtype=bool)
    if mask is not None:
        m = np.asarray(mask, dtype=np.float64)
        if grid is not None:
            grid.require_array(m, "mask")
        inside = m > 0
    unknown = np.isnan(b)
    if unknown.any():
        unknown_in = unknown & inside
        if unknown_in.any():
            if unknown_prior == "refuse":
                raise NotEvaluableError(
                    f"the prior dose is unknown (outside the prior dose grid) in {int(unknown_in.sum())} voxel(s) "
                    "of this organ; extend the prior dose grid, or allow unknown_prior='organ_max' to assume the "
                    "organ's highest prior dose there"
                )
            known = b[inside & ~unknown]
            if known.size == 0:
                raise NotEvaluableError("the prior dose is unknown in every voxel of this organ")
            b = np.where(unknown, known.max(), b)
        else:
            b = np.where(unknown, 0.0, b)  # outside the organ: never used, kept finite
    limit, exhausted, capped = _limit_kernel(b, ab, x, n, cap)
    for arr in (limit, b, exhausted, capped):
        arr.setflags(write=False)
    remaining = x - b
    remaining.setflags(write=False)
    return LimitMap(limit, b, remaining, exhausted, capped, ab, x, n, cap)
