"""A course of radiotherapy in the neutral model: physical dose plus its fractionation."""
from __future__ import annotations

import datetime as _dt
import re
import types
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np

from ._validate import as_dose_array, fraction_count, recovery_fraction
from .errors import InputError
from .grid import Grid

__all__ = ["DoseCourse", "months_between", "interval_months", "DAYS_PER_MONTH", "fractions_from_name",
           "total_from_name"]

#: mean Gregorian month, days (365.25 / 12): intervals in months are days / this
DAYS_PER_MONTH = 365.25 / 12.0

#: "60Gy/30fx", "60 Gy in 30 fractions", "20Gy/5fr", "50.4Gy/28F"
_FRACTIONS_IN_NAME = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*Gy\s*(?:/|in|x)\s*(\d+)\s*(?:fx|fr|fractions?|f)\b", re.IGNORECASE)


def fractions_from_name(name: str) -> Optional[int]:
    """Fraction count stated in a dose's name (``"Prior EBRT 60Gy/30fx"`` → 30), or None."""
    m = _FRACTIONS_IN_NAME.search(name or "")
    return int(m.group(2)) if m else None


def total_from_name(name: str) -> Optional[float]:
    """Total dose (Gy) stated in a dose's name (``"Prior EBRT 60Gy/30fx"`` → 60.0), or None."""
    m = _FRACTIONS_IN_NAME.search(name or "")
    return float(m.group(1).replace(",", ".")) if m else None


@dataclass(frozen=True, eq=False)
class DoseCourse:
    """Total physical dose of one course on a grid, with its fraction count.

    Courses are stored as physical dose and summed later in BED of each organ's own
    α/β (DESIGN §2), never as BED of one fixed α/β.

    Parameters
    ----------
    dose_gy : ndarray, shape (nz, ny, nx), Gy
        Total physical dose of the whole course per voxel.  NaN marks voxels where
        the dose is unknown (outside a resampled prior dose grid); never zero there.
    grid : Grid
    fractions : int
        Number of fractions of the course (≥ 1).
    label : str
        Human label, e.g. ``"Prior EBRT 60Gy/30fx"``.
    date : datetime.date, optional
        Date of the course's last fraction.
    recovery : float in [0, 1), or mapping organ key → float in [0, 1)
        Fraction of this course's BED assumed recovered by the time of the new
        course: its BED counts as ``(1 − recovery) · BED``.  A number applies to
        every organ; a mapping gives it per organ (organs not listed: 0).  Default 0
        (no recovery: conservative).  Whether a protocol's limit allows it is
        checked by :func:`constraints.recovery.check_recovery`.
    """

    dose_gy: np.ndarray
    grid: Grid
    fractions: int
    label: str
    date: Optional[_dt.date] = None
    recovery: Union[float, Mapping[str, float]] = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise InputError(f"DoseCourse label must be a non-empty string, got {self.label!r}")
        if not isinstance(self.grid, Grid):
            raise InputError(f"DoseCourse {self.label!r}: grid must be a constraints.Grid")
        dose = np.array(as_dose_array(self.dose_gy, f"DoseCourse {self.label!r} dose_gy", allow_nan=True))
        self.grid.require_array(dose, f"DoseCourse {self.label!r} dose_gy")
        dose.setflags(write=False)
        object.__setattr__(self, "dose_gy", dose)
        object.__setattr__(self, "fractions", fraction_count(self.fractions, f"DoseCourse {self.label!r} fractions"))
        if isinstance(self.recovery, Mapping):
            checked = {}
            for organ, r in self.recovery.items():
                if not isinstance(organ, str) or not organ:
                    raise InputError(f"DoseCourse {self.label!r} recovery: organ keys must be names, got {organ!r}")
                checked[organ] = recovery_fraction(r, f"DoseCourse {self.label!r} recovery[{organ!r}]")
            object.__setattr__(self, "recovery", types.MappingProxyType(checked))
        else:
            object.__setattr__(self, "recovery",
                               recovery_fraction(self.recovery, f"DoseCourse {self.label!r} recovery"))
        if self.date is not None and not isinstance(self.date, _dt.date):
            raise InputError(f"DoseCourse {self.label!r}: date must be a datetime.date, got {self.date!r}")

    def recovery_for(self, organ: Optional[str] = None) -> float:
        """Recovery fraction of this course for ``organ`` (a key of the protocol).

        A per-organ mapping without ``organ`` (a dose shown for no particular organ)
        gives 0: the prior counts in full.
        """
        if isinstance(self.recovery, Mapping):
            return float(self.recovery.get(organ, 0.0)) if organ is not None else 0.0
        return float(self.recovery)

    @property
    def claims_recovery(self) -> bool:
        """True when any organ's recovery fraction is > 0."""
        if isinstance(self.recovery, Mapping):
            return any(r > 0 for r in self.recovery.values())
        return self.recovery > 0

    @property
    def has_unknown(self) -> bool:
        """True when some voxels carry NaN (dose unknown there)."""
        return bool(np.isnan(self.dose_gy).any())


def months_between(earlier: _dt.date, later: _dt.date) -> float:
    """Months from ``earlier`` to ``later``: days / (365.25/12) (negative if reversed)."""
    return (later - earlier).days / DAYS_PER_MONTH


def interval_months(priors, sbrt: "DoseCourse") -> Optional[float]:
    """Months from the last prior course to the new one, or None when unknown.

    Known only when the new course and *every* prior course carry a date (an
    undated course could be the most recent one).  None for no prior course.
    """
    priors = list(priors)
    if not priors or sbrt.date is None or any(p.date is None for p in priors):
        return None
    return months_between(max(p.date for p in priors), sbrt.date)
