"""``StructureSets[exam].RoiGeometries[roi]``: an ROI's shape on one examination.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- ``GetRoiGeometryAsVoxels`` returns a flat uint8 array (x fastest) of
  ``floor(255 × coverage + 0.5)`` (a half-covered voxel reads 128).  The coverage
  of a contoured ROI is computed from its contours on the grid asked for (the
  RTSTRUCT rule of :mod:`mock_tps._dicom_voxelize`); a voxel shape (margin, algebra,
  from dose) is box-resampled from its CT-grid coverage.
- ``PrimaryShape.Contours`` (read-only here): the contours the ROI was voxelized
  from (phantom and imported ROIs, :mod:`mock_tps._contours`); derived ROIs
  (margins, algebra, from dose) are voxel shapes contoured at coverage 0.5 on demand.
- ``GetRoiVolume()``, cm³: the contour stack's volume (Σ plane area × slab thickness)
  for a contoured ROI, Σ coverage × voxel volume on the CT grid for a voxel shape.
- ``GetBoundingBox()`` = [min corner, max corner] (cm): of the contour points and
  their slabs for a contoured ROI, of the CT voxels with coverage > 0 for a voxel shape;
  ``GetCenterOfRoi()`` = coverage-weighted centroid (cm).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Mapping, Optional

import numpy as np

from ._api import ApiObject, InvalidOperationException, LazyShared, Shared, _point, api_method
from ._contours import Planes, contour_planes
from ._derived_rois import DerivedRoiStatus
from ._dicom_voxelize import planes_volume_cc, slab_bounds_mm, voxelize_planes
from ._geometry import MM_PER_CM, coverage_volume_cc, resample_coverage
from ._phantom_data import GridSpec

if TYPE_CHECKING:  # pragma: no cover
    from ._patient_model import RegionOfInterest, StructureSet

__all__ = ["RoiGeometry"]


class RoiGeometry(ApiObject):
    """``StructureSets[exam].RoiGeometries[roi]``: the ROI's shape on one examination."""

    def __init__(self, roi: "RegionOfInterest", structure_set: "StructureSet") -> None:
        self._init(OfRoi=roi)
        self._structure_set = structure_set
        self._coverage: Optional[Shared] = None   # fractional, CT grid
        self._planes: Optional[Shared] = None     # contours the coverage was voxelized from

    @property
    def _roi_name(self) -> str:
        return self.OfRoi.Name

    # -- mock internals -----------------------------------------------------
    def _set_coverage(self, coverage: Optional[np.ndarray]) -> None:
        """Store a voxel shape (a coverage on the CT grid; margins, algebra, from dose).

        Any edit other than ``UpdateDerivedGeometry`` overrides a derived geometry
        (``DerivedRoiStatus`` becomes None, as RayStation's "overridden" state)."""
        self.__dict__.pop("_derived_from", None)
        self._planes = None
        if coverage is None or not np.any(np.asarray(coverage) > 0):
            self._coverage = None
            return
        arr = np.clip(np.asarray(coverage, dtype=np.float32), 0.0, 1.0).reshape(self._grid().shape_zyx)
        self._coverage = Shared(arr)

    def _set_contours(self, planes: Planes, plane_spacing_mm: float, coverage: Optional[np.ndarray] = None) -> None:
        """Store a contour shape: ``planes`` with their nominal plane spacing (mm).

        The CT-grid coverage is ``coverage`` when given (it must be the contours'
        voxelization), else voxelized on first use; on any other grid the coverage is
        voxelized from the contours directly (:func:`mock_tps._dicom_voxelize.voxelize_planes`).
        """
        if not planes:
            self._set_coverage(None)
            return
        self.__dict__.pop("_derived_from", None)
        for _, contours in planes:
            for c in contours:
                c.flags.writeable = False
        planes = tuple(planes)
        spacing = float(plane_spacing_mm)
        grid = self._grid()
        if coverage is not None:
            self._coverage = Shared(np.clip(np.asarray(coverage, dtype=np.float32), 0.0, 1.0).reshape(grid.shape_zyx))
        else:
            self._coverage = LazyShared(lambda: voxelize_planes(planes, grid, nominal_spacing_mm=spacing))
        self._planes = Shared((planes, spacing))

    def _contour_planes(self) -> Planes:
        """The contours of the geometry: stored ones, else contoured from the coverage (cached)."""
        if self._coverage is None:
            return ()
        if self._planes is not None:
            return self._planes.value[0]
        cache = self._coverage.cache
        if "planes" not in cache:
            cache["planes"] = contour_planes(self._coverage.value, self._grid())
        return cache["planes"]

    def _grid(self) -> GridSpec:
        return self._structure_set.OnExamination._grid

    def _ct_coverage(self) -> np.ndarray:
        """CT-grid coverage (zeros when empty)."""
        return np.zeros(self._grid().shape_zyx, np.float32) if self._coverage is None else self._coverage.value

    def _coverage_on(self, grid: GridSpec) -> np.ndarray:
        """Coverage (float64, [0, 1]) on any grid; cached per immutable geometry."""
        if self._coverage is None:
            return np.zeros(grid.shape_zyx)
        cache = self._coverage.cache
        if grid not in cache:
            if self._planes is not None:    # contours: voxelized on the grid asked for
                planes, spacing = self._planes.value
                cov = voxelize_planes(planes, grid, nominal_spacing_mm=spacing).astype(np.float64)
            else:
                cov = resample_coverage(self._coverage.value, self._grid(), grid)
            cov.flags.writeable = False
            cache[grid] = cov
        return cache[grid]

    def _require_contours(self) -> None:
        if self._coverage is None:
            raise InvalidOperationException(
                f"ROI '{self.OfRoi.Name}' has no geometry on examination "
                f"'{self._structure_set.OnExamination.Name}'.")

    # -- public API ----------------------------------------------------------
    @property
    def PrimaryShape(self) -> Any:  # noqa: N802
        """None when the geometry is empty, else the contour shape (``.Contours``,
        ``.DerivedRoiStatus``)."""
        return None if self._coverage is None else _ContourShape(self)

    def _is_dirty(self) -> bool:
        """A derived geometry whose sources changed since it was last updated."""
        made = self.__dict__.get("_derived_from")
        if made is None:
            return False
        ss = self._structure_set
        return any(ss._geometry(n)._coverage is not c for n, c in made)

    @api_method
    def HasContours(self) -> bool:  # noqa: N802
        return self._coverage is not None

    @api_method
    def GetRoiVolume(self) -> float:  # noqa: N802
        """Volume in cm³: of the contour stack (Σ plane area × slab thickness) for a contoured
        ROI, Σ coverage × CT voxel volume for a voxel shape."""
        self._require_contours()
        if self._planes is not None:
            return planes_volume_cc(*self._planes.value)
        return coverage_volume_cc(self._coverage.value, self._grid())

    @api_method
    def GetBoundingBox(self) -> List[Any]:  # noqa: N802
        """[min corner, max corner] expandos (cm): of the contour points and their slabs
        (end caps included) for a contoured ROI, of the CT voxels with coverage > 0 for a
        voxel shape."""
        self._require_contours()
        if self._planes is not None:
            planes, spacing = self._planes.value
            pts = np.concatenate([c for _, cs in planes for c in cs])
            zlo, zhi = slab_bounds_mm(np.array([z for z, _ in planes]), spacing)
            mn = (pts[:, 0].min(), pts[:, 1].min(), zlo.min())
            mx = (pts[:, 0].max(), pts[:, 1].max(), zhi.max())
            return [_point(*(float(v) / MM_PER_CM for v in mn)), _point(*(float(v) / MM_PER_CM for v in mx))]
        g = self._grid()
        idx = np.nonzero(self._coverage.value > 0)
        lo = [int(i.min()) for i in idx]
        hi = [int(i.max()) + 1 for i in idx]
        mn = [(g.corner_mm[k] + lo[2 - k] * g.spacing_xyz_mm[k]) / MM_PER_CM for k in range(3)]
        mx = [(g.corner_mm[k] + hi[2 - k] * g.spacing_xyz_mm[k]) / MM_PER_CM for k in range(3)]
        return [_point(*mn), _point(*mx)]

    @api_method
    def GetCenterOfRoi(self) -> Any:  # noqa: N802
        """Coverage-weighted centroid, cm."""
        self._require_contours()
        cov = self._coverage.value.astype(np.float64)
        x, y, z = self._grid().centres_mm()
        tot = cov.sum()
        cx = float(np.einsum("zyx,x->", cov, x) / tot)
        cy = float(np.einsum("zyx,y->", cov, y) / tot)
        cz = float(np.einsum("zyx,z->", cov, z) / tot)
        return _point(cx / MM_PER_CM, cy / MM_PER_CM, cz / MM_PER_CM)

    @api_method
    def GetRoiGeometryAsVoxels(self, Corner: Mapping[str, float], VoxelSize: Mapping[str, float],  # noqa: N802,N803
                               NrVoxels: Mapping[str, int]) -> np.ndarray:
        """Flat uint8 array (x fastest) of ``floor(255 × coverage + 0.5)`` on the grid asked.

        Parameters
        ----------
        Corner : {'x','y','z'}, cm (outer corner of the first voxel)
        VoxelSize : {'x','y','z'}, cm
        NrVoxels : {'x','y','z'}, int
        """
        grid = GridSpec(corner_mm=tuple(float(Corner[k]) * MM_PER_CM for k in "xyz"),
                        spacing_xyz_mm=tuple(float(VoxelSize[k]) * MM_PER_CM for k in "xyz"),
                        shape_zyx=(int(NrVoxels["z"]), int(NrVoxels["y"]), int(NrVoxels["x"])))
        q = np.multiply(self._coverage_on(grid), 255.0)
        q += 0.5
        q += 1e-9
        return q.astype(np.uint8).ravel()       # floor(255 × coverage + 0.5): truncation of a value >= 0


class _ContourShape(ApiObject):
    """``RoiGeometry.PrimaryShape`` of a contoured ROI (read-only in the mock).

    ``Contours``: one list per closed contour of points ``{x, y, z}`` in cm, planes
    in increasing z (the contours of :mod:`mock_tps._contours`).
    """

    def __init__(self, geometry: RoiGeometry) -> None:
        self._geometry = geometry

    @property
    def DerivedRoiStatus(self) -> Any:  # noqa: N802
        """``.IsShapeDirty`` (sources changed since the last ``UpdateDerivedGeometry``) for a
        geometry made by ``UpdateDerivedGeometry``; None for an underived ROI and for a
        derived ROI whose geometry was overridden by another edit (public scripts:
        "overridden volumes have DerivedRoiStatus = Null")."""
        if self._geometry.OfRoi.DerivedRoiExpression is None or "_derived_from" not in self._geometry.__dict__:
            return None
        return DerivedRoiStatus(self._geometry._is_dirty())

    @property
    def Contours(self) -> List[List[Any]]:  # noqa: N802
        out = []
        for z_mm, contours in self._geometry._contour_planes():
            for c in contours:
                out.append([_point(float(x) / MM_PER_CM, float(y) / MM_PER_CM, z_mm / MM_PER_CM) for x, y in c])
        return out
