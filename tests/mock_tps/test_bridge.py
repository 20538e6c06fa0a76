"""The bridge rules of RayStation's scripting API, as the mock reproduces them."""
from __future__ import annotations

import importlib
import logging
import subprocess
import sys

import pytest

import mock_tps
from mock_tps import connect
from _mock_synthetic import make_phantom_data


@pytest.fixture
def patient():
    p = mock_tps.load_patient_data(make_phantom_data(), initial_plan="none")
    yield p
    mock_tps.unload()


@pytest.mark.parametrize("kind", ["Patient", "Case", "Plan", "BeamSet", "Examination"])
def test_get_current_before_load_raises_system_error(kind):
    mock_tps.unload()
    with pytest.raises(SystemError):
        connect.get_current(kind)


def test_get_current_after_load(patient):
    assert connect.get_current("Patient") is patient
    case = connect.get_current("Case")
    assert case is patient.Cases["CASE 1"]
    assert connect.get_current("Examination") is case.Examinations["CT 1"]
    assert connect.get_current("Plan") is case.TreatmentPlans["SBRT"]
    assert connect.get_current("BeamSet") is case.TreatmentPlans["SBRT"].BeamSets["SBRT"]
    with pytest.raises(SystemError):
        connect.get_current("NotAType")


def test_unload_then_system_error(patient):
    mock_tps.unload()
    with pytest.raises(SystemError):
        connect.get_current("Patient")


def test_connect_module_up_to_2024b_raystation_module_in_2025(patient):
    # the portable import of public scripts: try raystation (2025), else connect
    portable = "try:\n    from raystation import *\nexcept ImportError:\n    from connect import *\n"
    assert importlib.import_module("connect") is connect
    with pytest.raises(ImportError):
        importlib.import_module("raystation")
    ns: dict = {}
    exec(portable, ns)
    assert ns["get_current"]("Patient") is patient and "CompositeAction" in ns
    assert ns["np"].zeros(2).shape == (2,)          # as RayStation's connect: numpy comes along as np
    p2025 = mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version="2025")
    assert importlib.import_module("raystation") is connect
    with pytest.raises(ImportError):
        importlib.import_module("connect")
    ns = {}
    exec(portable, ns)
    assert ns["get_current"]("Patient") is p2025


def test_positional_arguments_raise_type_error(patient):
    pm = patient.Cases[0].PatientModel
    with pytest.raises(TypeError, match=r"^Method must be called with named arguments\.$"):
        pm.GetUniqueRoiName("PTVeval")
    dose = patient.Cases[0].TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations[0].DoseEvaluations[0]
    with pytest.raises(TypeError, match="named arguments"):
        dose.GetDoseStatistic("PTVeval", "Max")
    assert dose.GetDoseStatistic(RoiName="PTVeval", DoseType="Max") == pytest.approx(1000.0)


def test_unknown_keyword_raises_type_error(patient):
    with pytest.raises(TypeError):
        patient.Cases[0].PatientModel.GetUniqueRoiName(Name="x")


def test_collection_protocol(patient):
    rois = patient.Cases[0].PatientModel.RegionsOfInterest
    names = ["External", "PTVeval", "SpinalCord_PRV", "Esophagus", "Cube3cm", "Cube2cm"]
    assert rois.Count == len(rois) == 6
    assert [r.Name for r in rois] == names
    assert rois.Keys == names and rois.keys() == names
    assert rois[1] is rois["PTVeval"] is rois[-5]
    assert rois._SpinalCord_PRV is rois["SpinalCord_PRV"]
    assert patient.Cases._CASE_1 is patient.Cases[0]


def test_collection_missing_name_and_position_raise_index_error(patient):
    case = patient.Cases[0]
    with pytest.raises(IndexError):
        case.Examinations["CT 2"]
    with pytest.raises(IndexError):
        case.PatientModel.RegionsOfInterest["ptveval"]  # names are case-sensitive for lookup
    with pytest.raises(IndexError):
        case.TreatmentPlans[5]


def test_collection_membership_is_object_membership(patient):
    rois = patient.Cases[0].PatientModel.RegionsOfInterest
    assert rois["PTVeval"] in rois
    assert "PTVeval" not in rois


def test_missing_attribute_raises_attribute_error(patient):
    case = patient.Cases[0]
    with pytest.raises(AttributeError):
        case.NoSuchThing
    assert not hasattr(case.PatientModel.RegionsOfInterest, "NoSuchThing")
    roi = case.PatientModel.RegionsOfInterest["PTVeval"]
    with pytest.raises(AttributeError):
        roi.Nmae = "x"                       # typo: refused, not silently added
    with pytest.raises(AttributeError, match="read-only"):
        roi.OrganData = None


def test_dose_fall_off_has_no_function_type(patient):
    po = patient.Cases[0].TreatmentPlans[0].PlanOptimizations[0]
    f = po.AddOptimizationFunction(FunctionType="DoseFallOff", RoiName="External")
    g = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus")
    assert not hasattr(f.DoseFunctionParameters, "FunctionType")
    assert hasattr(f.DoseFunctionParameters, "HighDoseLevel")
    assert g.DoseFunctionParameters.FunctionType == "MaxDose"
    assert not hasattr(g.DoseFunctionParameters, "HighDoseLevel")


def test_arrays_are_copies(patient):
    ev = patient.Cases[0].TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations["CT 1"].DoseEvaluations[0]
    data = ev.DoseValues.DoseData
    data[:] = 0.0
    assert ev.DoseValues.DoseData.max() == pytest.approx(1000.0)
    stack = patient.Cases[0].Examinations[0].Series[0].ImageStack
    px = stack.PixelData
    px[:] = 0
    assert stack.PixelData.any()


def test_expando_points_read_both_ways_and_are_copies(patient):
    grid = patient.Cases[0].TreatmentPlans[0].TreatmentCourse.TotalDose.InDoseGrid
    c = grid.Corner
    assert c.x == c["x"] == pytest.approx(-4.0)
    c.x = 99.0
    c["y"] = 99.0
    assert grid.Corner.x == pytest.approx(-4.0) and grid.Corner.y == pytest.approx(-4.0)
    with pytest.raises(AttributeError):
        c.w


def test_set_progress_range(caplog):
    with caplog.at_level(logging.INFO, logger="mock_tps._bridge"):
        connect.set_progress("half way", percentage=50)
        connect.set_progress("unknown")
    assert "half way" in caplog.text
    for bad in (-2, 101):
        with pytest.raises(ValueError):
            connect.set_progress("x", percentage=bad)


def test_await_user_input_and_gui(caplog, patient):
    # no GUI (the default): RayStation's bridge refuses GUI calls with this message
    assert connect.is_gui_disabled() is True
    with pytest.raises(Exception, match="await_user_input has been disabled because the script is running with no GUI"):
        connect.await_user_input("Check the ROIs")
    with pytest.raises(Exception, match=r"get_current\(ui\) has been disabled"):
        connect.get_current("ui")
    from mock_tps._bridge import _session
    _session().gui = True
    try:
        with caplog.at_level(logging.INFO, logger="mock_tps._bridge"):
            assert connect.await_user_input("Check the ROIs") is None
        assert "Check the ROIs" in caplog.text
        assert connect.is_gui_disabled() is False
        assert connect.get_current("ui").GetApplicationVersion() == mock_tps.RS_VERSIONS["2024A"].application_version
    finally:
        _session().gui = False


def test_patient_save_counts(patient):
    patient.Save()
    assert patient._mock_save_count == 1


def test_import_mock_tps_is_light():
    code = ("import sys, mock_tps; "
            "print(any(m in sys.modules for m in ('scipy', 'mock_tps._phantoms', 'mock_tps.dose_engine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_phantoms_lists_builders():
    pytest.importorskip("mock_tps._phantoms")
    names = mock_tps.PHANTOMS
    assert isinstance(names, tuple)
    assert {"t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses"} <= set(names)


def test_unknown_phantom_is_named():
    pytest.importorskip("mock_tps._phantoms")
    with pytest.raises(mock_tps.ArgumentException, match="no_such_phantom"):
        mock_tps.load_phantom("no_such_phantom")
