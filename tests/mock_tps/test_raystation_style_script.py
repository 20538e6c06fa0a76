"""A script written only against RayStation's public scripting API runs on the mock.

The script text below uses nothing but ``raystation``/``connect`` names and the
object paths of ``research/raystation_api.md``; it is executed as RayStation's
script console would run it.
"""
from __future__ import annotations

import importlib.util

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data

SCRIPT = r'''
try:
    from raystation import *
except ImportError:
    from connect import *
import numpy as np

try:
    patient = get_current("Patient")
except SystemError:
    raise IOError("No patient loaded.")
case = get_current("Case")
plan = get_current("Plan")
beam_set = get_current("BeamSet")
exam = get_current("Examination")
pm = case.PatientModel
ss = pm.StructureSets[exam.Name]

rx = beam_set.Prescription.PrimaryPrescriptionDoseReference
rx_cgy = rx.DoseValue
target = rx.OnStructure.Name
po = [o for o in plan.PlanOptimizations if beam_set in o.OptimizedBeamSets][0]

oars = []
for roi in pm.RegionsOfInterest:
    if roi.OrganData.OrganType == "OrganAtRisk" and ss.RoiGeometries[roi.Name].HasContours():
        oars.append(roi.Name)

with CompositeAction("rr_ script"):
    f = po.AddOptimizationFunction(FunctionType="MinDose", RoiName=target)
    f.DoseFunctionParameters.DoseLevel = 0.95 * rx_cgy
    f.DoseFunctionParameters.Weight = 50
    f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=target)
    f.DoseFunctionParameters.DoseLevel = 1.07 * rx_cgy
    f.DoseFunctionParameters.Weight = 50
    for name in oars:
        f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=name)
        f.DoseFunctionParameters.DoseLevel = 1200 if "Cord" in name else 2000
        f.DoseFunctionParameters.Weight = 5
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = 60
    po.RunOptimization()

total = plan.TreatmentCourse.TotalDose
if total.DoseValues is None:
    beam_set.ComputeDose(ComputeBeamDoses=True, DoseAlgorithm="CCDose", ForceRecompute=False)
dose = total.DoseValues.DoseData
grid = total.InDoseGrid
mask = ss.RoiGeometries[target].GetRoiGeometryAsVoxels(
    Corner=grid.Corner, VoxelSize=grid.VoxelSize, NrVoxels=grid.NrVoxels).reshape(dose.shape) / 255.0
result = {
    "mean_statistic_cgy": total.GetDoseStatistic(RoiName=target, DoseType="Average"),
    "mean_from_dosedata_cgy": float(np.sum(mask * dose) / np.sum(mask)),
    "d95_cgy": float(total.GetDoseAtRelativeVolumes(RoiName=target, RelativeVolumes=[0.95])[0]),
    "oar_max_cgy": {n: total.GetDoseStatistic(RoiName=n, DoseType="Max") for n in oars},
    "shape": dose.shape,
}
'''


def _run_script() -> dict:
    ns: dict = {"__name__": "__main__"}
    exec(compile(SCRIPT, "raystation_style_script.py", "exec"), ns)
    return ns["result"]


def _check(result: dict) -> None:
    assert result["mean_statistic_cgy"] == pytest.approx(2400.0, abs=120.0)     # 24 Gy ± 5 %
    assert result["mean_from_dosedata_cgy"] == pytest.approx(result["mean_statistic_cgy"], rel=5e-3)
    assert len(result["shape"]) == 3


def test_script_on_synthetic_patient():
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none")
    try:
        result = _run_script()
    finally:
        mock_tps.unload()
    _check(result)
    assert set(result["oar_max_cgy"]) == {"SpinalCord_PRV", "Esophagus"}


def test_script_without_patient_raises_ioerror():
    mock_tps.unload()
    from mock_tps._loader import install_connect_modules
    install_connect_modules()
    with pytest.raises(IOError, match="No patient loaded"):
        _run_script()


_HAVE_PHANTOMS = importlib.util.find_spec("mock_tps._phantoms") is not None
_PHANTOM_NAMES = ("t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses")


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_PHANTOMS, reason="mock_tps._phantoms (phantom builders) not available yet")
@pytest.mark.parametrize("name", _PHANTOM_NAMES)
def test_script_on_builtin_phantom(name):
    if name not in mock_tps.PHANTOMS:
        pytest.skip(f"phantom {name} not registered")
    mock_tps.load_phantom(name, initial_plan="none")
    try:
        result = _run_script()
    finally:
        mock_tps.unload()
    _check(result)
