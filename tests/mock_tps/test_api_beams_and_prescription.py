"""Beam doses, monitor units and prescription scaling, as plan-check scripts read them.

Synthetic phantom: 3 beams; beamlet j belongs to beam j mod 3; influence A (Gy per
fraction per unit weight); 2 fractions; prescription 24 Gy to PTVeval (D90).
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import mock_tps
from _mock_synthetic import make_phantom_data


def _load(version):
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version=version)
    api = importlib.import_module(mock_tps.RS_VERSIONS[version].module_name)
    api.get_current("BeamSet").ComputeDose(RunEntryValidation=True)
    return api


@pytest.fixture(autouse=True)
def _unload():
    yield
    mock_tps.unload()


def test_beam_doses_add_up_to_the_fraction_dose():
    api = _load("2025")
    bs = api.get_current("BeamSet")
    fd = bs.FractionDose
    doses = [bd.DoseValues.DoseData for bd in fd.BeamDoses]
    assert [bd.ForBeam.Name for bd in fd.BeamDoses] == ["B1", "B2", "B3"]
    np.testing.assert_allclose(sum(doses), fd.DoseValues.DoseData, rtol=1e-12, atol=1e-9)
    assert all(d.max() > 0 for d in doses)
    assert fd.OnDensity.FromExamination is api.get_current("Examination")
    assert fd.BeamDoses[1].GetDoseStatistic(RoiName="PTVeval", DoseType="Max") == pytest.approx(
        doses[1].ravel()[fd.GetDoseGridRoi(RoiName="PTVeval").RoiVolumeDistribution.VoxelIndices].max())


def test_beam_mu_model_and_setting_it():
    api = _load("2024A")
    bs = api.get_current("BeamSet")
    data = make_phantom_data()
    a = data.influence_gy
    w = bs._weights            # uniform weights (the loader's initial plan)
    assert np.ptp(w) == 0
    for b, beam in enumerate(bs.Beams):
        cols = np.flatnonzero(data.beamlet_beam_index == b)
        open_field_max_gy = np.asarray(a[:, cols].sum(axis=1)).max()
        # MU = mean weight × open-field dose maximum (cGy) per unit weight
        assert beam.BeamMU == pytest.approx(w[0] * open_field_max_gy * 100.0)
    before = [bd.DoseValues.DoseData for bd in bs.FractionDose.BeamDoses]
    mu0 = bs.Beams[0].BeamMU
    bs.Beams[0].BeamMU = 2 * mu0
    assert bs.Beams[0].BeamMU == pytest.approx(2 * mu0)
    after = [bd.DoseValues.DoseData for bd in bs.FractionDose.BeamDoses]
    np.testing.assert_allclose(after[0], 2 * before[0], rtol=1e-12)
    np.testing.assert_allclose(after[1], before[1], rtol=1e-12)
    with pytest.raises(ValueError):
        bs.Beams[0].BeamMU = float("nan")


def test_scale_to_primary_prescription():
    api = _load("11B")
    bs = api.get_current("BeamSet")
    rx = bs.Prescription.PrimaryPrescriptionDoseReference
    assert (rx.PrescriptionType, rx.DoseVolume, rx.DoseValue, rx.OnStructure.Name) == ("DoseAtVolume", 90.0,
                                                                                       2400.0, "PTVeval")
    total = api.get_current("Plan").TreatmentCourse.TotalDose
    d90_before = total.GetDoseAtRelativeVolumes(RoiName="PTVeval", RelativeVolumes=[0.9])[0]
    w_before = bs._weights.copy()
    bs.ScaleToPrimaryPrescriptionDoseReference(LockedBeamNames=None,
                                               EvaluateOptimizationFunctionsAfterScaling=True)
    assert total.GetDoseAtRelativeVolumes(RoiName="PTVeval", RelativeVolumes=[0.9])[0] == pytest.approx(2400.0)
    np.testing.assert_allclose(bs._weights, w_before * 2400.0 / d90_before)   # a uniform rescale


def test_normalize_to_prescription_before_11a():
    api = _load("10B")
    bs = api.get_current("BeamSet")
    bs.NormalizeToPrescription(RoiName="PTVeval", DoseValue=2000.0, DoseVolume=50.0,
                               PrescriptionType="DoseAtVolume")
    total = api.get_current("Plan").TreatmentCourse.TotalDose
    assert total.GetDoseAtRelativeVolumes(RoiName="PTVeval", RelativeVolumes=[0.5])[0] == pytest.approx(2000.0)
    bs.AddDosePrescriptionToRoi(RoiName="PTVeval", DoseVolume=0, PrescriptionType="AverageDose", DoseValue=2200.0,
                                RelativePrescriptionLevel=1, AutoScaleDose=True)
    assert bs.Prescription.PrimaryDosePrescription.PrescriptionType == "AverageDose"
    assert total.GetDoseStatistic(RoiName="PTVeval", DoseType="Average") == pytest.approx(2200.0)
    with pytest.raises(mock_tps.ArgumentException, match="PrescriptionType 'NearMinimumDose' is not modelled"):
        bs.NormalizeToPrescription(RoiName="PTVeval", DoseValue=2000.0, PrescriptionType="NearMinimumDose")


def test_machine_setup_and_modification_info():
    api = _load("11B")
    bs = api.get_current("BeamSet")
    machine = api.get_current("MachineDB").GetTreatmentMachine(machineName=bs.MachineReference.MachineName,
                                                               lockMode=None)
    assert machine.Name == bs.MachineReference.MachineName
    infos = api.get_current("MachineDB").QueryCommissionedMachineInfo(Filter={"IsCommissioned": True,
                                                                             "IsDeprecated": False})
    assert [m["Name"] for m in infos] == [machine.Name]
    with pytest.raises(mock_tps.ArgumentException, match="No treatment machine"):
        api.get_current("MachineDB").GetTreatmentMachine(machineName="Other")
    assert bs.PatientSetup.UseSetupBeams is False and bs.PatientSetup.SetupBeams.Count == 0
    for obj in (api.get_current("Patient"), api.get_current("Plan"), bs):
        assert obj.ModificationInfo.SoftwareVersion == "12.0.0.0"   # 11B


def test_patient_db_query_and_load():
    api = _load("2024A")
    db = api.get_current("PatientDB")
    infos = db.QueryPatientInfo(Filter={"PatientID": "PHANTOM-0001"}, UseIndexService=False)
    assert len(infos) == 1 and infos[0]["LastName"] == "Phantom"
    assert db.QueryPatientInfo(Filter={"PatientID": "SOMEONE-ELSE"}) == []
    patient = db.LoadPatient(PatientInfo=infos[0], AllowPatientUpgrade=True)
    assert patient is api.get_current("Patient")
    with pytest.raises(mock_tps.ArgumentException, match="Unknown filter key"):
        db.QueryPatientInfo(Filter={"Surname": "x"})


def test_ui_needs_a_gui_and_gives_the_application_version():
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version="11B", gui=True)
    import connect
    ui = connect.get_current("ui")
    # the public recipe: major, +1 when the minor is 99
    parts = ui.GetApplicationVersion().split(".")
    version = int(parts[0]) if int(parts[1]) != 99 else int(parts[0]) + 1
    assert version == 12
    ui.TitleBar.MenuItem["Plan optimization"].Button_Plan_optimization.Click()
    from mock_tps._bridge import _session
    assert _session().databases["ui"]._log == ["ui.TitleBar.MenuItem['Plan optimization']."
                                               "Button_Plan_optimization.Click()"]
