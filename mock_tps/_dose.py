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

In-grid volume: only the part of an ROI inside the dose grid has a dose.  Every
statistic is over that part, and ``GetDoseGridRoi(RoiName=).RoiVolumeDistribution``
gives it: ``TotalVolume`` (cm³, Σ coverage × voxel volume on the dose grid),
``VoxelIndices`` (flat indices into ``DoseData``, x fastest) and
``RelativeVolumes`` (each voxel's share, summing to 1).  Absolute-volume goals use
``TotalVolume``, not the contour volume.  An ROI with no voxel in the grid is
refused (:class:`~mock_tps._api.InvalidOperationException`).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ._api import (ApiObject, ArgumentException, Collection, InvalidOperationException, Shared, _point,
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
        return _point(*(s / MM_PER_CM for s in self._grid.spacing_xyz_mm))

    @property
    def NrVoxels(self) -> Any:  # noqa: N802
        nz, ny, nx = self._grid.shape_zyx
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
        arr = np.array(data_cgy, dtype=np.float64).reshape(self._grid.shape_zyx)
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
    def InterpolateDoseInPoint(self, Point: Mapping[str, float],  # noqa: N802,N803
                               PointFrameOfReference: Optional[str] = None) -> float:
        """Dose (cGy) at a point (cm, DICOM patient coordinates), trilinear; nan outside.

        ``PointFrameOfReference`` (2025): None or the planning examination's frame of
        reference UID; any other frame is refused (the mock has one frame).
        """
        from scipy.ndimage import map_coordinates

        if PointFrameOfReference is not None:
            own = self._structure_set.OnExamination.EquipmentInfo.FrameOfReference
            if PointFrameOfReference != own:
                raise ArgumentException(f"PointFrameOfReference {PointFrameOfReference!r} is not the dose's frame "
                                        f"of reference {own!r}.")
        try:
            xyz_cm = [float(Point[k]) for k in ("x", "y", "z")]
        except (KeyError, TypeError, ValueError):
            raise ArgumentException(f"Point must be a dict {{'x','y','z'}} of numbers (cm), got {Point!r}") from None
        if not all(np.isfinite(xyz_cm)):
            raise ArgumentException(f"Point coordinates must be finite, got {Point!r}")
        data = self._dose_cgy()
        g = self._grid
        xyz_mm = [c * MM_PER_CM for c in xyz_cm]
        idx = []
        for k, ax in ((2, 0), (1, 1), (0, 2)):  # z, y, x
            rel = (xyz_mm[k] - g.corner_mm[k]) / g.spacing_xyz_mm[k]
            n = g.shape_zyx[ax]
            if rel < 0 or rel > n:
                return float("nan")
            idx.append(min(max(rel - 0.5, 0.0), n - 1.0))
        return float(map_coordinates(data, np.array(idx)[:, None], order=1, mode="nearest")[0])

    @api_method
    def InterpolateDoseInPoints(self, Points: Sequence[Mapping[str, float]],  # noqa: N802,N803
                                PointsFrameOfReference: Optional[str] = None) -> np.ndarray:
        """Doses (cGy) at points (cm), as ``InterpolateDoseInPoint`` for each."""
        return np.array([self.InterpolateDoseInPoint(Point=p, PointFrameOfReference=PointsFrameOfReference)
                         if PointsFrameOfReference is not None else self.InterpolateDoseInPoint(Point=p)
                         for p in Points], dtype=np.float64)

    @api_method
    def UpdateDoseGridStructures(self) -> None:  # noqa: N802
        """Accepted; the mock always evaluates the current geometries (never stale)."""

    @api_method
    def GetDoseGridRoi(self, RoiName: str) -> "DoseGridRoi":  # noqa: N802,N803
        """The ROI as sampled on this dose's grid (see the module docstring, "In-grid volume")."""
        idx, w = self._roi_weights(RoiName)
        return DoseGridRoi(self._structure_set._geometry(RoiName), self._grid, idx, w)

    def _in_grid_volume_cc(self, roi_name: str) -> float:
        _, w = self._roi_weights(roi_name)
        return float(np.sum(w)) * float(np.prod(self._grid.spacing_xyz_mm)) / 1000.0


class RoiVolumeDistribution(ApiObject):
    """``DoseGridRoi.RoiVolumeDistribution``: the ROI's voxels on a dose grid."""

    def __init__(self, idx: np.ndarray, w: np.ndarray, voxel_cc: float) -> None:
        self._idx = np.asarray(idx, dtype=np.int64)
        self._rel = np.asarray(w, dtype=np.float64) / float(np.sum(w))
        self._init(TotalVolume=float(np.sum(w)) * voxel_cc)

    @property
    def VoxelIndices(self) -> np.ndarray:  # noqa: N802
        """Flat indices into ``DoseData`` (x fastest), int."""
        return self._idx.copy()

    @property
    def RelativeVolumes(self) -> np.ndarray:  # noqa: N802
        """Each voxel's share of ``TotalVolume`` (sums to 1)."""
        return self._rel.copy()


class DoseGridRoi(ApiObject):
    """``dose.GetDoseGridRoi(RoiName=)``: ``OfRoiGeometry``, ``InDoseGrid``, ``RoiVolumeDistribution``."""

    def __init__(self, geometry: Any, grid: GridSpec, idx: np.ndarray, w: np.ndarray) -> None:
        self._init(OfRoiGeometry=geometry, InDoseGrid=DoseGrid(grid),
                   RoiVolumeDistribution=RoiVolumeDistribution(idx, w, float(np.prod(grid.spacing_xyz_mm)) / 1000.0))


class DensityReference(ApiObject):
    """``dose.OnDensity``: ``FromExamination``, the examination the dose is computed on."""

    def __init__(self, examination: Any) -> None:
        self._init(FromExamination=examination)


class FractionDose(_DoseDistribution):
    """``beam_set.FractionDose``: dose of one fraction (cGy), with ``BeamDoses`` and ``OnDensity``."""

    def __init__(self, grid: GridSpec, structure_set: Any, beam_set: Any) -> None:
        super().__init__(grid, structure_set)
        beams = list(beam_set.Beams) if beam_set is not None else []
        self._init(ForBeamSet=beam_set, OnDensity=DensityReference(structure_set.OnExamination))
        self._init(BeamDoses=Collection([BeamDose(grid, structure_set, self, b, i) for i, b in enumerate(beams)],
                                        key="_none"))


class BeamDose(_DoseDistribution):
    """``FractionDose.BeamDoses[i]``: the fraction dose of one beam (cGy), ``ForBeam``.

    Its values are the beam's beamlets of the beam set's weights at the last dose
    computation (None when the fraction dose is None), made when first read.
    """

    def __init__(self, grid: GridSpec, structure_set: Any, fraction_dose: FractionDose, beam: Any,
                 beam_index: int) -> None:
        super().__init__(grid, structure_set)
        self._fraction_dose = fraction_dose
        self._beam_index = beam_index
        self._made_from: Any = None
        self._init(ForBeam=beam, OnDensity=fraction_dose.OnDensity)

    def _refresh(self) -> None:
        fd = self._fraction_dose
        if fd._values is None:
            self._values = None
            self._made_from = None
            return
        if self._made_from is fd._values:
            return
        bs = fd.ForBeamSet
        w = getattr(bs, "_mock_dose_weights", None)
        if w is None:   # an imported dose: no per-beam dose
            self._values = None
            return
        cols = bs._beam_columns(self._beam_index)
        gy = np.asarray(bs._influence.value[:, cols] @ w[cols]).ravel() if cols.size else np.zeros(self._grid.n_voxels)
        self._set_dose_cgy(gy_to_cgy(gy))
        self._made_from = fd._values

    @property
    def DoseValues(self) -> Optional[DoseValues]:  # noqa: N802
        self._refresh()
        return self._values

    def _dose_cgy(self) -> np.ndarray:
        self._refresh()
        return super()._dose_cgy()


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
                   ByStructureRegistration=None, PerturbedDoseProperties=None,
                   OnDensity=DensityReference(structure_set.OnExamination))
