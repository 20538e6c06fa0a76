"""The scripts refuse what the protocol forbids (a fraction count, a recovery) and say
"not eligible" when the prior exhausts the cord, on mock_tps patients."""
import dataclasses

import pytest

import mock_tps
from constraints import InputError

COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def test_one_fraction_beam_set_is_refused_naming_both_counts(out_dir):
    # koide2024's cord table and 20 Gy caps are physical doses for 2 fractions (Sahgal 2012's
    # single-fraction re-irradiation limit is 9 Gy): a 1-fraction beam set must not be assessed against them
    from _mock_synthetic import make_phantom_data
    mock_tps.load_patient_data(dataclasses.replace(make_phantom_data(), fractions=1), initial_plan="sbrt_only")
    from tps_scripts.assess import run_assessment
    import connect
    try:
        assert connect.get_current("BeamSet").FractionationPattern.NumberOfFractions == 1
        with pytest.raises(InputError, match=r"has 1 fraction\(s\), but protocol 'koide2024' holds for 2 "
                                             r"fraction\(s\) only"):
            run_assessment(api=connect)
    finally:
        mock_tps.unload()
    assert not out_dir.exists() or not any(out_dir.iterdir())        # nothing written


@pytest.fixture
def t4t5():
    pytest.importorskip("pyRadPlan")
    mock_tps.load_phantom("t4t5_esophageal", **COARSE)
    import connect
    yield connect
    mock_tps.unload()


def test_t4t5_recovery_in_configuration_is_refused_not_passed(t4t5, tmp_path):
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import load_config
    from tps_scripts.optimize import run_optimization
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'output_dir = "{(tmp_path / "rec").as_posix()}"\n'
                   '[[prior]]\nname = "Prior EBRT 60Gy/30fx"\nfractions = 30\nrecovery = 0.25\n')
    config = load_config(str(cfg))
    # without recovery the plan as loaded fails its cumulative esophageal limits (the seed's failure)
    _, rec = run_assessment(api=t4t5, config=dataclasses.replace(
        config, priors=tuple(dataclasses.replace(p, recovery=0.0) for p in config.priors)))
    assert not rec["evaluation"]["all_pass"]
    assert rec["inputs"]["assumptions"][0].startswith("no recovery assumed")
    written = sorted((tmp_path / "rec").iterdir())
    # with r = 0.25 claimed: refused by name, never a pass, and nothing more written
    for run in (run_assessment, run_optimization):
        with pytest.raises(InputError, match=r"'Prior EBRT 60Gy/30fx' claims recovery 0.25 .*'esophagus', "
                                             r"whose limit\(s\) esophagus_cum_dmax"):
            run(api=t4t5, config=config)
    assert sorted((tmp_path / "rec").iterdir()) == written


def _t8_record(tmp_path, **params):
    pytest.importorskip("pyRadPlan")
    from mock_tps._phantoms import build_t8_two_courses
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    mock_tps.load_patient_data(build_t8_two_courses(**COARSE, **params), initial_plan="sbrt_only")
    import connect
    try:
        _, rec = run_assessment(api=connect, config=PluginConfig(output_dir=str(tmp_path)))
    finally:
        mock_tps.unload()
    return rec


def test_t8_prior_exhausting_the_cord_is_not_eligible(tmp_path):
    # 30 Gy/10 fx + 20 Gy/5 fx with the cord inside both fields: BED2 about 75 + 60 = 135 Gy2 at the nominal
    # doses, 152 Gy2 at the cord PRV's hottest voxel (> 140 Gy2 = 70 Gy EQD2): nothing left
    rec = _t8_record(tmp_path, prior_dose_gy=(30.0, 20.0), prior_fractions=(10, 5))
    cord = [c for c in rec["evaluation"]["constraints"] if c["id"] == "cord_prv_sbrt_d0035cc"][0]
    assert cord["limit"] == 0.0 and not cord["pass"] and cord["limit_rule"] == "Sahgal-cumulative"
    assert "(2 prior course(s))" in cord["note"] and "exhausted" in cord["note"]
    assert not rec["evaluation"]["all_pass"]
    e = rec["eligibility"]
    assert e["status"] == "not eligible" and not e["eligible"]
    line = [r for r in e["reasons"] if r.startswith("cord PRV prior")][0]
    prior = float(line.split("cord PRV prior ")[1].split(" Gy2")[0])
    assert 140.0 <= prior < 170.0 and "no SBRT dose allowed" in line


def test_t8_default_history_leaves_cord_tolerance(tmp_path):
    # 20 Gy/5 fx + 20 Gy/10 fx: nominal BED2 60 + 40 = 100 Gy2; about 111 Gy2 at the cord PRV's hottest voxel
    rec = _t8_record(tmp_path)
    cord = [c for c in rec["evaluation"]["constraints"] if c["id"] == "cord_prv_sbrt_d0035cc"][0]
    prior = float(cord["note"].split(" = ")[1].split(" Gy2")[0])
    assert 100.0 < prior < 125.0
    from constraints.reirradiation_rule import rule_dose_gy
    # above 100 Gy2 Sahgal's cumulative rule is below the table's 10.8 Gy: D(140 - B) in 2 fx (note rounds B)
    assert cord["limit_rule"] == "Sahgal-cumulative"
    assert cord["limit"] == pytest.approx(rule_dose_gy(140.0 - prior, 2, 2.0), abs=0.01)
    assert 7.0 < cord["limit"] < 10.8
    assert rec["eligibility"]["status"] != "not eligible" or "cord PRV" not in " ".join(
        r for r in rec["eligibility"]["reasons"] if "not eligible" in r)


def test_configuration_recovery_table_dates_and_case_facts(tmp_path):
    import datetime as dt
    from tps_scripts.config import load_config
    cfg = tmp_path / "c.toml"
    cfg.write_text('sbrt_date = "2025-11-20"\n'
                   '[[prior]]\nname = "A"\nfractions = 30\nrecovery = { aorta = 0.25, lungs = 0.1 }\n'
                   'date = "2025-03-14"\n'
                   '[case]\nchemotherapy = true\nprior_sbrt_same_level = false\n')
    c = load_config(str(cfg))
    assert c.sbrt_date == dt.date(2025, 11, 20) and c.priors[0].date == dt.date(2025, 3, 14)
    assert c.priors[0].recovery == {"aorta": 0.25, "lungs": 0.1}
    assert c.case.chemotherapy is True and c.case.bilsky_grade is None      # not given: unknown
    for text, match in [('[[prior]]\nname = "A"\nfractions = 3\nrecovery = { aorta = 1.2 }\n',
                         r"prior\[0\].recovery.aorta'.*must be in \[0, 1\)"),
                        ('sbrt_date = "20.11.2025"\n', "'sbrt_date'.*ISO date"),
                        ('[case]\nchemo = true\n', "unexpected keyword argument 'chemo'")]:
        cfg.write_text(text)
        with pytest.raises(InputError, match=match):
            load_config(str(cfg))
