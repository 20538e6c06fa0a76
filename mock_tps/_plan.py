"""Treatment plans, beam sets, beams, prescriptions and dose computation of the mock.

Dose model: a beam set holds beamlet weights ``w`` and the phantom's influence
matrix ``A`` (Gy per fraction per unit weight).  ``ComputeDose`` sets
``FractionDose = A @ w`` (converted to cGy) and the plan's
``TreatmentCourse.TotalDose = Σ_beam sets FractionDose × NumberOfFractions``.

An approved plan (``plan.Review.ApprovalStatus == 'Approved'``) refuses every
edit (functions, parameters, optimization, dose computation, goals) with
:class:`~mock_tps._api.InvalidOperationException` whose message says the plan is
approved.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._api import ApiObject, Collection, InvalidOperationException, Shared, _point, api_method
from ._dose import FractionDose, TotalDose, gy_to_cgy
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
    """``beam_set.Beams[name]``: static photon beam (angles in degrees)."""

    def __init__(self, spec: BeamSpec, number: int) -> None:
        self._init(Name=spec.name, Number=number, GantryAngle=float(spec.gantry_deg),
                   CouchRotationAngle=float(spec.couch_deg),
                   InitialCollimatorAngle=float(spec.collimator_deg),
                   Isocenter=Isocenter(spec.isocenter_mm))


class FractionationPattern(ApiObject):
    def __init__(self, fractions: int) -> None:
        self._init(NumberOfFractions=int(fractions))


class PrescriptionDoseReference(ApiObject):
    """``PrimaryPrescriptionDoseReference``: ``DoseValue`` is the total dose, cGy."""

    def __init__(self, dose_cgy: float, roi: Any, prescription_type: str, dose_volume: float) -> None:
        self._init(DoseValue=float(dose_cgy), OnStructure=roi, PrescriptionType=prescription_type,
                   DoseVolume=float(dose_volume))


class Prescription(ApiObject):
    def __init__(self, primary: Optional[PrescriptionDoseReference]) -> None:
        self._init(PrimaryPrescriptionDoseReference=primary,
                   PrescriptionDoseReferences=Collection([] if primary is None else [primary], key="_none"))


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
        self._init(DicomPlanLabel=name, Modality="Photons",
                   FractionationPattern=FractionationPattern(fractions),
                   Prescription=Prescription(None),
                   Beams=Collection([Beam(b, i + 1) for i, b in enumerate(beams)]))
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
        """FractionDose = influence @ weights (cGy); updates the plan's TotalDose."""
        self._plan._check_editable("compute dose")
        self._compute_dose()

    # -- mock internals ---------------------------------------------------------
    def _fraction_dose_gy(self, weights: Optional[np.ndarray] = None) -> np.ndarray:
        w = self._weights if weights is None else weights
        return np.asarray(self._influence.value @ w).ravel()

    def _compute_dose(self) -> None:
        from ._bridge import _session
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
        self._init(Name=name, BeamSets=Collection(key="DicomPlanLabel"), PlanOptimizations=Collection(key="_none"),
                   Review=Review(), Comments="")
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
