"""Clinical goals: ``plan.TreatmentCourse.EvaluationSetup``.

Units (as RayStation): doses cGy, relative volumes fractions (0–1), absolute
volumes cm³.  Goals are evaluated on the plan's ``TreatmentCourse.TotalDose``.
"ROI volume" below is the ROI's volume inside the dose grid (``GetDoseGridRoi(
RoiName=).RoiVolumeDistribution.TotalVolume``): only that part has a dose.

========================  =================  ==================  ==========================
GoalType                  ParameterValue     value / acceptance   computed as
========================  =================  ==================  ==========================
DoseAtVolume              fraction           cGy                  D(v)
VolumeAtDose              cGy                fraction             V(D)
AbsoluteVolumeAtDose      cGy                cm³                  V(D) × in-grid volume
DoseAtAbsoluteVolume      cm³                cGy                  D(min(1, v / in-grid vol.))
AverageDose               (ignored)          cGy                  mean
HomogeneityIndex          fraction v         ratio                D(v) / D(1 − v)
ConformityIndex           cGy                ratio                V_ROI(≥D) / V_grid(≥D)
========================  =================  ==================  ==========================

HomogeneityIndex follows public scripts (v = 0.98, AtLeast 0.95: D98/D2).
ConformityIndex is the ROI's volume receiving ≥ D over the whole dose grid's
volume receiving ≥ D (an inference: RayStation's formula is not public); 0 when
no voxel receives D.

The acceptance level is ``PlanningGoal.AcceptanceLevel`` up to 2023B and
``PrimaryAcceptanceLevel`` (with ``SecondaryAcceptanceLevel``) from 2024A, and
``AddClinicalGoal`` takes the same spelling (see ``mock_tps/API_VERSIONS.md``).
``EvaluateClinicalGoal()`` is ``value >= level`` for 'AtLeast', ``value <= level``
for 'AtMost'.  Without a computed dose both
``GetClinicalGoalValue`` and ``EvaluateClinicalGoal`` raise
:class:`~mock_tps._api.InvalidOperationException`.  Two goals are identical when
ROI, criteria, type, acceptance levels and parameter value are equal.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._api import (ApiObject, ArgumentException, Collection, InvalidOperationException, api_method,
                   versioned_property)

__all__ = ["EvaluationSetup", "EvaluationFunction"]

GOAL_TYPES = ("DoseAtVolume", "VolumeAtDose", "AbsoluteVolumeAtDose", "DoseAtAbsoluteVolume", "AverageDose",
              "HomogeneityIndex", "ConformityIndex")
GOAL_CRITERIA = ("AtLeast", "AtMost")


class PlanningGoal(ApiObject):
    def __init__(self, goal_type: str, criteria: str, primary: float, secondary: Optional[float],
                 parameter: Optional[float], priority: int, comparative: bool) -> None:
        self._primary = primary
        self._secondary = secondary
        self._init(Type=goal_type, GoalCriteria=criteria, ParameterValue=parameter, Priority=priority,
                   IsComparativeGoal=comparative)

    @versioned_property
    def PrimaryAcceptanceLevel(self) -> float:  # noqa: N802
        """2024A and later."""
        return self._primary

    @versioned_property
    def SecondaryAcceptanceLevel(self) -> Optional[float]:  # noqa: N802
        """2024A and later."""
        return self._secondary

    @versioned_property
    def AcceptanceLevel(self) -> float:  # noqa: N802
        """Up to 2023B."""
        return self._primary

    def _key(self) -> tuple:
        return (self.Type, self.GoalCriteria, self._primary, self._secondary, self.ParameterValue)


class EvaluationFunction(ApiObject):
    """One clinical goal of ``EvaluationSetup.EvaluationFunctions``."""

    def __init__(self, setup: "EvaluationSetup", roi: Any, goal: PlanningGoal) -> None:
        self._setup = setup
        self._init(ForRegionOfInterest=roi, PlanningGoal=goal)

    @api_method
    def GetClinicalGoalValue(self) -> float:  # noqa: N802
        """The goal's value on the plan's total dose (unit per GoalType, see module)."""
        dose = self._setup._plan.TreatmentCourse.TotalDose
        if dose.DoseValues is None:
            raise InvalidOperationException("No dose has been computed: cannot evaluate the clinical goal.")
        g = self.PlanningGoal
        roi = self.ForRegionOfInterest.Name
        if g.Type == "AverageDose":
            return dose.GetDoseStatistic(RoiName=roi, DoseType="Average")
        if g.Type == "DoseAtVolume":
            return float(dose.GetDoseAtRelativeVolumes(RoiName=roi, RelativeVolumes=[g.ParameterValue])[0])
        if g.Type == "VolumeAtDose":
            return float(dose.GetRelativeVolumeAtDoseValues(RoiName=roi, DoseValues=[g.ParameterValue])[0])
        if g.Type == "HomogeneityIndex":
            v = float(g.ParameterValue)
            lo, hi = dose.GetDoseAtRelativeVolumes(RoiName=roi, RelativeVolumes=[v, 1.0 - v])
            return float(lo / hi) if hi > 0 else 0.0
        if g.Type == "ConformityIndex":
            level = float(g.ParameterValue)
            idx, w = dose._roi_weights(roi)
            data = dose._dose_cgy().ravel()
            in_roi = float(np.sum(w[data[idx] >= level]))
            in_grid = float(np.count_nonzero(data >= level))
            return in_roi / in_grid if in_grid > 0 else 0.0
        volume_cc = dose._in_grid_volume_cc(roi)
        if g.Type == "AbsoluteVolumeAtDose":
            rel = dose.GetRelativeVolumeAtDoseValues(RoiName=roi, DoseValues=[g.ParameterValue])[0]
            return float(rel * volume_cc)
        rel = min(1.0, float(g.ParameterValue) / volume_cc)  # DoseAtAbsoluteVolume
        return float(dose.GetDoseAtRelativeVolumes(RoiName=roi, RelativeVolumes=[rel])[0])

    @api_method
    def EvaluateClinicalGoal(self) -> bool:  # noqa: N802
        v = self.GetClinicalGoalValue()
        g = self.PlanningGoal
        return bool(v >= g._primary if g.GoalCriteria == "AtLeast" else v <= g._primary)

    def _snapshot(self) -> dict:
        return {"roi": self.ForRegionOfInterest.Name, "goal": self.PlanningGoal._key(),
                "priority": self.PlanningGoal.Priority}


class EvaluationSetup(ApiObject):
    """``plan.TreatmentCourse.EvaluationSetup``."""

    def __init__(self, plan: Any) -> None:
        self._plan = plan
        self._init(EvaluationFunctions=Collection(key="_none"))

    @api_method
    def AddClinicalGoal(self, RoiName: str, GoalCriteria: str, GoalType: str,  # noqa: N802,N803
                        PrimaryAcceptanceLevel: Optional[float] = None,
                        SecondaryAcceptanceLevel: Optional[float] = None,
                        AcceptanceLevel: Optional[float] = None,
                        ParameterValue: Optional[float] = None, IsComparativeGoal: bool = False,
                        Priority: int = 2147483647, AssociateToPlan: bool = True,
                        BeamSet: Any = None) -> EvaluationFunction:
        """Add a clinical goal; returns the evaluation function.

        The acceptance level is ``AcceptanceLevel`` up to 2023B, ``PrimaryAcceptanceLevel``
        from 2024A (the version profile refuses the other spelling); it is required.
        ``BeamSet`` (a beam set of the plan or None) and ``AssociateToPlan`` are stored
        nowhere: the mock evaluates every goal on the plan's total dose.
        """
        self._plan._check_editable("add a clinical goal")
        if PrimaryAcceptanceLevel is None:
            PrimaryAcceptanceLevel = AcceptanceLevel
        if PrimaryAcceptanceLevel is None:
            raise ArgumentException("AddClinicalGoal needs an acceptance level "
                                    "(AcceptanceLevel up to 2023B, PrimaryAcceptanceLevel from 2024A).")
        rois = self._plan._case.PatientModel.RegionsOfInterest
        if RoiName not in rois.Keys:
            raise ArgumentException(f"ROI '{RoiName}' does not exist. Known ROIs: {', '.join(rois.Keys)}.")
        if GoalCriteria not in GOAL_CRITERIA:
            raise ArgumentException(f"GoalCriteria must be 'AtLeast' or 'AtMost', got {GoalCriteria!r}")
        if GoalType not in GOAL_TYPES:
            raise ArgumentException(f"Unknown or unsupported GoalType '{GoalType}'; the mock supports "
                                    f"{', '.join(GOAL_TYPES)}.")
        if GoalType != "AverageDose" and ParameterValue is None:
            raise ArgumentException(f"GoalType '{GoalType}' needs a ParameterValue.")
        if GoalType in ("DoseAtVolume", "HomogeneityIndex") and not 0 <= float(ParameterValue) <= 1:
            raise ArgumentException(f"{GoalType} ParameterValue is a fraction 0–1, got {ParameterValue!r}")
        if ParameterValue is not None and not np.isfinite(float(ParameterValue)):
            raise ArgumentException(f"ParameterValue must be finite, got {ParameterValue!r}")
        if not np.isfinite(float(PrimaryAcceptanceLevel)):
            raise ArgumentException(f"The acceptance level must be finite, got {PrimaryAcceptanceLevel!r}")
        if GoalType == "VolumeAtDose" and not 0 <= float(PrimaryAcceptanceLevel) <= 1:
            raise ArgumentException("VolumeAtDose PrimaryAcceptanceLevel is a fraction 0–1, "
                                    f"got {PrimaryAcceptanceLevel!r}")
        goal = PlanningGoal(GoalType, GoalCriteria, float(PrimaryAcceptanceLevel),
                            None if SecondaryAcceptanceLevel is None else float(SecondaryAcceptanceLevel),
                            None if ParameterValue is None else float(ParameterValue), int(Priority),
                            bool(IsComparativeGoal))
        for e in self.EvaluationFunctions:
            if e.ForRegionOfInterest.Name == RoiName and e.PlanningGoal._key() == goal._key():
                raise InvalidOperationException("An identical clinical goal already exists.")
        f = EvaluationFunction(self, rois[RoiName], goal)
        self.EvaluationFunctions._append(f)
        return f

    @api_method
    def DeleteClinicalGoal(self, FunctionToRemove: EvaluationFunction) -> None:  # noqa: N802,N803
        self._plan._check_editable("delete a clinical goal")
        if FunctionToRemove not in self.EvaluationFunctions:
            raise ArgumentException("FunctionToRemove is not a clinical goal of this plan.")
        self.EvaluationFunctions._remove(FunctionToRemove)
