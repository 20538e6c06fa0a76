"""``case.PatientModel``: ROIs, structure sets, ROI geometries.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- ROI names are unique ignoring case.  ``GetUniqueRoiName(DesiredName=n)`` returns
  ``n`` if free, else the first free of ``"n (1)"``, ``"n (2)"``, ...
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
  their slabs for a contoured ROI, of the CT voxels with coverage > 0 for a voxel shape; ``GetCenterOfRoi()`` = coverage-weighted centroid (cm).
- Approving a structure set locks the ROIs that had a geometry at that moment
  (as in RayStation, new ROIs can still be created and contoured).  Editing,
  renaming or deleting a locked ROI raises
  :class:`~mock_tps._api.InvalidOperationException` ("... is approved ...").
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

from ._api import (ApiObject, ArgumentException, Collection, InvalidOperationException, LazyShared, Shared,
                   _point, api_method)
from ._geometry import (MM_PER_CM, algebra_coverage, coverage_volume_cc, margin_coverage,
                        resample_coverage)
from ._contours import Planes, contour_planes
from ._dicom_voxelize import planes_volume_cc, slab_bounds_mm, voxelize_planes
from ._derived_rois import DerivedRoiMixin, DerivedRoiStatus
from ._phantom_data import GridSpec

__all__ = ["PatientModel", "RegionOfInterest", "StructureSet", "RoiGeometry"]

ROI_TYPES = ("External", "Ptv", "Ctv", "Gtv", "Organ", "Marker", "Bolus", "Support", "Control",
             "Undefined", "Avoidance", "Cavity", "Fixation", "FieldOfView", "IrradiatedVolume",
             "TreatedVolume", "DoseRegion", "ContrastAgent", "Registration", "Dummy", "Isocenter")
ORGAN_TYPES = ("Target", "OrganAtRisk", "Other", "Unknown")
_TARGET_TYPES = ("Ptv", "Ctv", "Gtv")


class OrganData(ApiObject):
    """``roi.OrganData``; ``OrganType`` is settable."""

    _settable = ("OrganType",)

    def __init__(self, organ_type: str) -> None:
        self._init(OrganType=organ_type)

    def _on_set(self, name: str, value: Any) -> Any:
        if value not in ORGAN_TYPES:
            raise ArgumentException(f"OrganType must be one of {ORGAN_TYPES}, got {value!r}")
        return value


class Review(ApiObject):
    """``Review`` of a plan or sub structure set: ``ApprovalStatus`` (read-only).

    Values: 'Unapproved' (default) or 'Approved'.  Use ``mock_tps.approve(obj)``
    in tests (approval is a GUI action in RayStation).
    """

    def __init__(self, status: str = "Unapproved") -> None:
        self._init(ApprovalStatus=status)


class SubStructureSet(ApiObject):
    """``ss.SubStructureSets[i]`` with ``Review.ApprovalStatus``."""

    def __init__(self, name: str, structure_set: "StructureSet") -> None:
        self._init(Name=name, Review=Review())
        self._structure_set = structure_set
        self._approved_rois: frozenset = frozenset()

    def _approve(self, roi_names: Sequence[str]) -> None:
        """Mock-only: approve, locking the geometries of ``roi_names``."""
        object.__setattr__(self.Review, "ApprovalStatus", "Approved")
        self._approved_rois = frozenset(roi_names)


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


class StructureSet(ApiObject):
    """``PatientModel.StructureSets[exam_name]``."""

    def __init__(self, examination: Any) -> None:
        self._init(OnExamination=examination, RoiGeometries=Collection(key="_roi_name"),
                   SubStructureSets=Collection([SubStructureSet("Structure set 1", self)]))

    @property
    def _name(self) -> str:
        return self.OnExamination.Name

    def _is_approved(self, roi_name: str) -> bool:
        return any(s.Review.ApprovalStatus == "Approved" and roi_name in s._approved_rois
                   for s in self.SubStructureSets)

    def _check_editable(self, what: str, roi_name: str) -> None:
        """Refuse an edit of an ROI whose geometry on this examination is approved."""
        if self._is_approved(roi_name):
            raise InvalidOperationException(
                f"ROI '{roi_name}' is approved in the structure set of examination "
                f"'{self.OnExamination.Name}': cannot {what}. Create a new ROI instead.")

    def _geometry(self, roi_name: str) -> RoiGeometry:
        for g in self.RoiGeometries:
            if g.OfRoi.Name == roi_name:
                return g
        raise ArgumentException(f"ROI '{roi_name}' does not exist. Known ROIs: "
                                f"{', '.join(self.RoiGeometries.Keys)}.")


class RegionOfInterest(DerivedRoiMixin, ApiObject):
    """``PatientModel.RegionsOfInterest[name]`` (derived-ROI methods: :mod:`mock_tps._derived_rois`)."""

    _settable = ("Name", "Type", "Color")

    def __init__(self, model: "PatientModel", name: str, color: str, roi_type: str, organ_type: str) -> None:
        self._model = model
        self._mock_user_made = False
        self._init(Name=name, Color=color, Type=roi_type, OrganData=OrganData(organ_type),
                   DerivedRoiExpression=None, ExcludeFromExport=False)

    def _on_set(self, name: str, value: Any) -> Any:
        for ss in self._model.StructureSets:
            ss._check_editable(f"change its {name}", self.Name)
        if name == "Name":
            self._model._check_new_name(value, exclude=self)
        if name == "Type" and value not in ROI_TYPES:
            raise ArgumentException(f"Unknown ROI Type {value!r}; expected one of {ROI_TYPES}")
        return value

    def _geometry_on(self, examination: Any) -> RoiGeometry:
        if examination is None or not hasattr(examination, "_grid"):
            raise ArgumentException(f"Examination must be an examination object, got {examination!r}")
        ss = self._model.StructureSets[examination.Name]
        ss._check_editable("change its geometry", self.Name)
        return ss._geometry(self.Name)

    def _source(self, ss: StructureSet, name: str) -> np.ndarray:
        return ss._geometry(name)._ct_coverage()

    @api_method
    def CreateMarginGeometry(self, Examination: Any, SourceRoiName: str,  # noqa: N802,N803
                             MarginSettings: Mapping[str, Any]) -> None:
        """Set this ROI's geometry to a margin (cm) around another ROI's geometry."""
        target = self._geometry_on(Examination)
        ss = target._structure_set
        src = self._source(ss, SourceRoiName)
        target._set_coverage(margin_coverage(src, ss.OnExamination._grid, MarginSettings))

    @api_method
    def CreateAlgebraGeometry(self, Examination: Any, ExpressionA: Mapping[str, Any],  # noqa: N802,N803
                              Algorithm: str = "Auto", ExpressionB: Optional[Mapping[str, Any]] = None,
                              ResultOperation: str = "None",
                              ResultMarginSettings: Optional[Mapping[str, Any]] = None) -> None:
        """Set this ROI's geometry from ROI algebra (see :func:`mock_tps._geometry.algebra_coverage`)."""
        target = self._geometry_on(Examination)
        ss = target._structure_set

        def expr(e: Optional[Mapping[str, Any]]) -> Any:
            if e is None:
                return None
            names = e.get("SourceRoiNames", [])
            if isinstance(names, str):
                raise ArgumentException("SourceRoiNames must be a list of ROI names, got a str.")
            return ([self._source(ss, n) for n in names], e.get("Operation", "Union"),
                    e.get("MarginSettings"))

        target._set_coverage(algebra_coverage(expr(ExpressionA), expr(ExpressionB), ResultOperation,
                                              ResultMarginSettings, ss.OnExamination._grid))

    @api_method
    def CreateRoiGeometryFromDose(self, DoseDistribution: Any, ThresholdLevel: float) -> None:  # noqa: N802,N803
        """Set this ROI's geometry to the region where the dose ≥ ``ThresholdLevel`` (cGy).

        Raises
        ------
        TypeError, ValueError
            ``ThresholdLevel`` not a finite number (nan, inf, a str).
        ArgumentException
            ``ThresholdLevel`` < 0, or ``DoseDistribution`` not a dose of this patient.
        """
        from ._api import _check_finite_number

        level = _check_finite_number("CreateRoiGeometryFromDose", "ThresholdLevel", ThresholdLevel)
        if level < 0:
            raise ArgumentException(f"ThresholdLevel must be >= 0 cGy, got {ThresholdLevel!r}")
        dose = DoseDistribution
        if not hasattr(dose, "_structure_set") or not hasattr(dose, "_dose_cgy"):
            raise ArgumentException(f"DoseDistribution must be a dose distribution, got {dose!r}")
        ss = dose._structure_set
        target = self._geometry_on(ss.OnExamination)
        inside = (dose._dose_cgy() >= level).astype(np.float64)
        target._set_coverage(resample_coverage(inside, dose._grid, ss.OnExamination._grid))

    @api_method
    def DeleteRoi(self) -> None:  # noqa: N802
        """Delete the ROI and its geometries (refused on an approved structure set)."""
        for ss in self._model.StructureSets:
            ss._check_editable("delete it", self.Name)
        for ss in self._model.StructureSets:
            ss.RoiGeometries._remove(ss._geometry(self.Name))
        self._model.RegionsOfInterest._remove(self)


class PatientModel(ApiObject):
    """``case.PatientModel``."""

    def __init__(self, case: Any) -> None:
        self._case = case
        self._init(RegionsOfInterest=Collection(), StructureSets=Collection(key="_name"))

    def _add_structure_set(self, examination: Any) -> StructureSet:
        ss = StructureSet(examination)
        for roi in self.RegionsOfInterest:
            ss.RoiGeometries._append(RoiGeometry(roi, ss))
        self.StructureSets._append(ss)
        return ss

    def _check_new_name(self, name: Any, exclude: Any = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ArgumentException(f"ROI name must be a non-empty str, got {name!r}")
        for r in self.RegionsOfInterest:
            if r is not exclude and r.Name.lower() == name.lower():
                raise ArgumentException(f"An ROI named '{r.Name}' already exists (names are unique "
                                        "ignoring case); use GetUniqueRoiName.")

    @api_method
    def CreateRoi(self, Name: str, Color: str, Type: str, TissueName: Optional[str] = None,  # noqa: N802,N803
                  RbeCellTypeName: Optional[str] = None, RoiMaterial: Any = None) -> RegionOfInterest:
        """Create an empty ROI (OrganType 'Target' for Ptv/Ctv/Gtv, else 'Other'); returns it."""
        self._check_new_name(Name)
        if Type not in ROI_TYPES:
            raise ArgumentException(f"Unknown ROI Type {Type!r}; expected one of {ROI_TYPES}")
        roi = RegionOfInterest(self, Name, Color, Type, "Target" if Type in _TARGET_TYPES else "Other")
        self.RegionsOfInterest._append(roi)
        for ss in self.StructureSets:
            ss.RoiGeometries._append(RoiGeometry(roi, ss))
        return roi

    @api_method
    def ToggleExcludeFromExport(self, ExcludeFromExport: bool, RegionOfInterests: Sequence[str] = (),  # noqa: N802,N803
                                PointsOfInterests: Sequence[str] = ()) -> None:
        """Set ``ExcludeFromExport`` of the named ROIs (the mock has no POIs: ``PointsOfInterests``
        must be empty)."""
        if isinstance(RegionOfInterests, str):
            raise ArgumentException("RegionOfInterests must be a list of ROI names, got a str.")
        if list(PointsOfInterests):
            raise ArgumentException(f"No POI named {list(PointsOfInterests)[0]!r}: the mock has no POIs.")
        rois = [self.RegionsOfInterest[n] for n in RegionOfInterests]
        for r in rois:
            object.__setattr__(r, "ExcludeFromExport", bool(ExcludeFromExport))

    @api_method
    def GetUniqueRoiName(self, DesiredName: str) -> str:  # noqa: N802,N803
        """``DesiredName`` if no ROI has it (ignoring case), else ``"DesiredName (k)"``, k = 1, 2, ..."""
        taken = {r.Name.lower() for r in self.RegionsOfInterest}
        if DesiredName.lower() not in taken:
            return DesiredName
        k = 1
        while f"{DesiredName} ({k})".lower() in taken:
            k += 1
        return f"{DesiredName} ({k})"
