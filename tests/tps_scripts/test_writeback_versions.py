"""reirrad's writes use the spelling of the running RayStation version, read as public scripts read it."""
from __future__ import annotations

import importlib

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data  # tests/mock_tps is on sys.path (conftest)
from tps_scripts import writeback


@pytest.fixture(autouse=True)
def _unload():
    yield
    mock_tps.unload()


def _load(version, gui=False):
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version=version, gui=gui)
    return importlib.import_module(mock_tps.RS_VERSIONS[version].module_name)


@pytest.mark.parametrize("text, major", [("12.0.100.0", 12), ("7.99.3.2", 8), ("10.0.1.52", 10), ("", None),
                                         ("RayStation", None)])
def test_major_version_recipe(text, major):
    assert writeback._major_from_version_string(text) == major


@pytest.mark.parametrize("version", ["11B", "12A", "2023B", "2024A", "2024B", "2025"])
@pytest.mark.parametrize("gui", [False, True])
def test_goal_and_function_spelling_per_version(version, gui):
    api = _load(version, gui=gui)
    assert writeback.application_major_version(api) == mock_tps.RS_VERSIONS[version].major
    plan = api.get_current("Plan")
    g = writeback.add_clinical_goal(plan.TreatmentCourse.EvaluationSetup, "PTVeval", "AtLeast", "VolumeAtDose",
                                    0.9, parameter_value=2400.0)
    old = mock_tps.RS_VERSIONS[version].major < writeback.PRIMARY_ACCEPTANCE_LEVEL_SINCE
    assert getattr(g.PlanningGoal, "AcceptanceLevel" if old else "PrimaryAcceptanceLevel") == 0.9
    f = writeback.add_function(plan.PlanOptimizations[0], "MaxDose", "Esophagus", dose_level_gy=12.0)
    assert f.DoseFunctionParameters.DoseLevel == 1200.0


def test_unreadable_version_falls_back_to_an_existing_goal(monkeypatch):
    api = _load("11B")
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose", AcceptanceLevel=2000.0)
    monkeypatch.setattr(writeback, "application_major_version", lambda api=None: None)
    g = writeback.add_clinical_goal(es, "PTVeval", "AtLeast", "AverageDose", 2100.0)
    assert g.PlanningGoal.AcceptanceLevel == 2100.0
    f = writeback.add_function(api.get_current("Plan").PlanOptimizations[0], "MaxDose", "Esophagus",
                               dose_level_gy=12.0)     # no Restrict* argument at all
    assert f.DoseFunctionParameters.DoseLevel == 1200.0


def test_unreadable_version_and_no_goal_tries_the_new_spelling_then_the_old(monkeypatch):
    api = _load("2023B")
    monkeypatch.setattr(writeback, "application_major_version", lambda api=None: None)
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    g = writeback.add_clinical_goal(es, "PTVeval", "AtLeast", "AverageDose", 2100.0)
    assert g.PlanningGoal.AcceptanceLevel == 2100.0
    with pytest.raises(mock_tps.ArgumentException, match="ROI 'Nope' does not exist"):
        writeback.add_clinical_goal(es, "Nope", "AtLeast", "AverageDose", 2100.0)   # other errors propagate
