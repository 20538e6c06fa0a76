"""CompositeAction as one undo step: rollback on exception, keep on success, nesting."""
from __future__ import annotations

import pytest

import mock_tps
from mock_tps import connect
from _mock_synthetic import make_phantom_data


@pytest.fixture
def patient():
    p = mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    yield p
    mock_tps.unload()


class _Boom(Exception):
    pass


def _edit_everything(case, plan):
    """A script that changes ROIs, geometry, functions, goals, weights and dose."""
    pm = case.PatientModel
    exam = case.Examinations["CT 1"]
    roi = pm.CreateRoi(Name="rr_PTV_ring", Color="Red", Type="Control")
    roi.CreateMarginGeometry(Examination=exam, SourceRoiName="PTVeval",
                             MarginSettings={"Type": "Expand", "Superior": 0.5, "Inferior": 0.5,
                                             "Anterior": 0.5, "Posterior": 0.5, "Right": 0.5, "Left": 0.5})
    pm.RegionsOfInterest["Esophagus"].Color = "Blue"                       # a user ROI changed
    po = plan.PlanOptimizations[0]
    po.Objective.ConstituentFunctions[0].DoseFunctionParameters.Weight = 5.0   # a user function changed
    po.Objective.ConstituentFunctions[1].DeleteFunction()                  # a user function deleted
    f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="rr_PTV_ring")
    f.DoseFunctionParameters.DoseLevel = 2000
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = 3
    po.RunOptimization()
    plan.TreatmentCourse.EvaluationSetup.AddClinicalGoal(
        RoiName="rr_PTV_ring", GoalCriteria="AtMost", GoalType="AverageDose", PrimaryAcceptanceLevel=2000)
    return roi, f


def test_exception_rolls_back_everything(patient):
    case = connect.get_current("Case")
    plan = connect.get_current("Plan")
    before = mock_tps.snapshot(patient)
    po = plan.PlanOptimizations[0]
    uniform = po.Objective.ConstituentFunctions[1]
    with pytest.raises(_Boom):
        with connect.CompositeAction("rr test"):
            _edit_everything(case, plan)
            raise _Boom("mid-script failure")
    assert mock_tps.snapshot(patient) == before
    # references held by the script are restored in place
    assert [r.Name for r in case.PatientModel.RegionsOfInterest][-1] == "Ring_PTV+5mm"   # the planner's ring, last made
    assert case.PatientModel.RegionsOfInterest["Esophagus"].Color == "Brown"
    assert po.Objective.ConstituentFunctions[1] is uniform
    assert po.Objective.ConstituentFunctions[0].DoseFunctionParameters.Weight == 100.0
    assert mock_tps.statistics()["composite_rollbacks"] >= 1


def test_success_keeps_changes(patient):
    case = connect.get_current("Case")
    plan = connect.get_current("Plan")
    before = mock_tps.snapshot(patient)
    with connect.CompositeAction("rr test"):
        _edit_everything(case, plan)
    after = mock_tps.snapshot(patient)
    assert after != before
    assert "rr_PTV_ring" in after["cases"]["CASE 1"]["rois"]
    assert after["cases"]["CASE 1"]["rois"]["Esophagus"]["color"] == "Blue"


def test_nested_action_joins_the_outer(patient):
    case = connect.get_current("Case")
    before = mock_tps.snapshot(patient)
    with pytest.raises(_Boom):
        with connect.CompositeAction("outer"):
            case.PatientModel.CreateRoi(Name="rr_a", Color="Red", Type="Control")
            try:
                with connect.CompositeAction("inner"):
                    case.PatientModel.CreateRoi(Name="rr_b", Color="Red", Type="Control")
                    raise _Boom("caught inside the outer")
            except _Boom:
                pass
            # the inner failure rolled nothing back: it is part of the outer undo step
            assert "rr_b" in case.PatientModel.RegionsOfInterest.Keys
            raise _Boom("leaves the outer")
    assert mock_tps.snapshot(patient) == before


def test_big_arrays_are_shared_not_copied(patient):
    from mock_tps._bridge import _take_snapshot
    bs = connect.get_current("BeamSet")
    originals, backups = _take_snapshot(patient)
    twin = backups[originals.index(bs)]
    assert twin is not bs
    assert twin._influence is bs._influence
    g = connect.get_current("Case").PatientModel.StructureSets[0].RoiGeometries["PTVeval"]
    assert backups[originals.index(g)]._coverage is g._coverage


def test_changes_outside_composite_action_stay(patient):
    case = connect.get_current("Case")
    with pytest.raises(_Boom):
        case.PatientModel.CreateRoi(Name="rr_x", Color="Red", Type="Control")
        raise _Boom()
    assert "rr_x" in case.PatientModel.RegionsOfInterest.Keys


def test_refusal_inside_action_rolls_back(patient):
    case = connect.get_current("Case")
    plan = connect.get_current("Plan")
    before = mock_tps.snapshot(patient)
    with pytest.raises(mock_tps.InvalidOperationException, match="approved"):
        with connect.CompositeAction("rr test"):
            case.PatientModel.CreateRoi(Name="rr_y", Color="Red", Type="Control")
            mock_tps.approve(plan)
            plan.PlanOptimizations[0].AddOptimizationFunction(FunctionType="MaxDose", RoiName="rr_y")
    assert mock_tps.snapshot(patient) == before
