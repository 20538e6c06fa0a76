"""``case.PatientModel``: ROIs and structure sets (ROI geometries: :mod:`mock_tps._roi_geometry`).

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- ROI names are unique ignoring case.  ``GetUniqueRoiName(DesiredName=n)`` returns
  ``n`` if free, else the first free of ``"n (1)"``, ``"n (2)"``, ...
- Approving a structure set locks the ROIs that had a geometry at that moment
  (as in RayStation, new ROIs can still be created and contoured).  Editing,
  renaming or deleting a locked ROI raises
  :class:`~mock_tps._api.InvalidOperationException` ("... is approved ...").
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ._api import ApiObject, ArgumentException, Collection, InvalidOperationException, api_method
from ._geometry import algebra_coverage, margin_coverage, resample_coverage
from ._derived_rois import DerivedRoiMixin
from ._roi_geometry import RoiGeometry

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
