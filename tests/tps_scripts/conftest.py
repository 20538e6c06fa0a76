"""Fixtures for the RayStation scripts, run on mock_tps patients."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock_tps"))


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """Records go to a temporary folder; no configuration file unless a test sets one."""
    monkeypatch.setenv("REIRRAD_OUTPUT_DIR", str(tmp_path / "records"))
    monkeypatch.delenv("REIRRAD_CONFIG", raising=False)
    return tmp_path / "records"


@pytest.fixture
def synthetic():
    """The small synthetic patient of tests/mock_tps/_mock_synthetic.py, loaded with an SBRT-only plan."""
    import mock_tps
    from _mock_synthetic import make_phantom_data
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    yield make_phantom_data()
    mock_tps.unload()
