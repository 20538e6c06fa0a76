"""``reirrad demo --rs-version``: the coarse demo on the oldest and the newest RayStation profile."""
import json

import pytest

pytest.importorskip("pyRadPlan")

from optimizer.cli.main import main


@pytest.mark.slow
@pytest.mark.parametrize("version", ["11B", "2025"])
def test_demo_all_pass_on_oldest_and_newest_profile(tmp_path, capsys, version):
    code = main(["demo", "--coarse", "--rs-version", version, "--out", str(tmp_path / "demo"), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["all_pass"] is True and d["rs_version"] == version
    assert d["before"]["all_pass"] is False


def test_demo_unknown_version_exits_2(capsys):
    assert main(["demo", "--coarse", "--rs-version", "13C"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rs-version '13C' is unknown" in err[0] and "11B" in err[0]
