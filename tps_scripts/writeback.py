"""Writing back into the planning system: checks first, then only additions.

Safety rules (DESIGN §5): every created object carries the prefix ``rr_`` and a name
from ``GetUniqueRoiName`` (ROIs) or a uniqueness check (plans); the user's plan is
never optimized in place — the script works on a copy (``case.CopyPlan``), so the
user's plan, its functions and its dose stay as they were; an approved plan or
structure set is refused before anything is written; all writes of one run happen in
one ``CompositeAction`` (one undo step, rolled back as a whole on error).

Each write goes through :func:`step`, which names the step in the error raised when
the planning system refuses it.

Argument spellings follow the running RayStation version, read the way public
scripts read it (:func:`application_major_version`): ``AcceptanceLevel`` up to
2023B and ``PrimaryAcceptanceLevel`` from 2024A (application version 16) in
``AddClinicalGoal``; ``RestrictToBeam`` up to 12A and ``RestrictToBeams`` from 2023B
(application version 15) in ``AddOptimizationFunction``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional, Sequence

from constraints.errors import TpsStateError

from .units import gy_to_cgy, mm_to_cm

__all__ = ["PREFIX", "application_major_version", "check_editable", "unique_plan_name", "create_roi", "create_dose_threshold_roi",
           "create_algebra_roi", "add_function", "set_dose_level", "add_clinical_goal", "step", "WriteStepError"]

PREFIX = "rr_"
#: First application major version with ``AddClinicalGoal(PrimaryAcceptanceLevel=)`` (2024A).
PRIMARY_ACCEPTANCE_LEVEL_SINCE = 16
#: First application major version with ``AddOptimizationFunction(RestrictToBeams=)`` (2023B).
RESTRICT_TO_BEAMS_SINCE = 15


def _major_from_version_string(text: Any) -> Optional[int]:
    """'12.0.100.0' → 12; 'x.99...' (a pre-release of x+1) → x + 1; None if unreadable."""
    try:
        parts = str(text).split(".")
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (TypeError, ValueError):
        return None
    return major + 1 if minor == 99 else major


def application_major_version(api: Any = None) -> Optional[int]:
    """The running RayStation's application major version (11B → 12, 2024A → 16), or None.

    Read as public scripts read it: ``get_current('ui').GetApplicationVersion()``;
    without a GUI (``get_current('ui')`` raises) from the loaded patient's
    ``ModificationInfo.SoftwareVersion``.
    """
    if api is None:
        from .adapter import get_api
        api = get_api()
    try:
        return _major_from_version_string(api.get_current("ui").GetApplicationVersion())
    except Exception:  # no GUI: RayStation's bridge raises a plain Exception
        pass
    try:
        return _major_from_version_string(api.get_current("Patient").ModificationInfo.SoftwareVersion)
    except Exception:  # no patient, or a version without ModificationInfo
        return None


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
    """Add one optimization function and set its parameters (doses in Gy here, cGy in the TPS).

    ``RestrictToBeams=None`` from 2023B, ``RestrictToBeam=None`` before; left out when the
    version cannot be read.
    """
    major = application_major_version()
    restrict: Dict[str, Any] = {}
    if major is not None:
        restrict = {"RestrictToBeams" if major >= RESTRICT_TO_BEAMS_SINCE else "RestrictToBeam": None}
    f = po.AddOptimizationFunction(FunctionType=function_type, RoiName=roi_name, IsConstraint=is_constraint,
                                   RestrictAllBeamsIndividually=False, IsRobust=False,
                                   RestrictToBeamSet=None, UseRbeDose=False, **restrict)
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
    """``AddClinicalGoal`` with the running version's spelling of the acceptance level.

    ``PrimaryAcceptanceLevel`` from 2024A, ``AcceptanceLevel`` before
    (:func:`application_major_version`).  When the version cannot be read, the
    spelling of an existing goal's ``PlanningGoal`` decides; with no goal either,
    the 2024A spelling is tried and, if the signature refuses it, the older one.
    """
    kwargs = dict(RoiName=roi_name, GoalCriteria=goal_criteria, GoalType=goal_type,
                  ParameterValue=parameter_value, IsComparativeGoal=False, Priority=priority)
    major = application_major_version()
    if major is None:
        existing = list(getattr(evaluation_setup, "EvaluationFunctions", []) or [])
        if existing:
            old = hasattr(existing[0].PlanningGoal, "AcceptanceLevel")
            major = PRIMARY_ACCEPTANCE_LEVEL_SINCE - 1 if old else PRIMARY_ACCEPTANCE_LEVEL_SINCE
    if major is None:
        try:
            return evaluation_setup.AddClinicalGoal(PrimaryAcceptanceLevel=acceptance_level, **kwargs)
        except Exception as exc:  # only the refusal of the argument name itself falls back
            if "PrimaryAcceptanceLevel" not in str(exc):
                raise
            return evaluation_setup.AddClinicalGoal(AcceptanceLevel=acceptance_level, **kwargs)
    if major >= PRIMARY_ACCEPTANCE_LEVEL_SINCE:
        return evaluation_setup.AddClinicalGoal(PrimaryAcceptanceLevel=acceptance_level, AssociateToPlan=True,
                                                **kwargs)
    return evaluation_setup.AddClinicalGoal(AcceptanceLevel=acceptance_level, **kwargs)
