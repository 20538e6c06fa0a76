"""The assessment script on mock_tps: units crossed correctly, read-only, clear refusals."""
import dataclasses
import json
import os
import runpy

import numpy as np
import pytest

import mock_tps
from constraints import InputError, TpsStateError, bed
from tps_scripts.adapter import fractions_from_name

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "tps_scripts", "reirrad_assess.py")


def run_script(capsys):
    runpy.run_path(SCRIPT, run_name="__main__")
    out = capsys.readouterr().out.strip().splitlines()
    return out, json.load(open(out[-1]))


def test_assess_prints_record_path_last_and_crosses_units(synthetic, out_dir, capsys):
    import connect
    plan = connect.get_current("Plan")
    esoph_max_cgy = plan.TreatmentCourse.TotalDose.GetDoseStatistic(RoiName="Esophagus", DoseType="Max")
    out, rec = run_script(capsys)
    assert out[-1].startswith(str(out_dir)) and out[-1].endswith("record.json")
    assert os.path.exists(os.path.join(os.path.dirname(out[-1]), "report.txt"))
    r = {c["id"]: c for c in rec["evaluation"]["constraints"]}
    # cumulative BED3 Dmax = prior 10 Gy/5 fx (BED3 = 10 (1 + 2/3) = 16.67) + BED3 of the SBRT max in 2 fx
    sbrt_max_gy = esoph_max_cgy / 100.0
    expected = 10 * (1 + 2 / 3) + float(bed(sbrt_max_gy, 2, 3.0))
    assert r["esophagus_cum_dmax"]["value"] == pytest.approx(expected, rel=1e-9)
    assert rec["table3"]["Esophagus"]["sbrt"]["physical"]["-"]["Dmax"] == pytest.approx(sbrt_max_gy)
    assert rec["inputs"]["priors"] == [{"name": "Prior EBRT 10Gy/5fx", "fractions": 5, "recovery": 0.0, "date": None,
                                        "fractions_from": "name", "resampled_to_dose_grid": False,
                                        "voxels_assumed_organ_max": 0, "dose_digest": rec["inputs"]["priors"][0]["dose_digest"],
                                        "total_gy": 10.0, "mapped_max_gy": 10.0, "uncertainty_mm": 0.0}]
    assert rec["inputs"]["dose_grid"]["spacing_mm"] == [4.0, 4.0, 4.0]     # 0.4 cm in the TPS
    assert "patient_name" not in rec["inputs"]["tps_objects"]
    assert "Cube3cm" in rec["inputs"]["unmatched_rois"]


def test_assess_changes_nothing(synthetic, out_dir, capsys):
    import connect
    before = mock_tps.snapshot(connect.get_current("Patient"))
    run_script(capsys)
    assert mock_tps.snapshot(connect.get_current("Patient")) == before


def test_two_runs_identical_apart_from_time(synthetic, out_dir, capsys):
    _, a = run_script(capsys)
    _, b = run_script(capsys)
    a.pop("created"), b.pop("created")
    assert a == b


def test_nothing_loaded(out_dir):
    mock_tps.unload()
    from tps_scripts.assess import run_assessment
    import connect
    with pytest.raises(TpsStateError, match="no patient is loaded"):
        run_assessment(api=connect)


def test_no_dose_computed(out_dir):
    from _mock_synthetic import make_phantom_data
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none")
    from tps_scripts.assess import run_assessment
    import connect
    try:
        with pytest.raises(TpsStateError, match=r"beam set 'SBRT' \(fraction dose\) has no dose: compute the dose"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()


def _load_variant(**changes):
    from _mock_synthetic import make_phantom_data
    mock_tps.load_patient_data(dataclasses.replace(make_phantom_data(), **changes), initial_plan="sbrt_only")


@pytest.mark.parametrize("roi, shown", [("Esophagus", "Esophagus"), ("SpinalCord_PRV", r"Spinal cord PRV \(\+1.5 mm\)")])
def test_missing_required_organ_is_refused(out_dir, roi, shown):
    from _mock_synthetic import make_phantom_data
    rois = tuple(r for r in make_phantom_data().rois if r.name != roi)
    _load_variant(rois=rois)
    from tps_scripts.assess import run_assessment
    import connect
    try:
        with pytest.raises(TpsStateError, match=r"required organ\(s\) missing: " + shown + r" \(no ROI named like"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()


def test_unknown_fraction_count_is_refused(out_dir):
    from _mock_synthetic import make_phantom_data
    d = make_phantom_data()
    prior = dataclasses.replace(d.prior_courses[0], name="Old course")
    _load_variant(prior_courses=(prior,))
    from tps_scripts.assess import run_assessment
    import connect
    try:
        with pytest.raises(TpsStateError, match="the fraction count of evaluation dose 'Old course' is unknown"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()


def test_configuration_gives_fractions_and_recovery(out_dir, tmp_path, monkeypatch, capsys):
    from _mock_synthetic import make_phantom_data
    d = make_phantom_data()
    _load_variant(prior_courses=(dataclasses.replace(d.prior_courses[0], name="Old course"),))
    cfg = tmp_path / "cfg.toml"
    # a recovery on an organ whose limits allow it (the aorta has SBRT-only limits only) is used and listed
    cfg.write_text('[[prior]]\nname = "Old course"\nfractions = 5\nrecovery = { aorta = 0.25 }\n'
                   'date = "2023-01-01"\ntotal_gy = 10\n')
    monkeypatch.setenv("REIRRAD_CONFIG", str(cfg))
    try:
        _, rec = run_script(capsys)
        assert rec["inputs"]["priors"][0]["recovery"] == {"aorta": 0.25}
        assert rec["inputs"]["priors"][0]["fractions_from"] == "configuration"
        assert any("aorta r = 0.25" in a for a in rec["inputs"]["assumptions"])
        # one number applies to every organ: the esophageal limits and the cord table forbid it -> refused
        cfg.write_text('[[prior]]\nname = "Old course"\nfractions = 5\nrecovery = 0.25\ntotal_gy = 10\n')
        from tps_scripts.assess import run_assessment
        import connect
        with pytest.raises(InputError, match=r"prior course 'Old course' claims recovery 0.25 for organ "
                                             r"'spinal_cord_prv'.*table input.*0.25 for organ 'esophagus', "
                                             r"whose limit\(s\) esophagus_cum_dmax"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()


def test_prior_not_covering_an_oar(out_dir):
    from _mock_synthetic import make_phantom_data, DOSE_GRID
    from mock_tps._phantom_data import GridSpec
    d = make_phantom_data()
    small = GridSpec(DOSE_GRID.corner_mm, DOSE_GRID.spacing_xyz_mm, (15, 20, 10))   # x < 0 only
    prior = dataclasses.replace(d.prior_courses[0], grid=small, dose_gy=np.full(small.shape_zyx, 10.0))
    _load_variant(prior_courses=(prior,))
    from tps_scripts.assess import run_assessment
    import connect
    try:
        with pytest.raises(TpsStateError, match="does not cover ROI"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()


@pytest.mark.parametrize("name, fx", [("Prior EBRT 60Gy/30fx", 30), ("H&N 70 Gy in 35 fractions", 35),
                                      ("50.4Gy/28F", 28), ("20Gy/5fr boost", 5), ("no fractions", None)])
def test_fractions_from_name(name, fx):
    assert fractions_from_name(name) == fx


def test_gtv_and_both_headlines(out_dir, capsys):
    """A GTV (ROI type 'Gtv', not a protocol organ) in a uniform 5 Gy dose: D98 = D95 = Dmin = 5 Gy;
    the summary states the protocol verdict and the coverage verdict with the numbers."""
    from _mock_synthetic import CT_GRID, DOSE_GRID, box_mask, make_phantom_data
    from mock_tps._phantom_data import RoiSpec
    d = make_phantom_data()
    gtv = RoiSpec("GTV_T5", "Gtv", "Target", box_mask(CT_GRID, (-4, -2, -4), (4, 6, 4)), "Red")
    mock_tps.load_patient_data(dataclasses.replace(d, rois=d.rois + (gtv,), influence_gy=None, beams=(),
                                                   beamlet_beam_index=np.zeros(0, dtype=int),
                                                   plan_dose_gy=np.full(DOSE_GRID.shape_zyx, 5.0)),
                               initial_plan="none")
    import connect
    from tps_scripts.assess import run_assessment, summary_lines
    try:
        _, rec = run_assessment(api=connect)
    finally:
        mock_tps.unload()
    assert rec["gtv"] == [{"roi": "GTV_T5", "volume_cc": pytest.approx(0.512, rel=0.01), "d98_gy": pytest.approx(5.0),
                           "d95_gy": pytest.approx(5.0), "dmin_gy": pytest.approx(5.0)}]    # 8 x 8 x 8 mm = 0.512 cc
    ev = rec["evaluation"]
    # 5 Gy everywhere: PTVeval V24Gy 0 % and D95 5 Gy miss their goals; every OAR limit holds (the cord's
    # binding limit after the 10 Gy/5 fx prior is 7.17 Gy)
    assert ev["all_pass"] is True and ev["coverage_goals_met"] is False
    lines = summary_lines(rec)
    assert lines[0] == "reirrad: PROTOCOL CONSTRAINTS: ALL PASS"
    assert lines[1].startswith("reirrad: TARGET COVERAGE: GOALS NOT MET: V24Gy 0.0 % (goal >= 90, NOT met)")
    assert "GTV_T5 (GTV, 0.51 cc): D98 5.00 Gy, D95 5.00 Gy, Dmin 5.00 Gy" in lines[2]
