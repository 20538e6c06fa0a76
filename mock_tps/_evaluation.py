"""Clinical goals: ``plan.TreatmentCourse.EvaluationSetup``.

Units (as RayStation): doses cGy, relative volumes fractions (0–1), absolute
volumes cm³.  Goals are evaluated on the plan's ``TreatmentCourse.TotalDose``.

========================  =================  ==================  =====================
GoalType                  ParameterValue     value / acceptance   DVH call
========================  =================  ==================  =====================
DoseAtVolume              fraction           cGy                  D(v)
VolumeAtDose              cGy                fraction             V(D)
AbsoluteVolumeAtDose      cGy                cm³                  V(D) × ROI volume
DoseAtAbsoluteVolume      cm³                cGy                  D(v / ROI volume)
AverageDose               (ignored)          cGy                  mean
========================  =================  ==================  =====================

``EvaluateClinicalGoal()`` is ``value >= PrimaryAcceptanceLevel`` for 'AtLeast',
``value <= PrimaryAcceptanceLevel`` for 'AtMost'.  Without a computed dose both
``GetClinicalGoalValue`` and ``EvaluateClinicalGoal`` raise
:class:`~mock_tps._api.InvalidOperationException`.  Two goals are identical when
ROI, criteria, type, acceptance levels and parameter value are equal.
"""
from __future__ import annotations

from typing import Any, Optional

from ._api import ApiObject, ArgumentException, Collection, InvalidOperationException, api_method

__all__ = ["EvaluationSetup", "EvaluationFunction"]

GOAL_TYPES = ("DoseAtVolume", "VolumeAtDose", "AbsoluteVolumeAtDose", "DoseAtAbsoluteVolume", "AverageDose")
GOAL_CRITERIA = ("AtLeast", "AtMost")


class PlanningGoal(ApiObject):
    def __init__(self, goal_type: str, criteria: str, primary: float, secondary: Optional[float],
                 parameter: Optional[float], priority: int, comparative: bool) -> None:
        self._init(Type=goal_type, GoalCriteria=criteria, PrimaryAcceptanceLevel=primary,
                   SecondaryAcceptanceLevel=secondary, ParameterValue=parameter, Priority=priority,
                   IsComparativeGoal=comparative)

    def _key(self) -> tuple:
        return (self.Type, self.GoalCriteria, self.PrimaryAcceptanceLevel, self.SecondaryAcceptanceLevel,
                self.ParameterValue)


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
        ss = dose._structure_set
        volume_cc = ss._geometry(roi).GetRoiVolume()
        if g.Type == "AbsoluteVolumeAtDose":
            rel = dose.GetRelativeVolumeAtDoseValues(RoiName=roi, DoseValues=[g.ParameterValue])[0]
            return float(rel * volume_cc)
        rel = min(1.0, float(g.ParameterValue) / volume_cc)  # DoseAtAbsoluteVolume
        return float(dose.GetDoseAtRelativeVolumes(RoiName=roi, RelativeVolumes=[rel])[0])

    @api_method
    def EvaluateClinicalGoal(self) -> bool:  # noqa: N802
        v = self.GetClinicalGoalValue()
        g = self.PlanningGoal
        return bool(v >= g.PrimaryAcceptanceLevel if g.GoalCriteria == "AtLeast" else v <= g.PrimaryAcceptanceLevel)

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
                        PrimaryAcceptanceLevel: float, SecondaryAcceptanceLevel: Optional[float] = None,
                        ParameterValue: Optional[float] = None, IsComparativeGoal: bool = False,
                        Priority: int = 2147483647, AssociateToPlan: bool = True) -> EvaluationFunction:
        """Add a clinical goal; returns the evaluation function."""
        self._plan._check_editable("add a clinical goal")
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
        if GoalType == "DoseAtVolume" and not 0 <= float(ParameterValue) <= 1:
            raise ArgumentException(f"DoseAtVolume ParameterValue is a fraction 0–1, got {ParameterValue!r}")
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
