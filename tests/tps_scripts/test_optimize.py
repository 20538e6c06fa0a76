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
    from tps_scripts import optimize, target_design, writeback
    before = mock_tps.snapshot(connect.get_current("Patient"))
    calls = {"n": 0}
    real = writeback.add_function

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(target_design, "add_function", failing)     # the third: PTVeval's MaxDose
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


def _zone(organ, coverage):
    import numpy as np
    from tps_scripts.limit_zones import Zone
    cov = np.asarray(coverage, dtype=float)
    return Zone(organ, f"rr_{organ}", "band", cov, np.full(cov.shape, 20.0), 0.3, True)


def test_inside_zones_needs_every_touched_voxel_in_one_organs_zones():
    import numpy as np
    from tps_scripts.copied_functions import inside_zones
    zones = [_zone("body", [0, 1, 1, 0, 0]), _zone("body", [0, 0, 0, 0.2, 0]), _zone("lungs", [0, 0, 0, 0, 1])]
    # voxels 1-3 lie in the body's two zones together (partial coverage 0.2 counts as touched)
    assert inside_zones(np.array([0, 0.5, 1, 0.01, 0]), zones)
    # voxel 4 is the lungs' and voxel 3 the body's: no single organ holds both
    assert not inside_zones(np.array([0, 0, 0, 1, 1]), zones)
    # voxel 0 lies in no zone; an ROI touching nothing is not "inside"
    assert not inside_zones(np.array([1, 0, 0, 0, 0]), zones)
    assert not inside_zones(np.zeros(5), zones)


def test_subvoxel_gap_and_excess_read_sbrt_physical_results_only():
    from types import SimpleNamespace as R
    from tps_scripts.zone_tuning import subvoxel_excess, subvoxel_gap
    results = [
        R(organ="lungs", domain="sbrt_physical", value=19.6, value_subvoxel=20.3, limit=20.0, passed=False),
        R(organ="lungs", domain="sbrt_physical", value=18.0, value_subvoxel=18.1, limit=20.0, passed=True),
        R(organ="esophagus", domain="cumulative_bed", value=150.0, value_subvoxel=160.0, limit=167.0, passed=True),
        R(organ="trachea", domain="sbrt_physical", value=19.0, value_subvoxel=None, limit=20.0, passed=True),
    ]
    ev = R(results=results, failures=lambda: [r for r in results if not r.passed])
    gap = subvoxel_gap(ev)
    # lungs: max(20.3 - 19.6, 18.1 - 18.0) = 0.7 Gy; BED readings and unread rules are left out
    assert gap == pytest.approx({"lungs": 0.7})
    # the failing lungs reading lies 20.3 - 20.0 = 0.3 Gy above its limit
    assert subvoxel_excess(ev) == pytest.approx({"lungs": 0.3})


def test_near_max_percent_only_for_single_zone_volume_metrics():
    from types import SimpleNamespace
    import numpy as np
    from constraints.protocol import load_protocol
    from tps_scripts.zone_tuning import near_max_percent
    protocol = load_protocol("koide2024")
    case = SimpleNamespace(grid=SimpleNamespace(voxel_volume_cc=0.125))     # 5 mm dose grid
    lungs = _zone("lungs", np.ones(2000))                                   # 2000 x 0.125 = 250 cc
    cord = _zone("spinal_cord_prv", np.ones(100))
    esophagus = _zone("esophagus", np.ones(100))
    zones = [lungs, cord, esophagus]
    # lungs: D0.035cc <= 20 Gy only -> 100 x 0.035 / 250 = 0.014 % of the zone; half of it with factor 0.5
    assert near_max_percent(lungs, zones, case, protocol) == pytest.approx(0.014)
    assert near_max_percent(lungs, zones, case, protocol, 0.5) == pytest.approx(0.007)
    # the cord (Dmax, a table limit) and the esophagus (cumulative Dmax) keep MaxDose constraints
    assert near_max_percent(cord, zones, case, protocol) is None
    assert near_max_percent(esophagus, zones, case, protocol) is None
    # an organ in two zones: 0.035 cc exempt in each could add up over the organ
    assert near_max_percent(lungs, zones + [_zone("lungs", np.ones(10))], case, protocol) is None
    # a zone smaller than the metric's volume: 0.2 x 0.125 = 0.025 cc < 0.035 cc, nothing to ask
    tiny = _zone("aorta", [0.2])
    assert near_max_percent(tiny, [tiny], case, protocol) is None


def test_tighten_failing_zones_lowers_each_kind_of_zone_by_its_own_rule():
    import numpy as np
    from tps_scripts.tuning_settings import TuningSettings
    from tps_scripts.zone_tuning import tighten_failing_zones
    hot, close, sub, dvh, soft = (_zone(o, np.ones(3)) for o in ("lungs", "aorta", "esophagus", "trachea", "body"))
    dvh.dvh_percent, soft.soft = 0.014, True
    entry = {"zone_excess_gy": {"rr_lungs": 0.5, "rr_aorta": -0.01, "rr_esophagus": -0.5, "rr_trachea": 0.7,
                                "rr_body": 0.9},
             "subvoxel_excess_gy": {"esophagus": 0.2}, "metric_excess_gy": {"trachea": 0.4}, "changes": []}
    floors = {}
    tighten_failing_zones([hot, close, sub, dvh, soft], entry, TuningSettings(), floors)
    # limits 20 Gy, margins 0.3 Gy, tighten_extra 0.1 Gy:
    # lungs over its limit by 0.5 Gy: 0.3 + 0.5 + 0.1 = 0.9 -> level 19.1 Gy
    # aorta 0.01 Gy short of it (within 0.02 Gy): 0.3 - 0.01 + 0.1 = 0.39 -> 19.61 Gy
    # esophagus fails by the sub-voxel rule alone, 0.2 Gy: 0.3 + 2 x 0.2 + 0.1 = 0.8 -> 19.2 Gy, a floor
    # trachea (MaxDvh) by the higher rule, 0.4 Gy (its voxel excess 0.7 is ignored): 0.3 + 1 x 0.4 + 0.1 = 0.8
    # body (objective): its organ does not fail, so it stays, whatever its voxel excess
    assert [z.margin_gy for z in (hot, close, sub, dvh, soft)] == pytest.approx([0.9, 0.39, 0.8, 0.8, 0.3])
    assert floors == pytest.approx({"rr_esophagus": 0.8, "rr_trachea": 0.8})
    assert entry["changes"] == ["tighten rr_lungs to 19.10 Gy", "tighten rr_aorta to 19.61 Gy",
                                "tighten rr_esophagus to 19.20 Gy (sub-voxel rule)",
                                "tighten rr_trachea to 19.20 Gy (MaxDvh)"]
