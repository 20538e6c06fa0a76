"""The calculator CLI: exact JSON interface, tables, one-line errors with exit 2."""
import json

import pytest

from optimizer.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bio_dose_json(capsys):
    code, out, _ = run(capsys, "bio", "--dose", "24.77", "--fractions", "2", "--alpha-beta", "2", "3", "10", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["dose_gy"] == 24.77 and d["fractions"] == 2
    assert [r["alpha_beta"] for r in d["results"]] == [2.0, 3.0, 10.0]
    assert [round(r["bed"]) for r in d["results"]] == [178, 127, 55]
    assert round(d["results"][0]["eqd2"]) == 89


def test_bio_bed_json_solves_dose(capsys):
    code, out, _ = run(capsys, "bio", "--bed", "127", "--fractions", "2", "--alpha-beta", "3", "--json")
    d = json.loads(out)
    assert code == 0 and d["dose_gy"] == pytest.approx(24.767, abs=1e-3)
    assert d["results"] == [{"alpha_beta": 3.0, "bed": pytest.approx(127.0), "eqd2": pytest.approx(76.2)}]


def test_bio_table(capsys):
    code, out, _ = run(capsys, "bio", "--dose", "50", "--fractions", "25", "--alpha-beta", "2", "4")
    assert code == 0 and "100.00" in out and "75.00" in out


def test_limit_json(capsys):
    code, out, _ = run(capsys, "limit", "--prior", "60/30", "--prior", "20/5@0.25", "--alpha-beta", "3",
                       "--limit-bed", "203", "--fractions", "2", "--json")
    d = json.loads(out)
    assert code == 0
    assert d["prior_bed"] == pytest.approx(135.0)       # 100 + 0.75 * 46.67
    assert d["remaining_bed"] == pytest.approx(68.0)
    assert d["limit_gy"] == pytest.approx(17.42, abs=5e-3)


def test_limit_single_prior_and_cap(capsys):
    code, out, _ = run(capsys, "limit", "--prior", "60/30", "--alpha-beta", "3", "--limit-bed", "203",
                       "--fractions", "2", "--cap-gy", "20", "--json")
    d = json.loads(out)
    assert d["limit_gy"] == 20.0 and d["capped"] is True
    code, out, _ = run(capsys, "limit", "--prior", "60/30", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2")
    assert "22.04 Gy in 2 fractions" in out


@pytest.mark.parametrize("prior_bed, limit, rule", [
    (90, 12.2, "table"), (90.5, 12.1, "table"),
    (95.5, 11.4, "table"),            # Sahgal: 2 (sqrt(1 + 44.5) - 1) = 11.49 Gy
    (100, 10.8, "table"),             # Sahgal: 2 (sqrt(1 + 40) - 1) = 10.806 Gy
    # 120 Gy2 = 60 Gy EQD2: 70 - 60 = 10 Gy EQD2 = 20 Gy2 left -> D = 2 (sqrt(1 + 20) - 1) = 7.1652 Gy
    (120, 7.1652, "Sahgal-cumulative"),
    # 107 Gy2 (the seed's evidence ends here): 33 Gy2 left -> 2 (sqrt(34) - 1) = 9.6619 Gy < 10.8
    (107, 9.6619, "Sahgal-cumulative"),
])
def test_cord_limit(capsys, prior_bed, limit, rule):
    code, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", str(prior_bed), "--json")
    d = json.loads(out)
    assert code == 0 and d["limit_gy"] == pytest.approx(limit, abs=5e-5) and d["binding_rule"] == rule
    assert d["limit_gy"] <= 7.17 or prior_bed != 120
    assert d["eligible"] is True and d["conditions"]["interval"].startswith("unknown")


@pytest.mark.parametrize("prior_bed", [140, 152.2, 200])
def test_cord_limit_exhausted_is_zero_and_not_eligible(capsys, prior_bed):
    code, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", str(prior_bed), "--json")
    d = json.loads(out)
    assert code == 0 and d["limit_gy"] == 0.0 and d["exhausted"] is True and d["eligible"] is False
    assert "no cord tolerance left" in d["message"] and "140 Gy2 BED" in d["message"]
    code, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", str(prior_bed))
    assert "NOT ELIGIBLE" in out


def test_cord_limit_interval_condition(capsys):
    _, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", "100", "--interval-months", "4.9", "--json")
    d = json.loads(out)
    assert d["eligible"] is False and d["conditions"]["interval"].startswith("NOT met")
    _, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", "100", "--interval-months", "5", "--json")
    assert json.loads(out)["conditions"]["interval"].startswith("met")     # Sahgal: >= 5 months


def test_limit_raw_warns_that_recovery_is_the_users_responsibility(capsys):
    # the case: 60/30 @ 0.25 allows 24.87 Gy under a raw 203 Gy3 limit, above the fatal 24.77 Gy;
    # the raw calculator still answers but warns, in text and JSON
    code, out, _ = run(capsys, "limit", "--prior", "60/30@0.25", "--alpha-beta", "3", "--limit-bed", "203",
                       "--fractions", "2", "--json")
    d = json.loads(out)
    assert code == 0 and d["limit_gy"] == pytest.approx(24.87, abs=5e-3)
    assert "recovery" in d["warnings"][0] and "your responsibility" in d["warnings"][0]
    code, out, _ = run(capsys, "limit", "--prior", "60/30@0.25", "--alpha-beta", "3", "--limit-bed", "203",
                       "--fractions", "2")
    assert "warning: raw --limit-bed" in out


def test_limit_from_constraint_refuses_recovery_the_protocol_forbids(capsys):
    code, out, err = run(capsys, "limit", "--prior", "60/30@0.25", "--constraint", "esophagus_cum_dmax")
    assert code == 2 and out == ""
    assert "esophagus_cum_dmax" in err and "forbids recovery" in err and "60/30@0.25" in err
    # without recovery: 203 - 100 = 103 Gy3 left -> 3 (sqrt(1 + 4*103/6) - 1) = 22.04 Gy, below the fatal 24.77
    code, out, _ = run(capsys, "limit", "--prior", "60/30", "--constraint", "esophagus_cum_dmax", "--json")
    d = json.loads(out)
    assert code == 0 and d["limit_gy"] == pytest.approx(22.04, abs=5e-3) and d["warnings"] == []
    assert d["source"]["constraint"] == "esophagus_cum_dmax" and d["alpha_beta"] == 3.0 and d["fractions"] == 2


@pytest.mark.parametrize("argv, match", [
    (["--constraint", "nope"], "not a constraint of protocol"),
    (["--constraint", "cord_prv_sbrt_d0035cc"], "cord-limit"),
    (["--constraint", "esophagus_cum_dmax", "--limit-bed", "250"], "contradicts"),
    (["--constraint", "esophagus_cum_dmax", "--fractions", "1"], "holds for"),
    (["--alpha-beta", "3"], "give --limit-bed, --fractions"),
])
def test_limit_bad_constraint_use(capsys, argv, match):
    code, _, err = run(capsys, "limit", "--prior", "60/30", *argv)
    assert code == 2 and match in err


def test_protocol_show(capsys):
    code, out, _ = run(capsys, "protocol", "show")
    assert code == 0 and "koide2024 v1.0.0" in out and "< 203" in out and "12.2" in out
    code, out, _ = run(capsys, "protocol", "show", "koide2024", "--json")
    d = json.loads(out)
    assert d["name"] == "koide2024" and d["prescription"]["dose_gy"] == 24.0
    code, out, _ = run(capsys, "protocol", "show", "--verbatim")
    assert out.startswith("# reirrad protocol file")


@pytest.mark.parametrize("argv, match", [
    (["bio", "--dose", "-1", "--fractions", "2", "--alpha-beta", "3"], "dose_gy must be >= 0"),
    (["bio", "--dose", "10", "--fractions", "0", "--alpha-beta", "3"], "fractions must be an integer >= 1"),
    (["bio", "--dose", "10", "--fractions", "2", "--alpha-beta", "0"], "alpha_beta_gy must be a finite number > 0"),
    (["bio", "--bed", "10", "--fractions", "2", "--alpha-beta", "2", "3"], "need exactly one --alpha-beta"),
    (["bio", "--dose", "10", "--fractions", "2"], "the following arguments are required: --alpha-beta"),
    (["bio", "--dose", "ten", "--fractions", "2", "--alpha-beta", "3"], "argument --dose: invalid float value"),
    (["bio", "--dose", "1", "--bed", "2", "--fractions", "2", "--alpha-beta", "3"], "not allowed with argument"),
    (["limit", "--prior", "60-30", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2"],
     "--prior '60-30' must look like DOSE/FRACTIONS"),
    (["limit", "--prior", "60/0", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2"], "fractions must be >= 1"),
    (["limit", "--prior", "60/30@1.5", "--alpha-beta", "3", "--limit-bed", "203", "--fractions", "2"],
     r"recovery must be in \[0, 1\)"),
    (["limit", "--prior", "60/30", "--alpha-beta", "3", "--limit-bed", "-5", "--fractions", "2"],
     "cumulative_limit_bed_gy must be a finite number > 0"),
    (["protocol", "cord-limit", "--prior-bed", "-1"], "input must be a finite number >= 0"),
    (["protocol", "show", "nope"], "unknown protocol 'nope'"),
    (["frobnicate"], "invalid choice"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_arguments_one_line_exit_2(capsys, argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2 if argv else code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    import re
    assert re.search(match, lines[0]), lines[0]


def test_console_script_entry_point():
    import subprocess, sys
    r = subprocess.run([sys.executable, "-m", "optimizer.cli.main", "bio", "--dose", "2", "--fractions", "1",
                        "--alpha-beta", "2", "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["results"][0]["bed"] == pytest.approx(4.0)
