"""Patient, case, examination (CT image stack) and treatment delivery of the mock.

Image conventions (cm; DICOM patient coordinates)
-------------------------------------------------
- ``ImageStack.Corner`` is the **centre** of the first voxel (DICOM
  ImagePositionPatient), unlike ``InDoseGrid.Corner`` (outer corner of the first
  voxel).  ``SlicePositions`` are the slice-centre offsets from ``Corner.z``, so
  ``Corner.z + SlicePositions`` are the DICOM slice positions (as wrssc's
  ``check_contour_gaps.py`` computes them).
- ``PixelSize`` (x, y) in cm; ``NrPixels`` (x, y).
- ``PixelData`` is a flat uint8 array of 16-bit little-endian stored values,
  x fastest, then y, then slice; HU = stored × ``RescaleSlope`` +
  ``RescaleIntercept`` with slope 1, intercept −1024, ``PixelRepresentation`` 0
  (unsigned); HU are rounded and clipped to [−1024, 64511].
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._api import ApiObject, Collection, ExpandoDictionary, Shared, _point, api_method
from ._geometry import MM_PER_CM
from ._phantom_data import GridSpec
from ._patient_model import PatientModel

__all__ = ["Patient", "Case", "Examination", "TreatmentDelivery"]

_RESCALE_INTERCEPT = -1024.0


class ModificationInfo(ApiObject):
    """``obj.ModificationInfo``: ``SoftwareVersion`` (the running version's application
    version, e.g. '12.0.0.0' in 11B), ``UserName`` and ``ModificationTime`` (a
    ``datetime``, the time the object was made in the mock)."""

    def __init__(self) -> None:
        import datetime

        from ._bridge import _session
        self._init(SoftwareVersion=_session().profile.application_version, UserName="mock",
                   ModificationTime=datetime.datetime.now())


class EquipmentInfo(ApiObject):
    """``exam.EquipmentInfo``: ``Modality`` ('CT') and ``FrameOfReference`` (a UID str)."""

    def __init__(self, modality: str, frame_of_reference: str) -> None:
        self._init(Modality=modality, FrameOfReference=frame_of_reference)


class ConversionParameters(ApiObject):
    """``ImageStack.ConversionParameters``: rescale of stored values to HU."""

    def __init__(self) -> None:
        self._init(RescaleSlope=1.0, RescaleIntercept=_RESCALE_INTERCEPT, PixelRepresentation=0)


class _StoredValues:
    """The stored values of a CT (uint16, ``Shared``), made from its HU on first use: a dose-only
    import (``reirrad dvh``) never reads them.  Shared by snapshots like :class:`Shared` (the HU,
    like every array given to the mock, are never modified in place)."""

    __slots__ = ("_hu", "_shape", "_shared")

    def __init__(self, hu: np.ndarray, shape_zyx: Any) -> None:
        self._hu, self._shape, self._shared = hu, shape_zyx, None

    def get(self) -> Shared:
        if self._shared is None:
            stored = np.clip(np.rint(np.asarray(self._hu, dtype=np.float64) - _RESCALE_INTERCEPT), 0, 65535)
            self._shared, self._hu = Shared(stored.astype("<u2").reshape(self._shape)), None
        return self._shared

    def __deepcopy__(self, memo: Any) -> "_StoredValues":
        return self

    def __copy__(self) -> "_StoredValues":
        return self


class ImageStack(ApiObject):
    """``exam.Series[0].ImageStack`` (see the module docstring for conventions)."""

    def __init__(self, grid: GridSpec, hu: np.ndarray) -> None:
        self._grid = grid
        self._stored_values = _StoredValues(hu, grid.shape_zyx)
        self._init(ConversionParameters=ConversionParameters())

    @property
    def _stored(self) -> Shared:
        """Stored values, (nz, ny, nx) uint16: HU − intercept, rounded, clipped to 0–65535."""
        return self._stored_values.get()

    @property
    def Corner(self) -> Any:  # noqa: N802
        g = self._grid
        return _point(*((c + 0.5 * s) / MM_PER_CM for c, s in zip(g.corner_mm, g.spacing_xyz_mm)))

    @property
    def PixelSize(self) -> Any:  # noqa: N802
        return ExpandoDictionary(x=self._grid.spacing_xyz_mm[0] / MM_PER_CM, y=self._grid.spacing_xyz_mm[1] / MM_PER_CM)

    @property
    def NrPixels(self) -> Any:  # noqa: N802
        nz, ny, nx = self._grid.shape_zyx
        return ExpandoDictionary(x=int(nx), y=int(ny))

    @property
    def SlicePositions(self) -> np.ndarray:  # noqa: N802
        nz = self._grid.shape_zyx[0]
        return np.arange(nz) * self._grid.spacing_xyz_mm[2] / MM_PER_CM

    @property
    def PixelData(self) -> np.ndarray:  # noqa: N802
        return np.frombuffer(self._stored.value.tobytes(), dtype=np.uint8).copy()

    @api_method
    def GetBoundingBox(self) -> list:  # noqa: N802
        """[min outer corner, max outer corner] of the image, cm."""
        g = self._grid
        nz, ny, nx = g.shape_zyx
        hi = [g.corner_mm[k] + n * g.spacing_xyz_mm[k] for k, n in enumerate((nx, ny, nz))]
        return [_point(*(c / MM_PER_CM for c in g.corner_mm)), _point(*(h / MM_PER_CM for h in hi))]


class Series(ApiObject):
    def __init__(self, image_stack: ImageStack) -> None:
        self._init(ImageStack=image_stack)


class Examination(ApiObject):
    """``case.Examinations[name]``."""

    def __init__(self, name: str, grid: GridSpec, hu: np.ndarray, frame_of_reference: str,
                 patient_position: str = "HFS") -> None:
        self._grid = grid
        self._init(Name=name, PatientPosition=patient_position,
                   EquipmentInfo=EquipmentInfo("CT", frame_of_reference),
                   Series=Collection([Series(ImageStack(grid, hu))], key="_none"))


class DoseOnExamination(ApiObject):
    """``FractionEvaluations[i].DoseOnExaminations[exam_name]``."""

    def __init__(self, examination: Examination) -> None:
        self._init(OnExamination=examination, DoseEvaluations=Collection())

    @property
    def _name(self) -> str:
        return self.OnExamination.Name


class FractionEvaluation(ApiObject):
    def __init__(self) -> None:
        self._init(DoseOnExaminations=Collection(key="_name"))


class TreatmentDelivery(ApiObject):
    """``case.TreatmentDelivery`` with ``FractionEvaluations[0]`` (the planned-dose evaluation)."""

    def __init__(self) -> None:
        self._init(FractionEvaluations=Collection([FractionEvaluation()], key="_none"))


class Case(ApiObject):
    """``patient.Cases[name]``."""

    def __init__(self, name: str) -> None:
        self._init(CaseName=name, Examinations=Collection(), TreatmentPlans=Collection(),
                   TreatmentDelivery=TreatmentDelivery(), ModificationInfo=ModificationInfo())
        self._init(PatientModel=PatientModel(self))

    @property
    def _name(self) -> str:
        return self.CaseName

    @api_method
    def SetCurrent(self) -> None:  # noqa: N802
        """Make this case current (its first plan and examination too)."""
        from ._bridge import _session
        s = _session()
        s.case = self
        s.examination = self.Examinations[0] if self.Examinations.Count else None
        s.plan = self.TreatmentPlans[0] if self.TreatmentPlans.Count else None
        s.beam_set = s.plan.BeamSets[0] if s.plan is not None and s.plan.BeamSets.Count else None


    @api_method
    def AddCustomEvaluationDose(self, Name: str, ExaminationName: str, ReferencedBeamSet: Any,  # noqa: N802,N803
                                DoseGridNumberOfVoxels: Any, DoseGridVoxelSize: Any, DoseGridCorner: Any,
                                FractionDoseValues: Any, IsRbeDose: bool = False) -> None:
        """Add a script-made fraction dose (cGy, x fastest) as an evaluation dose (RayStation 2025);
        see :mod:`mock_tps._reference_dose`."""
        from ._reference_dose import add_custom_evaluation_dose
        add_custom_evaluation_dose(self, Name=Name, ExaminationName=ExaminationName,
                                   ReferencedBeamSet=ReferencedBeamSet, DoseGridNumberOfVoxels=DoseGridNumberOfVoxels,
                                   DoseGridVoxelSize=DoseGridVoxelSize, DoseGridCorner=DoseGridCorner,
                                   FractionDoseValues=FractionDoseValues, IsRbeDose=IsRbeDose)

    @api_method
    def CopyPlan(self, PlanName: str, NewPlanName: str, KeepBeamSetNames: bool = True) -> None:  # noqa: N802,N803
        """Copy a plan with its beam sets, beam weights, doses, optimization functions and
        clinical goals, as ``case.CopyPlan`` in RayStation.

        Conventions where the research is silent: the copy is unapproved; beam set
        labels are kept whatever ``KeepBeamSetNames`` says (the mock has one beam set
        per plan); ROIs, examinations and prior doses are shared, not copied; the copy
        is not the user's (``_mock_user_made`` False on everything copied).

        Raises
        ------
        IndexError
            No plan named ``PlanName``.
        ArgumentException
            A plan named ``NewPlanName`` exists already (names compare ignoring case).
        """
        import copy as _copy

        from ._api import ArgumentException
        from ._bridge import _reachable_objects
        from ._patient_model import Review

        source = self.TreatmentPlans[PlanName]
        if not isinstance(NewPlanName, str) or not NewPlanName.strip():
            raise ArgumentException("NewPlanName must be a non-empty string.")
        if NewPlanName.lower() in {p.Name.lower() for p in self.TreatmentPlans}:
            raise ArgumentException(f"A plan named '{NewPlanName}' already exists.")
        roots = [self.PatientModel, self.Examinations, self.TreatmentDelivery] + \
            [p for p in self.TreatmentPlans if p is not source]
        outside = {id(self): self}
        # what the plan refers to but does not own, not walking through the case, the plan or its
        # beam sets (an evaluation dose may refer to a beam set: the copy still gets its own)
        stop = (self, source, *source.BeamSets)
        for root in roots:
            outside.update({id(o): o for o in _reachable_objects(root, stop=stop)})
        memo = dict(outside)
        new = _copy.deepcopy(source, memo)
        object.__setattr__(new, "Name", NewPlanName)
        object.__setattr__(new, "Review", Review())
        for o in _reachable_objects(new):
            if id(o) not in outside and "_mock_user_made" in o.__dict__:
                o.__dict__["_mock_user_made"] = False
        self.TreatmentPlans._append(new)


class Patient(ApiObject):
    """The loaded patient (``get_current('Patient')``)."""

    def __init__(self, name: str, patient_id: str) -> None:
        self._init(Name=name, PatientID=patient_id, Cases=Collection(key="CaseName"),
                   ModificationInfo=ModificationInfo())
        self._mock_save_count = 0

    @api_method
    def Save(self) -> None:  # noqa: N802
        """Persist (mock: counts saves in ``_mock_save_count``)."""
        self._mock_save_count += 1
