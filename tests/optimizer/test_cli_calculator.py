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


@pytest.mark.parametrize("prior_bed, limit", [(90, 12.2), (90.5, 12.1), (95.5, 11.4), (100, 10.8), (120, 10.8)])
def test_cord_limit(capsys, prior_bed, limit):
    code, out, _ = run(capsys, "protocol", "cord-limit", "--prior-bed", str(prior_bed), "--json")
    assert code == 0 and json.loads(out)["limit_gy"] == limit


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
