"""Shared set-up of the mock's API tests."""
from __future__ import annotations

import importlib

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data


@pytest.fixture
def load_synthetic():
    """``load_synthetic(version, initial_plan="none")``: load the synthetic phantom as RayStation
    ``version`` and return that version's scripting module (``connect`` or ``raystation``); the
    patient is unloaded after the test."""
    def load(version: str, initial_plan: str = "none"):
        mock_tps.load_patient_data(make_phantom_data(), initial_plan=initial_plan, rs_version=version)
        return importlib.import_module(mock_tps.RS_VERSIONS[version].module_name)

    yield load
    mock_tps.unload()
