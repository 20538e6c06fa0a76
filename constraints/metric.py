"""Parsing and evaluating DVH metric names: ``Dmax``, ``Dmean``, ``Dmin``, ``D0.035cc``,
``D95%``, ``V24Gy`` (volume receiving at least 24 of the domain's Gy)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .dvh import Dvh
from .errors import InputError

__all__ = ["Metric", "parse_metric"]

_PATTERNS = (
    (re.compile(r"^Dmax$"), "max"),
    (re.compile(r"^Dmin$"), "min"),
    (re.compile(r"^Dmean$"), "mean"),
    (re.compile(r"^D(\d+(?:\.\d+)?)cc$"), "d_cc"),
    (re.compile(r"^D(\d+(?:\.\d+)?)%$"), "d_percent"),
    (re.compile(r"^V(\d+(?:\.\d+)?)Gy$"), "v_dose"),
)


@dataclass(frozen=True)
class Metric:
    """A parsed DVH metric.

    Attributes
    ----------
    text : str
        The metric as written, e.g. ``"D0.035cc"``.
    kind : {'max', 'min', 'mean', 'd_cc', 'd_percent', 'v_dose'}
    parameter : float or None
        Volume in cc (``d_cc``), percent (``d_percent``) or dose level (``v_dose``).
    """

    text: str
    kind: str
    parameter: Optional[float] = None

    @property
    def is_dose(self) -> bool:
        """True when the metric's value is a dose (everything except ``V<d>Gy``)."""
        return self.kind != "v_dose"

    def evaluate(self, dvh: Dvh, *, volume_unit: str = "%") -> float:
        """Value of this metric on ``dvh`` (dose metrics in the DVH's unit; ``V`` in
        ``volume_unit``, '%' or 'cc')."""
        if self.kind == "max":
            return dvh.dmax
        if self.kind == "min":
            return dvh.dmin
        if self.kind == "mean":
            return dvh.mean
        if self.kind == "d_cc":
            return dvh.d_cc(self.parameter)
        if self.kind == "d_percent":
            return dvh.d_percent(self.parameter)
        if volume_unit == "cc":
            return dvh.v_cc(self.parameter)
        return dvh.v_percent(self.parameter)


def parse_metric(text: str, *, where: str = "metric") -> Metric:
    """Parse a metric name; ``where`` names the input in the error message.

    Examples
    --------
    >>> parse_metric("D0.035cc")
    Metric(text='D0.035cc', kind='d_cc', parameter=0.035)
    """
    if not isinstance(text, str):
        raise InputError(f"{where} must be a string such as 'Dmax' or 'D0.035cc', got {text!r}")
    s = text.strip()
    for pattern, kind in _PATTERNS:
        m = pattern.match(s)
        if m:
            param = float(m.group(1)) if m.groups() else None
            if kind == "d_percent" and not 0 < param <= 100:
                raise InputError(f"{where} {text!r}: the percentage must be in (0, 100]")
            if kind == "d_cc" and param <= 0:
                raise InputError(f"{where} {text!r}: the volume must be > 0 cc")
            return Metric(s, kind, param)
    raise InputError(
        f"{where} {text!r} is not a known metric; use Dmax, Dmin, Dmean, D<volume>cc, D<percent>% or V<dose>Gy"
    )
