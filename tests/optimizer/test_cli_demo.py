"""``reirrad demo``: the README's main job, on the coarse phantom."""
import json
import os

import pytest

pytest.importorskip("pyRadPlan")

from optimizer.cli.main import main


@pytest.mark.slow
def test_demo_json(tmp_path, capsys):
    code = main(["demo", "--coarse", "--out", str(tmp_path / "demo"), "--json"])
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert code == 0 and d["all_pass"] is True and d["phantom"] == "t4t5_esophageal"
    assert set(d) >= {"phantom", "all_pass", "coverage_goals_met", "run_optimization_calls", "ptv_eval",
                      "constraints", "report"}
    # coverage is its own headline: the coarse T4-T5 tuned plan meets its limits, not its coverage goals
    assert d["coverage_goals_met"] is False and d["ptv_eval"]["v24gy_percent"] < 90.0
    text = open(d["report"], encoding="utf-8").read()
    assert 'id="verdict-constraints" class="banner ok"' in text and "Target coverage: goals NOT met" in text
    assert d["gtv"] and {"roi", "d98_gy", "d95_gy", "dmin_gy"} <= set(d["gtv"][0])
    assert set(d["ptv_eval"]) == {"v24gy_percent", "d95_gy"}
    assert all(set(c) == {"roi", "metric", "domain", "limit", "value", "pass"} for c in d["constraints"])
    assert os.path.exists(d["report"])
    assert d["before"]["all_pass"] is False                      # the SBRT-only plan breaches cumulative limits
    assert "optimization 1: PTVeval V24Gy" in err                # progress is visible


def test_demo_bad_phantom_exits_2(capsys):
    assert main(["demo", "--phantom", "l5_lumbar"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--phantom 'l5_lumbar' is unknown" in err[0]


@pytest.mark.slow
def test_demo_interrupted_with_ctrl_c_prints_no_traceback(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    # the full-size phantom: interrupted 1 s after its first progress line (the phantom build,
    # which takes several seconds even with cached dose matrices)
    # SIGINT back to its default in the child: a test run started in the background (CI) ignores
    # SIGINT, the child would inherit that, and Python would then never raise KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "optimizer.cli.main", "demo", "--max-optimizations", "1", "--out",
                             str(tmp_path / "demo")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    err = first + err
    # the build alone takes tens of seconds even with cached matrices: any other status means
    # the interrupt was lost (a finished demo, status 0 or 1)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "reirrad: interrupted"
