"""A course of radiotherapy in the neutral model: physical dose plus its fractionation."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._validate import as_dose_array, fraction_count, recovery_fraction
from .errors import InputError
from .grid import Grid

__all__ = ["DoseCourse"]


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
    recovery : float in [0, 1)
        Fraction of this course's BED assumed recovered by the time of the new
        course: its BED counts as ``(1 − recovery) · BED``.  Default 0 (no
        recovery: conservative).
    """

    dose_gy: np.ndarray
    grid: Grid
    fractions: int
    label: str
    date: Optional[_dt.date] = None
    recovery: float = 0.0

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
        object.__setattr__(self, "recovery", recovery_fraction(self.recovery, f"DoseCourse {self.label!r} recovery"))
        if self.date is not None and not isinstance(self.date, _dt.date):
            raise InputError(f"DoseCourse {self.label!r}: date must be a datetime.date, got {self.date!r}")

    @property
    def has_unknown(self) -> bool:
        """True when some voxels carry NaN (dose unknown there)."""
        return bool(np.isnan(self.dose_gy).any())
