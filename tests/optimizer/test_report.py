"""The HTML report: self-contained, every plot renders in a real headless browser."""
import base64
import os
import re
import shutil
import subprocess

import pytest

import mock_tps

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock_tps"))
    from _mock_synthetic import make_phantom_data
    from constraints import load_protocol
    from optimizer.organ_limits import organ_limits
    from optimizer.report import ReportInputs, write_report
    from tps_scripts.adapter import gather
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import run_optimization

    out = tmp_path_factory.mktemp("report")
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    import connect
    cfg = PluginConfig(output_dir=str(out / "records"))
    p = load_protocol()
    _, before = run_assessment(connect, cfg)
    _, opt = run_optimization(connect, cfg)
    _, after = run_assessment(connect, cfg)
    g = gather(connect, cfg, p)
    rec = dict(after)
    for k in ("tuning_log", "run_optimization_calls", "stop_reason", "zones", "replaced_constraints", "optimized_plan"):
        rec[k] = opt[k]
    path = write_report(ReportInputs(p, g.case, rec, organ_limits(g.case, p), before_record=before,
                                     identity=g.identity), str(out / "report.html"))
    mock_tps.unload()
    return path, rec


def test_report_is_self_contained_and_complete(report):
    path, rec = report
    text = open(path, encoding="utf-8").read()
    assert "http://" not in text and "https://" not in text.replace("https://doi", "")   # nothing fetched
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(imgs) == 6                      # 3 DVH plots, 2 slice plots, 1 tuning plot
    for b64 in imgs:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'id="constraints"' in text and "id='tuning'" in text
    # two headlines: protocol constraints, then target coverage with its numbers
    ev = rec["evaluation"]
    head = text.split('<div id="verdict-constraints"')[1].split('<h2>')[0]
    assert ("all pass" if ev["all_pass"] else "FAIL") in head.split("</div>")[0]
    cov = head.split('<div id="verdict-coverage"')[1].split("</div>")[0]
    assert ("goals met" if ev["coverage_goals_met"] else "goals NOT met") in cov
    assert all(f"{g['metric']} {g['value']:.1f}" in cov for g in ev["coverage_goals"])
    assert "value (sub-voxel rule)" in text
    # the source plan's constraints that the copy replaced by limit zones are named
    assert rec["replaced_constraints"] and "id='replaced'" in text
    assert all(c["roi"] in text.split("id='replaced'")[1].split("</p>")[0] for c in rec["replaced_constraints"])
    assert "Phantom^Synthetic" not in text and "PHANTOM-0001" not in text   # no identity unless asked
    assert "Not for clinical use without local validation" in text
    # failures come first in the tables
    table = text.split('<table id="constraints">')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="(pass|fail|advisory)">', table)
    assert rows
    assert rows == sorted(rows, key=lambda c: {"fail": 0, "advisory": 1, "pass": 2}[c])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _ = report
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--virtual-time-budget=10000", "--dump-dom", f"file://{path}"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<title>reirrad report: 6 images, 0 broken</title>" in dom
    assert "Constraints (failures first)" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(common + ["--window-size=1200,2400", f"--screenshot={shot}", f"file://{path}"],
                   capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000     # a rendered page, not a blank one
