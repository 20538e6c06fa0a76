"""The closed loop on every built-in phantom (small coarse variants), and the seed's failure mode.

Done-when of the tps_scripts issue: every protocol constraint passes on every phantom,
in at most 3 RunOptimization calls in the median case; on the T4-T5 esophageal phantom
a plan optimized only against the SBRT-only constraints violates the cumulative
esophageal limits, and the tuned plan does not.
"""
import statistics

import pytest

import mock_tps

pytest.importorskip("pyRadPlan")

COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}
PHANTOMS = ("t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses")
CALLS = {}


@pytest.fixture
def cfg(tmp_path):
    from tps_scripts.config import PluginConfig
    return PluginConfig(output_dir=str(tmp_path / "records"))


@pytest.mark.slow
@pytest.mark.parametrize("name", PHANTOMS)
def test_tuning_passes_every_constraint(name, cfg):
    from tps_scripts.optimize import run_optimization
    mock_tps.load_phantom(name, **COARSE)
    import connect
    try:
        _, rec = run_optimization(api=connect, config=cfg)
    finally:
        mock_tps.unload()
    failures = [c["id"] for c in rec["evaluation"]["constraints"] if not c["pass"] and not c["advisory"]]
    assert rec["evaluation"]["all_pass"], failures
    assert rec["run_optimization_calls"] <= cfg.max_optimizations + 1
    CALLS[name] = rec["run_optimization_calls"]
    print(f"{name}: {rec['run_optimization_calls']} RunOptimization calls, PTVeval V24Gy "
          f"{rec['ptv_eval']['v24gy_percent']:.1f} %, D95 {rec['ptv_eval']['d95_gy']:.2f} Gy; stop: {rec['stop_reason']}")


@pytest.mark.slow
def test_median_run_optimization_calls_at_most_3():
    # coarse, 17-beam arc: 3/2/2/4 calls (T4-T5, C7-T1, C3, T8) since PTVeval's contours keep out of
    # the cord PRV (4/4/2/4 before, when its contours cut into the PRV by up to 0.33 mm)
    if len(CALLS) < len(PHANTOMS):
        pytest.skip("needs the per-phantom tuning tests of this module to have run first")
    assert statistics.median(CALLS.values()) <= 3, CALLS


@pytest.mark.slow
def test_seed_failure_mode_sbrt_only_plan_breaches_cumulative_esophagus(cfg):
    """Koide 2024: every SBRT-only constraint met, yet the cumulative esophageal dose too high."""
    from tps_scripts.assess import run_assessment
    from tps_scripts.optimize import run_optimization
    mock_tps.load_phantom("t4t5_esophageal", **COARSE)
    import connect
    try:
        _, before = run_assessment(api=connect, config=cfg)
        _, tuned = run_optimization(api=connect, config=cfg)
    finally:
        mock_tps.unload()
    res = {c["id"]: c for c in before["evaluation"]["constraints"]}
    sbrt_only = [c for c in res.values() if c["domain"] == "sbrt_physical" and c["organ"] != "unspecified_tissue"
                 and c["id"] != "cord_prv_sbrt_d0035cc"]
    assert sbrt_only and all(c["pass"] for c in sbrt_only), [c["id"] for c in sbrt_only if not c["pass"]]
    # the esophageal CRT spared the cord (AP/PA 40 Gy, then off-cord laterals): cord PRV prior Dmax
    # 43.6 Gy in 30 fx = 43.6 * (1 + 43.6 / 60) = 75.3 Gy2, inside the seed's prior range (its cumulative
    # IQR 104-112 Gy2 less ~48 Gy2 of SBRT).  <= 90 Gy2 -> the seed's table gives 12.2 Gy; Sahgal's
    # cumulative 70 Gy EQD2 allows more, D(140 - 75.4) = 2 * (sqrt(1 + 64.6) - 1) = 14.2 Gy, so the table binds
    from constraints.reirradiation_rule import rule_dose_gy
    cord = res["cord_prv_sbrt_d0035cc"]
    prior = float(cord["note"].split(" = ")[1].split(" Gy2")[0])
    assert 70.0 < prior < 90.0
    assert cord["limit_rule"] == "table" and cord["limit"] == pytest.approx(12.2)
    assert rule_dose_gy(140.0 - prior, 2, 2.0) > 12.2 and cord["value"] <= 12.2
    cumulative = [res[i] for i in ("esophagus_cum_dmax", "esophagus_cum_d0035cc", "esophagus_cum_d1cc")]
    assert not all(c["pass"] for c in cumulative)
    after = {c["id"]: c for c in tuned["evaluation"]["constraints"]}
    assert all(after[c["id"]]["pass"] for c in cumulative)
    assert tuned["evaluation"]["all_pass"]
    # the copy's SBRT-only constraints on the zoned organs were replaced by the zones; the user's
    # plan keeps them.  Keeping them cost the whole coverage here: V24Gy 0 % instead of 40.7 %
    # (coarse grid; measured when the replacement was introduced).  With the 17-beam posterior
    # arc, the epidural GTV and the Sahgal cord limit (6.9 Gy instead of 10.8) the loop reaches
    # 42.2 % (coarse, equal per-voxel penalty weights in the mock optimizer); the failure this
    # guards is the 0 %.
    replaced = {c["roi"] for c in tuned["replaced_constraints"]}
    assert {"SpinalCord_PRV", "Esophagus"} <= replaced
    assert tuned["ptv_eval"]["v24gy_percent"] > 10.0


@pytest.mark.slow
def test_user_plan_keeps_its_constraints(cfg):
    from tps_scripts.optimize import run_optimization
    mock_tps.load_phantom("c3_cervical", **COARSE)
    import connect
    try:
        case = connect.get_current("Case")
        rois = lambda plan: sorted(f.ForRegionOfInterest.Name for f in plan.PlanOptimizations[0].Constraints)  # noqa: E731
        user_before = rois(case.TreatmentPlans["SBRT"])
        _, rec = run_optimization(api=connect, config=cfg)
        assert rois(case.TreatmentPlans["SBRT"]) == user_before
        copy = rois(case.TreatmentPlans[rec["optimized_plan"]])
    finally:
        mock_tps.unload()
    for item in rec["replaced_constraints"]:
        assert user_before.count(item["roi"]) >= 1
        # only reirrad's own: one constraint per zone on the ROI (a band and its cap share one)
        assert copy.count(item["roi"]) == sum(1 for z in rec["zones"] if z["roi"] == item["roi"])
