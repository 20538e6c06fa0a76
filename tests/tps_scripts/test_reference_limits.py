"""Exact per-voxel limits as MaxRefDose constraints on a reference dose (RayStation 2025),
zones elsewhere; only rr_ objects are added and a failing write rolls everything back."""
import importlib

import numpy as np
import pytest

import mock_tps
from _compare import added_only_rr
from _mock_synthetic import make_phantom_data
from optimizer.organ_limits import OrganLimits
from tps_scripts.reference_limits import (ReferenceZone, extend_limit_gy, reference_map_gy, set_zone_level,
                                         spends_volume)
from tps_scripts.tuning_settings import TuningSettings


#: reference doses are asked for; the default loop uses zones on every version
_REFERENCE = TuningSettings(reference_doses=True)


def _load(version):
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only", rs_version=version)
    return importlib.import_module(mock_tps.RS_VERSIONS[version].module_name)


@pytest.fixture(autouse=True)
def _unload():
    yield
    mock_tps.unload()


def _evaluation_doses(api):
    return {d.Name: d for d in api.get_current("Case").TreatmentDelivery.FractionEvaluations[0]
            .DoseOnExaminations[0].DoseEvaluations}


def test_reference_map_by_hand():
    # strict (4, 6, inf, 8) Gy, relaxed (9, 9, 9, inf), hot in voxels 0 and 3, voxel 2 has no limit:
    # map = (9, 6, max(2 × 24, 9) = 48, 48); voxel 3: hot, relaxed inf → 48 (the ceiling)
    ol = OrganLimits("eso", "Esophagus", np.array([4.0, 6.0, np.inf, 8.0]), np.array([9.0, 9.0, 9.0, np.inf]),
                     1.0, None, (), 0)
    hot = np.array([True, False, False, True])
    got = reference_map_gy(ol, np.ones(4), hot, rx_gy=24.0)
    np.testing.assert_array_equal(got, [9.0, 6.0, 48.0, 48.0])
    np.testing.assert_array_equal(reference_map_gy(ol, np.ones(4), None, rx_gy=24.0), [4.0, 6.0, 48.0, 8.0])


def test_limit_extended_past_the_mask_by_hand():
    # a row of 5 voxels, organ mask on the first two (limits 4 and 6 Gy): voxel 2 touches voxel 1
    # → 6 Gy; voxels 3 and 4 touch no organ voxel → the organ's lowest, 4 Gy
    limit = np.array([4.0, 6.0, 99.0, 99.0, 99.0]).reshape(1, 1, 5)
    inside = np.array([True, True, False, False, False]).reshape(1, 1, 5)
    np.testing.assert_array_equal(extend_limit_gy(limit, inside).ravel(), [4.0, 6.0, 6.0, 4.0, 4.0])


def test_reference_zone_writes_limit_minus_margin_per_fraction():
    class Dose:
        def SetDoseValues(self, Dose):  # noqa: N802,N803
            self.values = np.asarray(Dose)
    z = ReferenceZone("eso", "Esophagus", "reference", np.array([1.0, 0.5, 0.0]).reshape(1, 1, 3),
                      np.array([10.0, 3.0, 0.0]).reshape(1, 1, 3), 0.3, False, reference_dose=Dose(), fractions=2)
    set_zone_level(z)
    # (10 − 0.3)/2 Gy = 485 cGy; (3 − 0.3)/2 = 135 cGy; voxel 2 (outside) takes its neighbour's 3 Gy → 135 cGy
    np.testing.assert_allclose(z.reference_dose.values, [485.0, 135.0, 135.0])
    assert z.level_gy() == pytest.approx(2.7)
    assert z.excess_gy(np.array([9.0, 3.5, 99.0]).reshape(1, 1, 3)) == pytest.approx(0.5)


def test_2025_optimizes_against_the_exact_limits(out_dir):
    from tps_scripts.optimize import run_optimization
    from tps_scripts.config import PluginConfig
    api = _load("2025")
    patient = api.get_current("Patient")
    before = mock_tps.snapshot(patient)
    _, rec = run_optimization(api=api, config=PluginConfig(output_dir=str(out_dir)), settings=_REFERENCE)
    assert rec["evaluation"]["all_pass"]
    assert "reference" in {z["kind"] for z in rec["zones"]}
    assert added_only_rr(before, mock_tps.snapshot(patient)) == []
    doses = _evaluation_doses(api)
    po = api.get_current("Plan").PlanOptimizations[0]
    refs = [f for f in po.Constraints if f.DoseFunctionParameters.__dict__.get("OfReferenceDose") is not None]
    assert len(refs) == sum(z["kind"] == "reference" for z in rec["zones"])
    bs = api.get_current("BeamSet")
    fx = bs.FractionationPattern.NumberOfFractions
    total_gy = bs.FractionDose.DoseValues.DoseData.ravel() / 100.0 * fx
    for f in refs:
        ref = f.DoseFunctionParameters.OfReferenceDose
        assert ref.Name.startswith("rr_ref_") and doses[ref.Name] is ref and ref.ForBeamSet is bs
        zone = [z for z in rec["zones"] if z["roi"] == f.ForRegionOfInterest.Name][0]
        idx = bs.FractionDose.GetDoseGridRoi(RoiName=zone["roi"]).RoiVolumeDistribution.VoxelIndices
        r_gy = ref.DoseValues.DoseData.ravel()[idx] / 100.0 * fx
        assert r_gy.min() == pytest.approx(zone["final_level_gy"], abs=1e-9)   # level = lowest reference
        assert float(np.max(total_gy[idx] - r_gy)) <= 0.05                   # held under it voxel by voxel
    # no clinical goal at a single level for an organ with per-voxel limits
    goals = [g.ForRegionOfInterest.Name for g in api.get_current("Plan").TreatmentCourse.EvaluationSetup
             .EvaluationFunctions]
    assert not set(goals) & {z["roi"] for z in rec["zones"] if z["kind"] == "reference"}
    # the esophagus, whose D1cc is a volume budget, gets zones (and their goals) instead
    assert {z["kind"] for z in rec["zones"] if z["roi"].startswith("rr_Esophagus")} >= {"hot"}
    assert {"rr_Esophagus_hot", "rr_Esophagus_z1"} <= set(goals)


def test_reference_doses_are_not_read_as_prior_courses(out_dir):
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization
    api = _load("2025")
    cfg = PluginConfig(output_dir=str(out_dir))
    run_optimization(api=api, config=cfg, settings=_REFERENCE)
    case = api.get_current("Case")
    case.TreatmentPlans["SBRT"].SetCurrent()              # the user's plan again
    _, rec = run_assessment(api=api, config=cfg)
    assert [p["name"] for p in rec["inputs"]["priors"]] == ["Prior EBRT 10Gy/5fx"]


def test_spends_volume_by_hand():
    # an organ spends volume when a looser limit (relaxed) applies to a budget of cc above the strict
    strict, relaxed = np.array([4.0, 6.0]), np.array([9.0, 9.0])
    assert spends_volume(OrganLimits("eso", "Esophagus", strict, relaxed, 1.0, None, (), 0))
    assert not spends_volume(OrganLimits("eso", "Esophagus", strict, relaxed, 0.0, None, (), 0))
    assert not spends_volume(OrganLimits("eso", "Esophagus", strict, relaxed, None, None, (), 0))
    assert not spends_volume(OrganLimits("cord", "SpinalCord_PRV", strict, None, None, None, (), 0))


def test_2025_uses_zones_unless_reference_doses_are_asked_for(out_dir):
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization
    api = _load("2025")
    _, rec = run_optimization(api=api, config=PluginConfig(output_dir=str(out_dir)))
    assert rec["evaluation"]["all_pass"] and "reference" not in {z["kind"] for z in rec["zones"]}
    assert not [n for n in _evaluation_doses(api) if n.startswith("rr_")]


def test_older_versions_use_zones(out_dir):
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization
    api = _load("2024B")
    _, rec = run_optimization(api=api, config=PluginConfig(output_dir=str(out_dir)), settings=_REFERENCE)
    assert rec["evaluation"]["all_pass"] and "reference" not in {z["kind"] for z in rec["zones"]}
    assert not [n for n in _evaluation_doses(api) if n.startswith("rr_")]


def test_failing_reference_write_rolls_everything_back(out_dir):
    from tps_scripts import writeback
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization
    api = _load("2025")
    before = mock_tps.snapshot(api.get_current("Patient"))
    doses = _evaluation_doses(api)
    ones = np.ones(api.get_current("BeamSet").FractionDose._grid.n_voxels)
    api.get_current("Case").AddCustomEvaluationDose(     # a dose of the user's, named as reirrad would
        Name="rr_ref_SpinalCord_PRV", ExaminationName="CT 1", ReferencedBeamSet=api.get_current("BeamSet"),
        DoseGridNumberOfVoxels=api.get_current("BeamSet").FractionDose.InDoseGrid.NrVoxels,
        DoseGridVoxelSize=api.get_current("BeamSet").FractionDose.InDoseGrid.VoxelSize,
        DoseGridCorner=api.get_current("BeamSet").FractionDose.InDoseGrid.Corner, FractionDoseValues=ones)
    assert len(_evaluation_doses(api)) == len(doses) + 1
    before = mock_tps.snapshot(api.get_current("Patient"))
    real = mock_tps._reference_dose.add_custom_evaluation_dose
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise mock_tps.ArgumentException("injected")
        return real(*args, **kwargs)
    mock_tps._reference_dose.add_custom_evaluation_dose = failing
    try:
        with pytest.raises(writeback.WriteStepError, match=r"write step 'write the exact limits of .*injected"):
            run_optimization(api=api, config=PluginConfig(output_dir=str(out_dir)), settings=_REFERENCE)
    finally:
        mock_tps._reference_dose.add_custom_evaluation_dose = real
    after = mock_tps.snapshot(api.get_current("Patient"))
    assert after == before            # the user's dose of the same name untouched, nothing of the run kept
    # and a run that succeeds leaves the user's dose as it was, writing its own under another name
    _, rec = run_optimization(api=api, config=PluginConfig(output_dir=str(out_dir)), settings=_REFERENCE)
    assert added_only_rr(before, mock_tps.snapshot(api.get_current("Patient"))) == []
    assert "rr_ref_SpinalCord_PRV (1)" in _evaluation_doses(api)


@pytest.mark.slow
def test_t4t5_coarse_reference_doses_pass_and_cover_at_least_the_zones(out_dir):
    """Asked for on RayStation 2025, the T4-T5 loop holds the organs without a volume budget
    under their exact limits and the esophagus under zones: every constraint passes and PTVeval
    V24Gy is not below the zones' (measured at the time of writing: 47.5 % vs 46.3 %, 2 and 2
    RunOptimization calls)."""
    pytest.importorskip("pyRadPlan")
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "bench"))
    from bench_reference_limits import COARSE, run
    ref = run("t4t5_esophageal", "reference", COARSE)
    zones = run("t4t5_esophageal", "zones", COARSE)
    assert ref["all_pass"] and "reference" in ref["kinds"] and "reference" not in zones["kinds"]
    assert ref["v24gy_percent"] >= zones["v24gy_percent"] - 0.5, (ref, zones)
