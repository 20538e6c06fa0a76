"""Dose distributions of the mock: FractionDose, TotalDose and evaluation doses.

Units at this API, as RayStation: dose in cGy, lengths and coordinates in cm.
``DoseValues.DoseData`` is a float64 array shaped (nz, ny, nx), x fastest.
``InDoseGrid.Corner`` is the outer corner of the first voxel (voxel centres at
``Corner + (i + 0.5) * VoxelSize``).

DVH conventions (where RayStation's documentation is silent)
------------------------------------------------------------
An ROI's voxels on the dose grid are those with coverage > 0 (box resampling of
the CT-grid geometry, see :mod:`mock_tps._geometry`), each weighted by its
coverage (fraction of the voxel inside the ROI).

- ``Average`` = Σ w·d / Σ w; ``Max``/``Min`` = extreme dose among voxels with w > 0.
- ``GetRelativeVolumeAtDoseValues``: V(D) = Σ w[d ≥ D] / Σ w (fraction).
- ``GetDoseAtRelativeVolumes``: D(v) = the highest dose d such that V(d) ≥ v,
  i.e. sort voxels by dose descending and take the dose of the first voxel at
  which the cumulative relative volume reaches v (no interpolation); D(0) = Max.
- ``InterpolateDoseInPoint``: trilinear between voxel centres, clamped to the
  outermost centres inside the grid; ``nan`` outside the grid.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ._api import (ApiObject, ArgumentException, InvalidOperationException, Shared, _point,
                   api_method, array_digest)
from ._geometry import MM_PER_CM
from ._phantom_data import GridSpec

__all__ = ["DoseGrid", "DoseValues", "FractionDose", "TotalDose", "EvaluationDose",
           "gy_to_cgy", "cgy_to_gy"]

CGY_PER_GY = 100.0


def gy_to_cgy(dose_gy: Any) -> Any:
    """Gy → cGy."""
    return dose_gy * CGY_PER_GY


def cgy_to_gy(dose_cgy: Any) -> Any:
    """cGy → Gy."""
    return dose_cgy / CGY_PER_GY


class DoseGrid(ApiObject):
    """``InDoseGrid``: ``Corner``, ``VoxelSize`` (cm) and ``NrVoxels`` as fresh expandos."""

    def __init__(self, grid: GridSpec) -> None:
        self._grid = grid

    @property
    def Corner(self) -> Any:  # noqa: N802
        return _point(*(c / MM_PER_CM for c in self._grid.corner_mm))

    @property
    def VoxelSize(self) -> Any:  # noqa: N802
        return _point(*(s / MM_PER_CM for s in self._grid.spacing_mm))

    @property
    def NrVoxels(self) -> Any:  # noqa: N802
        nz, ny, nx = self._grid.shape
        p = _point(nx, ny, nz)
        p.update(x=int(nx), y=int(ny), z=int(nz))
        return p


class DoseValues(ApiObject):
    """``DoseValues``: ``DoseData`` is a copy, cGy, shape (nz, ny, nx)."""

    def __init__(self, data_cgy: Shared) -> None:
        self._data = data_cgy

    @property
    def DoseData(self) -> np.ndarray:  # noqa: N802
        return np.array(self._data.value, dtype=np.float64, copy=True)


def _dose_at_relative_volumes(dose: np.ndarray, w: np.ndarray, volumes: np.ndarray) -> np.ndarray:
    order = np.argsort(-dose, kind="stable")
    d = dose[order]
    cum = np.cumsum(w[order]) / np.sum(w)
    k = np.searchsorted(cum, volumes - 1e-12, side="left")
    return d[np.clip(k, 0, d.size - 1)]


class _DoseDistribution(ApiObject):
    """Shared behaviour of every dose distribution (values, grid, ROI queries)."""

    def __init__(self, grid: GridSpec, structure_set: Any) -> None:
        self._grid = grid
        self._structure_set = structure_set
        self._values: Optional[DoseValues] = None
        self._in_dose_grid = DoseGrid(grid)

    # -- mock internals -----------------------------------------------------
    def _set_dose_cgy(self, data_cgy: Optional[np.ndarray]) -> None:
        if data_cgy is None:
            self._values = None
            return
        arr = np.array(data_cgy, dtype=np.float64).reshape(self._grid.shape)
        self._values = DoseValues(Shared(arr))

    def _dose_cgy(self) -> np.ndarray:
        """The stored dose (read-only view, cGy); refuses when none is computed."""
        if self._values is None:
            raise InvalidOperationException(
                f"{type(self).__name__} has no dose: compute the dose first (DoseValues is None).")
        return self._values._data.value

    def _roi_weights(self, roi_name: Any) -> tuple:
        """(flat voxel indices, coverage weights) of an ROI on this dose grid."""
        if not isinstance(roi_name, str):
            raise TypeError(f"RoiName must be a str, got {type(roi_name).__name__}")
        geom = self._structure_set._geometry(roi_name)
        cov = geom._coverage_on(self._grid).ravel()
        idx = np.flatnonzero(cov > 0)
        if idx.size == 0:
            raise InvalidOperationException(
                f"ROI '{roi_name}' has no geometry on the dose grid: cannot compute dose statistics.")
        return idx, cov[idx]

    def _snapshot(self) -> Any:
        return None if self._values is None else array_digest(self._values._data.value)

    # -- public API ----------------------------------------------------------
    @property
    def DoseValues(self) -> Optional[DoseValues]:  # noqa: N802
        return self._values

    @property
    def InDoseGrid(self) -> DoseGrid:  # noqa: N802
        return self._in_dose_grid

    @api_method
    def GetDoseStatistic(self, RoiName: str, DoseType: str) -> float:  # noqa: N802,N803
        """Dose statistic of an ROI, cGy.

        Parameters
        ----------
        RoiName : str
        DoseType : {'Average', 'Max', 'Min'}
        """
        idx, w = self._roi_weights(RoiName)
        d = self._dose_cgy().ravel()[idx]
        if DoseType == "Average":
            return float(np.sum(w * d) / np.sum(w))
        if DoseType == "Max":
            return float(np.max(d))
        if DoseType == "Min":
            return float(np.min(d))
        raise ArgumentException(f"Unknown DoseType '{DoseType}'; expected 'Average', 'Max' or 'Min'.")

    @api_method
    def GetDoseAtRelativeVolumes(self, RoiName: str, RelativeVolumes: Sequence[float]) -> np.ndarray:  # noqa: N802,N803
        """Doses (cGy) at relative volumes (fractions 0–1) of an ROI."""
        v = np.asarray(RelativeVolumes, dtype=np.float64).ravel()
        if np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
            raise ArgumentException(f"RelativeVolumes must be fractions in [0, 1], got {list(v)}")
        idx, w = self._roi_weights(RoiName)
        return _dose_at_relative_volumes(self._dose_cgy().ravel()[idx], w, v)

    @api_method
    def GetRelativeVolumeAtDoseValues(self, RoiName: str, DoseValues: Sequence[float]) -> np.ndarray:  # noqa: N802,N803
        """Relative volumes (fractions) of an ROI receiving at least each dose (cGy)."""
        levels = np.asarray(DoseValues, dtype=np.float64).ravel()
        idx, w = self._roi_weights(RoiName)
        d = self._dose_cgy().ravel()[idx]
        return np.array([np.sum(w[d >= lv]) for lv in levels]) / np.sum(w)

    @api_method
    def InterpolateDoseInPoint(self, Point: Mapping[str, float], **_ignored: Any) -> float:  # noqa: N802,N803
        """Dose (cGy) at a point (cm, DICOM patient coordinates), trilinear; nan outside."""
        from scipy.ndimage import map_coordinates

        data = self._dose_cgy()
        g = self._grid
        xyz_mm = [float(Point[k]) * MM_PER_CM for k in ("x", "y", "z")]
        idx = []
        for k, ax in ((2, 0), (1, 1), (0, 2)):  # z, y, x
            rel = (xyz_mm[k] - g.corner_mm[k]) / g.spacing_mm[k]
            n = g.shape[ax]
            if rel < 0 or rel > n:
                return float("nan")
            idx.append(min(max(rel - 0.5, 0.0), n - 1.0))
        return float(map_coordinates(data, np.array(idx)[:, None], order=1, mode="nearest")[0])

    @api_method
    def UpdateDoseGridStructures(self) -> None:  # noqa: N802
        """Accepted; the mock always evaluates the current geometries (never stale)."""


class FractionDose(_DoseDistribution):
    """``beam_set.FractionDose``: dose of one fraction (cGy)."""

    def __init__(self, grid: GridSpec, structure_set: Any, beam_set: Any) -> None:
        super().__init__(grid, structure_set)
        self._init(ForBeamSet=beam_set)


class TotalDose(_DoseDistribution):
    """``plan.TreatmentCourse.TotalDose``: all beam sets, all fractions (cGy)."""


class EvaluationDose(_DoseDistribution):
    """A dose in ``TreatmentDelivery.FractionEvaluations[i].DoseOnExaminations[j].DoseEvaluations``.

    For a mapped prior course the stored dose is the **whole course's total
    dose** (cGy), the convention of RayStation users, who map the prior plan's
    total dose.  RayStation cannot tell a mapped dose's fraction count; neither
    can the mock (the count is only in the name, e.g. "Prior EBRT 60Gy/30fx").
    ``ForBeamSet`` is None (not a plan dose).  ``OfDoseDistribution`` and
    ``ByStructureRegistration`` are None: the phantom supplies the prior dose
    already on the planning CT, so the mock has no source dose or registration.
    """

    def __init__(self, name: str, grid: GridSpec, structure_set: Any) -> None:
        super().__init__(grid, structure_set)
        self._init(Name=name, ForBeamSet=None, OfDoseDistribution=None,
                   ByStructureRegistration=None, PerturbedDoseProperties=None)
