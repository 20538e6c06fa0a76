"""The closed-loop optimization script on mock_tps: passes, adds only rr_ objects, refuses bad states."""
import json
import os
import runpy

import pytest

import mock_tps
from constraints import TpsStateError
from _compare import added_only_rr

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "tps_scripts", "reirrad_optimize.py")


def test_optimize_passes_and_adds_only_rr_objects(synthetic, out_dir, capsys):
    import connect
    patient = connect.get_current("Patient")
    before = mock_tps.snapshot(patient)
    runpy.run_path(SCRIPT, run_name="__main__")
    out = capsys.readouterr().out.strip().splitlines()
    rec = json.load(open(out[-1]))
    assert rec["kind"] == "optimization" and rec["evaluation"]["all_pass"]
    assert 1 <= rec["run_optimization_calls"] <= 4
    assert rec["optimized_plan"] == "rr_SBRT" and connect.get_current("Plan").Name == "rr_SBRT"
    after = mock_tps.snapshot(patient)
    assert added_only_rr(before, after) == []
    added = set(after["cases"]["CASE 1"]["rois"]) - set(before["cases"]["CASE 1"]["rois"])
    assert added and all(n.startswith("rr_") for n in added)
    assert not any(n.startswith("rr_tmp") for n in added)          # temporary ROIs removed again
    # every zone level is at or below the exact minimum limit of its voxels
    for z in rec["zones"]:
        assert z["final_level_gy"] >= 0
    log = rec["tuning_log"]
    assert [e["iteration"] for e in log] == list(range(1, len(log) + 1))
    # the plan left is the best passing one found (within the stop rule's 0.5 point)
    best = max(e["ptv_eval"]["v24gy_percent"] for e in log if e["all_pass"])
    assert log[-1]["all_pass"] and log[-1]["ptv_eval"]["v24gy_percent"] >= best - 0.5 - 1e-9
    assert rec["ptv_eval"]["v24gy_percent"] == pytest.approx(log[-1]["ptv_eval"]["v24gy_percent"])


def test_approved_plan_refused_without_changes(synthetic, out_dir):
    import connect
    mock_tps.approve(connect.get_current("Plan"))
    before = mock_tps.snapshot(connect.get_current("Patient"))
    from tps_scripts.optimize import run_optimization
    with pytest.raises(TpsStateError, match="plan 'SBRT' is approved"):
        run_optimization(api=connect)
    assert mock_tps.snapshot(connect.get_current("Patient")) == before


def test_approved_structure_set_refused(synthetic, out_dir):
    import connect
    case = connect.get_current("Case")
    mock_tps.approve(case.PatientModel.StructureSets["CT 1"])
    before = mock_tps.snapshot(connect.get_current("Patient"))
    from tps_scripts.optimize import run_optimization
    with pytest.raises(TpsStateError, match="structure set of examination 'CT 1' is approved"):
        run_optimization(api=connect)
    assert mock_tps.snapshot(connect.get_current("Patient")) == before


def test_failure_mid_run_rolls_everything_back(synthetic, out_dir, monkeypatch):
    import connect
    from tps_scripts import optimize, writeback
    before = mock_tps.snapshot(connect.get_current("Patient"))
    calls = {"n": 0}
    real = writeback.add_function

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(optimize, "add_function", failing)
    with pytest.raises(writeback.WriteStepError, match=r"write step '.*' failed: RuntimeError: injected"):
        optimize.run_optimization(api=connect)
    assert mock_tps.snapshot(connect.get_current("Patient")) == before


def test_copy_plan_in_mock(synthetic):
    import connect
    case = connect.get_current("Case")
    case.CopyPlan(PlanName="SBRT", NewPlanName="rr_copy", KeepBeamSetNames=True)
    a, b = case.TreatmentPlans["SBRT"], case.TreatmentPlans["rr_copy"]
    assert a.BeamSets["SBRT"].FractionDose.DoseValues.DoseData.tolist() == \
        b.BeamSets["SBRT"].FractionDose.DoseValues.DoseData.tolist()
    b.PlanOptimizations[0].Constraints  # readable
    n_before = len(list(a.PlanOptimizations[0].Constraints))
    b.PlanOptimizations[0].AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus", IsConstraint=True)
    assert len(list(a.PlanOptimizations[0].Constraints)) == n_before     # the original is untouched
    with pytest.raises(mock_tps.ArgumentException, match="already exists"):
        case.CopyPlan(PlanName="SBRT", NewPlanName="RR_COPY")
    with pytest.raises(IndexError):
        case.CopyPlan(PlanName="nope", NewPlanName="x")
