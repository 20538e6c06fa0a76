"""Dose-volume histograms and their metrics, exact for fractional voxel masks.

The same functions work on any voxel-wise quantity: physical dose (Gy), BED or EQD2
(Gy of a stated α/β).  Convert the dose array first; the DVH does not care.

The voxel model and the D_V rule
--------------------------------
Each voxel ``v`` carries one value ``d_v`` (its centre value) over its covered
volume ``w_v · ΔV`` (``w_v`` = fractional coverage, ``ΔV`` = voxel volume).  The
cumulative DVH ``V(d) = Σ_{v: d_v ≥ d} w_v ΔV`` is then a step function, and

* ``D_V`` (dose to the hottest volume ``V``) is the **highest dose d with V(d) ≥ V**:
  sort voxels by decreasing dose, accumulate their covered volumes, and take the dose
  of the voxel at which the running volume first reaches ``V``.  No interpolation
  between voxels; a volume that falls between two voxels takes the colder voxel
  (the one completing ``V``), which is exactly ``V(d) ≥ V`` on the step DVH.
* A volume smaller than the hottest voxel's covered volume returns that voxel's
  dose: ``D_V → Dmax`` as ``V → 0``.  On a 2.5 mm grid (0.0156 cc per voxel)
  D0.035cc is the dose of the 3rd hottest full voxel (2.24 voxels); on 3 mm
  (0.027 cc) the 2nd; on 1 mm the 35th.
* A volume larger than the structure cannot be evaluated: :class:`NotEvaluableError`,
  never a silent 0.
* ``D_x%`` is ``D_V`` with ``V = x/100 · total``; ``D100% = Dmin``.
* ``V_d`` (volume receiving at least ``d``) counts voxels with ``d_v ≥ d``.

References
----------
.. [1] ICRU Report 83, Prescribing, recording and reporting photon-beam IMRT (2010),
   §3.2 (D_V and V_D notation).
.. [2] Nelms BE, et al. Methods, software and datasets to verify DVH calculations
   against analytical values: twenty years past due! Med Phys. 2015;42:4435-4448.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable

import numpy as np

from ._validate import positive_number, nonnegative_number
from .errors import InputError, NotEvaluableError
from .structure import Structure

__all__ = ["Dvh", "compute_dvh"]

#: Relative tolerance on accumulated volumes (round-off of float sums).
_VOLUME_RTOL = 1e-9


def requested_volume_cc(volume_cc: float, total_volume_cc: float, structure_name: str) -> float:
    """The ``V`` of a ``D_V`` request, checked: a finite number > 0 (InputError) and not more than
    the structure holds, to relative round-off (NotEvaluableError, never an answer)."""
    v = positive_number(volume_cc, "volume_cc", "cc")
    if v > total_volume_cc * (1.0 + _VOLUME_RTOL):
        raise NotEvaluableError(
            f"D{v:g}cc of {structure_name!r} is not evaluable: the structure holds only {total_volume_cc:.4g} cc")
    return v


def requested_percent_cc(percent: float, total_volume_cc: float) -> float:
    """The volume (cm³) of a ``D_x%`` request; ``percent`` must be a number in (0, 100] (InputError)."""
    p = positive_number(percent, "percent", "%")
    if p > 100.0:
        raise InputError(f"percent must be in (0, 100], got {p:g}")
    return min(p / 100.0 * total_volume_cc, total_volume_cc)


@dataclass(frozen=True, eq=False)
class Dvh:
    """Cumulative DVH of one structure, from voxels sorted by decreasing value.

    Use :func:`compute_dvh` to make one.

    Attributes
    ----------
    structure_name : str
    dose_desc : ndarray, shape (k,)
        Values of the structure's voxels (coverage > 0), sorted decreasing.
    cum_volume_cc : ndarray, shape (k,), cm³
        ``cum_volume_cc[i]`` = covered volume of voxels ``0..i`` of ``dose_desc``.
    total_volume_cc : float, cm³
    mean : float
        Coverage-weighted mean value.
    """

    structure_name: str
    dose_desc: np.ndarray
    cum_volume_cc: np.ndarray
    total_volume_cc: float
    mean: float

    @property
    def dmax(self) -> float:
        """Highest voxel value in the structure (any voxel with coverage > 0)."""
        return float(self.dose_desc[0])

    @property
    def dmin(self) -> float:
        """Lowest voxel value in the structure (= D100%)."""
        return float(self.dose_desc[-1])

    def d_cc(self, volume_cc: float) -> float:
        """``D_V``: highest value received by at least ``volume_cc`` cm³ (rule in module doc).

        Raises
        ------
        constraints.errors.InputError
            ``volume_cc`` not a finite number > 0.
        constraints.errors.NotEvaluableError
            ``volume_cc`` exceeds the structure volume.
        """
        v = requested_volume_cc(volume_cc, self.total_volume_cc, self.structure_name)
        i = int(np.searchsorted(self.cum_volume_cc, v * (1.0 - _VOLUME_RTOL), side="left"))
        return float(self.dose_desc[min(i, self.dose_desc.size - 1)])

    def d_percent(self, percent: float) -> float:
        """``D_x%``: highest value received by at least ``percent`` % of the volume."""
        return self.d_cc(requested_percent_cc(percent, self.total_volume_cc))

    def v_cc(self, dose: float) -> float:
        """``V_d``: covered volume (cm³) of voxels with value ≥ ``dose``."""
        d = nonnegative_number(dose, "dose")
        # dose_desc is decreasing: count of voxels with value >= d
        k = int(np.searchsorted(-self.dose_desc, -d, side="right"))
        return float(self.cum_volume_cc[k - 1]) if k > 0 else 0.0

    def v_percent(self, dose: float) -> float:
        """``V_d`` as a percentage of the structure volume."""
        return 100.0 * self.v_cc(dose) / self.total_volume_cc

    def curve(self, dose_levels: Iterable[float]) -> np.ndarray:
        """Cumulative volume (cm³) receiving ≥ each of ``dose_levels`` (vectorized)."""
        levels = np.asarray(list(dose_levels) if not isinstance(dose_levels, np.ndarray) else dose_levels,
                            dtype=np.float64)
        k = np.searchsorted(-self.dose_desc, -levels, side="right")
        padded = np.concatenate([[0.0], self.cum_volume_cc])
        return padded[k]

    def metrics(self, *, d_percent: Iterable[float] = (), d_cc: Iterable[float] = ()) -> Dict[str, object]:
        """Plain dict of the usual metrics (for JSON); D_V entries that cannot be
        evaluated are given as ``None`` with the reason under ``"not_evaluable"``."""
        out: Dict[str, object] = {
            "volume_cc": self.total_volume_cc,
            "min": self.dmin,
            "max": self.dmax,
            "mean": self.mean,
        }
        reasons = {}
        dp = {}
        for p in d_percent:
            dp[f"{p:g}"] = self.d_percent(p)
        dc = {}
        for v in d_cc:
            try:
                dc[f"{v:g}"] = self.d_cc(v)
            except NotEvaluableError as exc:
                dc[f"{v:g}"] = None
                reasons[f"d_cc {v:g}"] = str(exc)
        out["d_percent"] = dp
        out["d_cc"] = dc
        if reasons:
            out["not_evaluable"] = reasons
        return out


def compute_dvh(values: np.ndarray, structure: Structure) -> Dvh:
    """Cumulative DVH of ``structure`` for a voxel-wise quantity.

    Parameters
    ----------
    values : ndarray, shape = structure.grid.shape_zyx
        Physical dose (Gy), BED or EQD2 — any non-negative voxel quantity.
    structure : Structure

    Returns
    -------
    Dvh

    Raises
    ------
    constraints.errors.GridMismatchError
        ``values`` is not shaped as the structure's grid.
    constraints.errors.NotEvaluableError
        The structure is empty, or a voxel inside it has an unknown (NaN) value.
    constraints.errors.InputError
        A value inside the structure is infinite or negative.

    Examples
    --------
    >>> from constraints.grid import Grid
    >>> g = Grid((0, 0, 0), (10, 10, 10), (1, 1, 4))   # four 1 cc voxels
    >>> s = Structure("s", "oar", np.array([[[1, 1, 0.5, 0]]]), g)
    >>> h = compute_dvh(np.array([[[30.0, 20.0, 10.0, 99.0]]]), s)
    >>> h.dmax, h.d_cc(1.0), h.d_cc(1.5), h.d_cc(2.5), round(h.mean, 3)
    (30.0, 30.0, 20.0, 10.0, 22.0)
    """
    structure.grid.require_array(values, f"values for structure {structure.name!r}")
    mask = structure.mask.ravel()
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise NotEvaluableError(f"structure {structure.name!r} is empty on this grid: no DVH")
    vals = np.asarray(values, dtype=np.float64).ravel()[idx]
    if not np.isfinite(vals).all():
        n_nan = int(np.isnan(vals).sum())
        if n_nan:
            raise NotEvaluableError(
                f"structure {structure.name!r}: the dose is unknown (NaN) in {n_nan} of its voxels; "
                "the dose grid does not cover it"
            )
        raise InputError(f"structure {structure.name!r}: the values contain infinities")
    if vals.min() < 0:
        raise InputError(f"structure {structure.name!r}: values must be >= 0, found {vals.min():g}")
    weights = mask[idx]
    dose_desc, weight_desc = _sort_descending(vals, weights)
    cum = np.cumsum(weight_desc) * structure.grid.voxel_volume_cc
    total = float(cum[-1])
    mean = float(np.dot(vals, weights) * structure.grid.voxel_volume_cc / total)
    dose_desc.setflags(write=False)
    cum.setflags(write=False)
    return Dvh(structure.name, dose_desc, cum, total, mean)


def _sort_descending(values: np.ndarray, weights: np.ndarray):
    """Sort ``values`` decreasing, carrying ``weights`` along.

    Fully covered voxels (weight exactly 1) are sorted by value alone (``np.sort``,
    several times faster than an arg-sort); the few partial voxels of the boundary
    are arg-sorted and merged in.  The order among equal values is irrelevant to
    every metric, because each metric reads the DVH at a value, not at a voxel.
    """
    full = weights == 1.0
    full_desc = np.sort(values[full])[::-1]
    part_vals = values[~full]
    if part_vals.size == 0:
        return full_desc, np.ones_like(full_desc)
    order = np.argsort(-part_vals)
    part_desc = part_vals[order]
    part_w = weights[~full][order]
    # merged position of each partial voxel: after all full voxels with value >= it
    pos = np.searchsorted(-full_desc, -part_desc, side="right") + np.arange(part_desc.size)
    n = full_desc.size + part_desc.size
    dose_desc = np.empty(n)
    weight_desc = np.ones(n)
    is_part = np.zeros(n, dtype=bool)
    is_part[pos] = True
    dose_desc[pos] = part_desc
    weight_desc[pos] = part_w
    dose_desc[~is_part] = full_desc
    return dose_desc, weight_desc
