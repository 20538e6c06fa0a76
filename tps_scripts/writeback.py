"""Writing back into the planning system: checks first, then only additions.

Safety rules (DESIGN §5): every created object carries the prefix ``rr_`` and a name
from ``GetUniqueRoiName`` (ROIs) or a uniqueness check (plans); the user's plan is
never optimized in place — the script works on a copy (``case.CopyPlan``), so the
user's plan, its functions and its dose stay as they were; an approved plan or
structure set is refused before anything is written; all writes of one run happen in
one ``CompositeAction`` (one undo step, rolled back as a whole on error).

Each write goes through :func:`step`, which names the step in the error raised when
the planning system refuses it.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional, Sequence

from constraints.errors import TpsStateError

from .units import gy_to_cgy, mm_to_cm

__all__ = ["PREFIX", "check_editable", "unique_plan_name", "create_roi", "create_dose_threshold_roi",
           "create_algebra_roi", "add_function", "set_dose_level", "add_clinical_goal", "step", "WriteStepError"]

PREFIX = "rr_"


class WriteStepError(TpsStateError):
    """A write step failed in the planning system; everything of the run was rolled back."""


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Name a write step: an exception inside becomes :class:`WriteStepError` naming it."""
    try:
        yield
    except WriteStepError:
        raise
    except Exception as exc:  # the TPS raises .NET/SystemError/ValueError/... : name the step
        raise WriteStepError(f"write step '{name}' failed: {type(exc).__name__}: {exc}. "
                             "Nothing of this run was kept (rolled back).") from exc


def _approved(obj: Any) -> bool:
    review = getattr(obj, "Review", None)
    return review is not None and getattr(review, "ApprovalStatus", None) == "Approved"


def check_editable(case: Any, plan: Any, examination_name: str) -> None:
    """Refuse up front when the plan or the examination's structure set is approved.

    Raises
    ------
    constraints.errors.TpsStateError
    """
    if _approved(plan):
        raise TpsStateError(f"plan {plan.Name!r} is approved: reirrad does not write into approved plans. "
                            "Copy the plan (or un-approve it) and run the script on the copy")
    ss = case.PatientModel.StructureSets[examination_name]
    for sub in getattr(ss, "SubStructureSets", []) or []:
        if _approved(sub):
            raise TpsStateError(f"the structure set of examination {examination_name!r} is approved: reirrad "
                                "would add ROIs to it. Un-approve it or use an unapproved copy of the examination")


def unique_plan_name(case: Any, desired: str) -> str:
    """``desired`` or ``desired (N)``, unique among the case's plans (ignoring case)."""
    existing = {p.Name.casefold() for p in case.TreatmentPlans}
    name = desired
    n = 1
    while name.casefold() in existing:
        name = f"{desired} ({n})"
        n += 1
    return name


def create_roi(pm: Any, desired_name: str, *, color: str = "Orange", roi_type: str = "Control") -> Any:
    """Create an ``rr_`` ROI with a unique name; return the ROI object."""
    if not desired_name.startswith(PREFIX):
        desired_name = PREFIX + desired_name
    name = pm.GetUniqueRoiName(DesiredName=desired_name)
    return pm.CreateRoi(Name=name, Color=color, Type=roi_type, TissueName=None, RbeCellTypeName=None,
                        RoiMaterial=None)


def create_dose_threshold_roi(pm: Any, desired_name: str, dose: Any, threshold_gy: float) -> Any:
    """An ``rr_`` ROI of the voxels where ``dose`` ≥ ``threshold_gy`` (``CreateRoiGeometryFromDose``)."""
    roi = create_roi(pm, desired_name, color="Gray")
    roi.CreateRoiGeometryFromDose(DoseDistribution=dose, ThresholdLevel=float(gy_to_cgy(threshold_gy)))
    return roi


def _margin(expand_mm: float = 0.0) -> Dict[str, Any]:
    cm = float(mm_to_cm(expand_mm))
    return {"Type": "Expand", "Superior": cm, "Inferior": cm, "Anterior": cm, "Posterior": cm, "Right": cm,
            "Left": cm}


def create_algebra_roi(pm: Any, desired_name: str, examination: Any, a_rois: Sequence[str], *,
                       a_operation: str = "Union", b_rois: Sequence[str] = (), b_operation: str = "Union",
                       b_expand_mm: float = 0.0, result: str = "None", color: str = "Orange") -> Any:
    """An ``rr_`` ROI = (A) result-operation (B expanded by ``b_expand_mm``)."""
    roi = create_roi(pm, desired_name, color=color)
    roi.CreateAlgebraGeometry(
        Examination=examination, Algorithm="Auto",
        ExpressionA={"Operation": a_operation, "SourceRoiNames": list(a_rois), "MarginSettings": _margin()},
        ExpressionB={"Operation": b_operation, "SourceRoiNames": list(b_rois), "MarginSettings": _margin(b_expand_mm)},
        ResultOperation=result, ResultMarginSettings=_margin())
    return roi


def add_function(po: Any, function_type: str, roi_name: str, *, dose_level_gy: Optional[float] = None,
                 weight: float = 1.0, is_constraint: bool = False, percent_volume: Optional[float] = None,
                 high_dose_gy: Optional[float] = None, low_dose_gy: Optional[float] = None,
                 low_dose_distance_mm: Optional[float] = None) -> Any:
    """Add one optimization function and set its parameters (doses in Gy here, cGy in the TPS)."""
    f = po.AddOptimizationFunction(FunctionType=function_type, RoiName=roi_name, IsConstraint=is_constraint,
                                   RestrictAllBeamsIndividually=False, RestrictToBeams=None, IsRobust=False,
                                   RestrictToBeamSet=None, UseRbeDose=False)
    p = f.DoseFunctionParameters
    if function_type == "DoseFallOff":
        p.HighDoseLevel = float(gy_to_cgy(high_dose_gy))
        p.LowDoseLevel = float(gy_to_cgy(low_dose_gy))
        p.LowDoseDistance = float(mm_to_cm(low_dose_distance_mm))
    else:
        p.DoseLevel = float(gy_to_cgy(dose_level_gy))
    if percent_volume is not None:
        p.PercentVolume = float(percent_volume)
    if not is_constraint:
        p.Weight = float(weight)
    return f


def set_dose_level(function: Any, dose_level_gy: float) -> None:
    """Change the dose level of one of reirrad's own functions."""
    function.DoseFunctionParameters.DoseLevel = float(gy_to_cgy(dose_level_gy))


def add_clinical_goal(evaluation_setup: Any, roi_name: str, goal_criteria: str, goal_type: str,
                      acceptance_level: float, parameter_value: Optional[float] = None, priority: int = 1) -> Any:
    """``AddClinicalGoal`` with the 2024B signature, falling back to ``AcceptanceLevel`` (≤ 12A)."""
    kwargs = dict(RoiName=roi_name, GoalCriteria=goal_criteria, GoalType=goal_type,
                  ParameterValue=parameter_value, IsComparativeGoal=False, Priority=priority)
    try:
        return evaluation_setup.AddClinicalGoal(PrimaryAcceptanceLevel=acceptance_level, AssociateToPlan=True,
                                                **kwargs)
    except TypeError:
        return evaluation_setup.AddClinicalGoal(AcceptanceLevel=acceptance_level, **kwargs)
