"""Treatment plans, beam sets, beams, prescriptions and dose computation of the mock.

Dose model: a beam set holds beamlet weights ``w`` and the phantom's influence
matrix ``A`` (Gy per fraction per unit weight).  ``ComputeDose`` sets
``FractionDose = A @ w`` (converted to cGy) and the plan's
``TreatmentCourse.TotalDose = Σ_beam sets FractionDose × NumberOfFractions``.
``FractionDose.BeamDoses[b]`` is the same sum over the beamlets of beam ``b``.

Monitor units (mock model, not a machine calibration): a beam's MU per fraction is
the MU its total fluence would need as an open field calibrated to 1 cGy per MU at
the open field's dose maximum: ``Beam.BeamMU = mean_j(w_j) · max_i Σ_j A_ij · 100``
over the beam's N beamlets j (A in Gy per unit weight).  With uniform weights the
MU equal the beam's maximum dose in cGy.  Setting ``BeamMU`` scales that beam's
beamlet weights by new/old MU and recomputes the dose.

Prescriptions: ``Prescription.PrimaryPrescriptionDoseReference`` (11A and later;
``PrimaryDosePrescription`` before) with ``DoseValue`` (total dose, cGy),
``OnStructure``, ``PrescriptionType`` and ``DoseVolume`` (%).
``ScaleToPrimaryPrescriptionDoseReference`` (``NormalizeToPrescription`` before
11A) scales every beamlet weight so that the prescription holds exactly on the
fraction dose × fractions: DoseAtVolume → D(DoseVolume %) = DoseValue,
AverageDose → mean = DoseValue, MedianDose → D50 = DoseValue.

An approved plan (``plan.Review.ApprovalStatus == 'Approved'``) refuses every
edit (functions, parameters, optimization, dose computation, goals) with
:class:`~mock_tps._api.InvalidOperationException` whose message says the plan is
approved.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._api import (ApiObject, ArgumentException, Collection, InvalidOperationException, Shared,
                   _check_finite_number, _point, api_method, versioned_property)
from ._dose import FractionDose, TotalDose, _dose_at_relative_volumes, gy_to_cgy
from ._geometry import MM_PER_CM
from ._patient_model import Review
from ._phantom_data import BeamSpec, GridSpec

__all__ = ["TreatmentPlan", "BeamSet", "Beam"]


class Isocenter(ApiObject):
    def __init__(self, position_mm: Sequence[float]) -> None:
        self._position_cm = tuple(float(p) / MM_PER_CM for p in position_mm)

    @property
    def Position(self) -> Any:  # noqa: N802
        """Isocenter position, cm (fresh expando)."""
        return _point(*self._position_cm)


class Beam(ApiObject):
    """``beam_set.Beams[name]``: static photon beam (angles in degrees); ``BeamMU`` settable."""

    _settable = ("BeamMU",)

    def __init__(self, spec: BeamSpec, number: int, beam_set: Any = None) -> None:
        self._beam_set = beam_set
        self._init(Name=spec.name, Number=number, GantryAngle=float(spec.gantry_deg),
                   CouchRotationAngle=float(spec.couch_deg),
                   InitialCollimatorAngle=float(spec.collimator_deg),
                   Isocenter=Isocenter(spec.isocenter_mm))

    @property
    def BeamMU(self) -> float:  # noqa: N802
        """Monitor units per fraction (mock model, see the module docstring)."""
        return self._beam_set._beam_mu(self.Number - 1)

    def _on_set(self, name: str, value: Any) -> Any:
        mu = _check_finite_number("Beam", name, value)
        if mu < 0:
            raise ArgumentException(f"BeamMU must be >= 0, got {value!r}")
        self._beam_set._set_beam_mu(self.Number - 1, mu)
        return mu

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "BeamMU":
            self._on_set(name, value)
            return
        super().__setattr__(name, value)


class MachineReference(ApiObject):
    """``beam_set.MachineReference.MachineName``."""

    def __init__(self, name: str) -> None:
        self._init(MachineName=name)


class PatientSetup(ApiObject):
    """``beam_set.PatientSetup``: no setup beams in the phantoms."""

    def __init__(self) -> None:
        self._init(UseSetupBeams=False, SetupBeams=Collection())


class FractionationPattern(ApiObject):
    def __init__(self, fractions: int) -> None:
        self._init(NumberOfFractions=int(fractions))


PRESCRIPTION_TYPES = ("DoseAtVolume", "AverageDose", "MedianDose")


class PrescriptionDoseReference(ApiObject):
    """The primary prescription: ``DoseValue`` is the total dose, cGy; ``DoseVolume`` in %."""

    def __init__(self, dose_cgy: float, roi: Any, prescription_type: str, dose_volume: float) -> None:
        self._init(DoseValue=float(dose_cgy), OnStructure=roi, PrescriptionType=prescription_type,
                   DoseVolume=float(dose_volume))


class Prescription(ApiObject):
    """``beam_set.Prescription``: the primary reference under its version's name."""

    def __init__(self, primary: Optional[PrescriptionDoseReference]) -> None:
        self._primary = primary
        self._init(PrescriptionDoseReferences=Collection([] if primary is None else [primary], key="_none"))

    @versioned_property
    def PrimaryPrescriptionDoseReference(self) -> Optional[PrescriptionDoseReference]:  # noqa: N802
        """11A and later."""
        return self._primary

    @versioned_property
    def PrimaryDosePrescription(self) -> Optional[PrescriptionDoseReference]:  # noqa: N802
        """Before 11A."""
        return self._primary


class BeamSet(ApiObject):
    """``plan.BeamSets[label]``: indexed by ``DicomPlanLabel`` (there is no ``Name``)."""

    def __init__(self, plan: "TreatmentPlan", name: str, fractions: int, beams: Sequence[BeamSpec],
                 influence_gy: Any, beamlet_beam_index: np.ndarray, dose_grid: GridSpec,
                 structure_set: Any, examination: Any) -> None:
        self._plan = plan
        self._influence = Shared(influence_gy)
        self._beamlet_beam_index = np.asarray(beamlet_beam_index)
        self._examination = examination
        self._structure_set = structure_set
        n = influence_gy.shape[1]
        self._initial_weights = np.ones(n)
        self._weights = np.ones(n)
        from ._databases import MACHINE_NAME
        from ._patient import ModificationInfo
        self._init(DicomPlanLabel=name, Modality="Photons",
                   FractionationPattern=FractionationPattern(fractions),
                   Prescription=Prescription(None),
                   Beams=Collection([Beam(b, i + 1, self) for i, b in enumerate(beams)]),
                   MachineReference=MachineReference(MACHINE_NAME), PatientSetup=PatientSetup(),
                   ModificationInfo=ModificationInfo(),
                   FrameOfReference=examination.EquipmentInfo.FrameOfReference)
        self._init(FractionDose=FractionDose(dose_grid, structure_set, self))

    # -- public API -------------------------------------------------------------
    @api_method
    def GetPlanningExamination(self) -> Any:  # noqa: N802
        return self._examination

    @api_method
    def GetStructureSet(self) -> Any:  # noqa: N802
        return self._structure_set

    @api_method
    def GetDoseGrid(self) -> Any:  # noqa: N802
        return self.FractionDose.InDoseGrid

    @api_method
    def SetCurrent(self) -> None:  # noqa: N802
        from ._bridge import _session
        s = _session()
        s.plan = self._plan
        s.beam_set = self

    @api_method
    def ComputeDose(self, ComputeBeamDoses: bool = True, DoseAlgorithm: str = "CCDose",  # noqa: N802,N803
                    ForceRecompute: bool = False, RunEntryValidation: bool = True) -> None:
        """FractionDose = influence @ weights (cGy); updates the plan's TotalDose.

        From 2024B only ``RunEntryValidation`` is an argument.
        """
        self._plan._check_editable("compute dose")
        self._compute_dose()

    @api_method
    def AddRoiPrescriptionDoseReference(self, RoiName: str, DoseVolume: float = 0.0,  # noqa: N802,N803
                                        PrescriptionType: str = "DoseAtVolume", Description: str = "",
                                        DoseValue: float = 0.0, RelativePrescriptionLevel: float = 1.0) -> None:
        """Set the primary prescription (11A and later; replaces the present one)."""
        self._set_prescription(RoiName, DoseVolume, PrescriptionType, DoseValue)

    @api_method
    def AddDosePrescriptionToRoi(self, RoiName: str, DoseVolume: float = 0.0,  # noqa: N802,N803
                                 PrescriptionType: str = "DoseAtVolume", DoseValue: float = 0.0,
                                 RelativePrescriptionLevel: float = 1.0, AutoScaleDose: bool = False) -> None:
        """Set the primary prescription (before 11A)."""
        self._set_prescription(RoiName, DoseVolume, PrescriptionType, DoseValue)
        if AutoScaleDose and self.FractionDose._values is not None:
            self._scale_to_prescription()

    @api_method
    def ScaleToPrimaryPrescriptionDoseReference(self, LockedBeamNames: Optional[Sequence[str]] = None,  # noqa: N802,N803
                                                EvaluateOptimizationFunctionsAfterScaling: bool = True) -> None:
        """Scale every beamlet weight so the primary prescription holds exactly (11A and later)."""
        self._scale_to_prescription(LockedBeamNames)

    @api_method
    def NormalizeToPrescription(self, RoiName: str, DoseValue: float, DoseVolume: float = 0.0,  # noqa: N802,N803
                                PrescriptionType: str = "DoseAtVolume",
                                LockedBeamNames: Optional[Sequence[str]] = None,
                                EvaluateOptimizationFunctionsAfterScaling: bool = True) -> None:
        """Scale every beamlet weight so the given dose reference holds (before 11A)."""
        ref = self._make_reference(RoiName, DoseVolume, PrescriptionType, DoseValue)
        self._scale_to_prescription(LockedBeamNames, ref)

    # -- mock internals ---------------------------------------------------------
    def _make_reference(self, roi_name: str, dose_volume: float, prescription_type: str,
                        dose_value: float) -> PrescriptionDoseReference:
        rois = self._plan._case.PatientModel.RegionsOfInterest
        if roi_name not in rois.Keys:
            raise ArgumentException(f"ROI '{roi_name}' does not exist. Known ROIs: {', '.join(rois.Keys)}.")
        if prescription_type not in PRESCRIPTION_TYPES:
            raise ArgumentException(f"PrescriptionType '{prescription_type}' is not modelled; the mock supports "
                                    f"{', '.join(PRESCRIPTION_TYPES)}.")
        dv = _check_finite_number("Prescription", "DoseValue", dose_value)
        vol = _check_finite_number("Prescription", "DoseVolume", dose_volume)
        if dv <= 0:
            raise ArgumentException(f"DoseValue must be > 0 cGy, got {dose_value!r}")
        if prescription_type == "DoseAtVolume" and not 0 < vol <= 100:
            raise ArgumentException(f"DoseVolume of a DoseAtVolume prescription is in (0, 100] %, got {dose_volume!r}")
        return PrescriptionDoseReference(dv, rois[roi_name], prescription_type, vol)

    def _set_prescription(self, roi_name: str, dose_volume: float, prescription_type: str,
                          dose_value: float) -> None:
        self._plan._check_editable("change the prescription")
        ref = self._make_reference(roi_name, dose_volume, prescription_type, dose_value)
        object.__setattr__(self, "Prescription", Prescription(ref))

    def _scale_to_prescription(self, locked: Optional[Sequence[str]] = None,
                               ref: Optional[PrescriptionDoseReference] = None) -> None:
        """Scale the (unlocked) beamlet weights so that ``ref`` (default the primary) holds."""
        self._plan._check_editable("scale the dose")
        ref = ref if ref is not None else self.Prescription._primary
        if ref is None:
            raise InvalidOperationException(f"Beam set '{self.DicomPlanLabel}' has no primary prescription.")
        if locked:
            raise ArgumentException("LockedBeamNames: the mock scales all beams; pass None or [].")
        fx = self.FractionationPattern.NumberOfFractions
        total = self.FractionDose._dose_cgy() * fx if self.FractionDose._values is not None else None
        if total is None:
            raise InvalidOperationException("No dose has been computed: cannot scale to the prescription.")
        idx, w = self.FractionDose._roi_weights(ref.OnStructure.Name)
        d = total.ravel()[idx]
        if ref.PrescriptionType == "AverageDose":
            achieved = float(np.sum(w * d) / np.sum(w))
        else:
            vol = 0.5 if ref.PrescriptionType == "MedianDose" else ref.DoseVolume / 100.0
            achieved = float(_dose_at_relative_volumes(d, w, np.array([vol]))[0])
        if achieved <= 0:
            raise InvalidOperationException(f"ROI '{ref.OnStructure.Name}' receives no dose: cannot scale.")
        self._weights = self._weights * (ref.DoseValue / achieved)
        self._compute_dose()

    def _beam_columns(self, beam_index: int) -> np.ndarray:
        return np.flatnonzero(self._beamlet_beam_index == beam_index)

    def _beam_mu(self, beam_index: int) -> float:
        cols = self._beam_columns(beam_index)
        if cols.size == 0:
            return 0.0
        key = ("open_field_max_gy", beam_index)
        cache = self._influence.cache
        if key not in cache:
            cache[key] = float(np.max(np.asarray(self._influence.value[:, cols].sum(axis=1)).ravel()))
        return float(gy_to_cgy(np.mean(self._weights[cols]) * cache[key]))

    def _set_beam_mu(self, beam_index: int, mu: float) -> None:
        self._plan._check_editable("change BeamMU")
        old = self._beam_mu(beam_index)
        if old <= 0:
            raise InvalidOperationException("The beam has no monitor units to scale (all weights zero).")
        cols = self._beam_columns(beam_index)
        w = self._weights.copy()
        w[cols] *= mu / old
        self._weights = w
        self._compute_dose()

    def _fraction_dose_gy(self, weights: Optional[np.ndarray] = None) -> np.ndarray:
        w = self._weights if weights is None else weights
        return np.asarray(self._influence.value @ w).ravel()

    def _compute_dose(self) -> None:
        from ._bridge import _session
        self._mock_dose_weights = np.array(self._weights, dtype=np.float64)
        self.FractionDose._set_dose_cgy(gy_to_cgy(self._fraction_dose_gy()))
        self._plan._update_total_dose()
        _session().count("dose_computations")

    def _clear_dose(self) -> None:
        self.FractionDose._set_dose_cgy(None)
        self._plan._update_total_dose()


class TreatmentCourse(ApiObject):
    def __init__(self, total_dose: TotalDose, evaluation_setup: Any) -> None:
        self._init(TotalDose=total_dose, EvaluationSetup=evaluation_setup)


class TreatmentPlan(ApiObject):
    """``case.TreatmentPlans[name]``."""

    def __init__(self, case: Any, name: str, dose_grid: GridSpec, structure_set: Any) -> None:
        from ._evaluation import EvaluationSetup
        self._case = case
        from ._patient import ModificationInfo
        self._init(Name=name, BeamSets=Collection(key="DicomPlanLabel"), PlanOptimizations=Collection(key="_none"),
                   Review=Review(), Comments="", ModificationInfo=ModificationInfo())
        self._init(TreatmentCourse=TreatmentCourse(TotalDose(dose_grid, structure_set),
                                                   EvaluationSetup(self)))

    def _check_editable(self, what: str) -> None:
        if self.Review.ApprovalStatus == "Approved":
            raise InvalidOperationException(
                f"Plan '{self.Name}' is approved: cannot {what}. Copy the plan to make changes.")

    def _approve(self) -> None:
        object.__setattr__(self.Review, "ApprovalStatus", "Approved")

    def _update_total_dose(self) -> None:
        total = None
        for bs in self.BeamSets:
            if bs.FractionDose._values is None:
                self.TreatmentCourse.TotalDose._set_dose_cgy(None)
                return
            d = bs.FractionDose._values._data.value * bs.FractionationPattern.NumberOfFractions
            total = d if total is None else total + d
        self.TreatmentCourse.TotalDose._set_dose_cgy(total)

    @api_method
    def SetCurrent(self) -> None:  # noqa: N802
        from ._bridge import _session
        s = _session()
        s.case = self._case
        s.plan = self
        s.beam_set = self.BeamSets[0] if self.BeamSets.Count else None

    @api_method
    def GetTotalDoseGrid(self) -> Any:  # noqa: N802
        return self.TreatmentCourse.TotalDose.InDoseGrid
