"""Fixtures of the trust suites (bad-input catalog, fuzzing, soundness, audit records,
fault injection).  Each suite adds what it measured with ``_trust.record_count``; the
session prints the counts at the end (``pytest -s`` also shows each suite's own line)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (HERE, os.path.join(HERE, "..", "mock_tps"), os.path.join(HERE, "..", "tps_scripts")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _trust import COUNTS  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.write_sep("-", "reirrad trust counts")
        for k in sorted(COUNTS):
            terminalreporter.write_line(f"{k}: {COUNTS[k]}")


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """Records go to a temporary folder; no configuration file unless a test sets one."""
    monkeypatch.setenv("REIRRAD_OUTPUT_DIR", str(tmp_path / "records"))
    monkeypatch.delenv("REIRRAD_CONFIG", raising=False)
    return tmp_path / "records"
