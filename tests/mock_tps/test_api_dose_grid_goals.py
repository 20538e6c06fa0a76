"""Dose-grid ROIs, in-grid volumes and clinical goals, as a plan-evaluation script reads them.

The phantom is the synthetic one with an *imported* total dose on a small dose grid
(z from -10 to +10 mm, 4 mm voxels), designed so every number below follows by
hand:

- dose 12 Gy where x < 0, else 0 (whole grid);  Cube3cm = box ±15 mm (27 cc), of
  which z ∈ [-10, 10] lies in the grid: 30 × 30 × 20 mm = 18 cc; its x < 0 half:
  15 × 30 × 20 mm = 9 cc.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mock_tps
from _mock_synthetic import make_phantom_data
from mock_tps._phantom_data import GridSpec

SMALL_GRID = GridSpec(corner_mm=(-40.0, -40.0, -10.0), spacing_xyz_mm=(4.0, 4.0, 4.0), shape_zyx=(5, 20, 20))
#: The same, shifted 2 mm so that voxel edges fall on ±10 mm (Cube2cm is 5 × 5 × 5 whole voxels).
ALIGNED_GRID = GridSpec(corner_mm=(-42.0, -42.0, -10.0), spacing_xyz_mm=(4.0, 4.0, 4.0), shape_zyx=(5, 21, 21))


def _load(dose_gy, version="2024A", grid=SMALL_GRID):
    data = dataclasses.replace(make_phantom_data(), dose_grid=grid, influence_gy=None,
                               beamlet_beam_index=np.zeros(0, dtype=int), prior_courses=(),
                               plan_dose_gy=dose_gy)
    mock_tps.load_patient_data(data, initial_plan="none", rs_version=version)
    import importlib
    return importlib.import_module(mock_tps.RS_VERSIONS[version].module_name)


@pytest.fixture(autouse=True)
def _unload():
    yield
    mock_tps.unload()


def _half_dose():
    x, _, _ = SMALL_GRID.centres_mm()
    d = np.zeros(SMALL_GRID.shape_zyx)
    d[:, :, x < 0] = 12.0
    return d


def test_dose_grid_roi_is_the_in_grid_part():
    api = _load(_half_dose())
    plan = api.get_current("Plan")
    case = api.get_current("Case")
    exam = api.get_current("Examination")
    dose = plan.TreatmentCourse.TotalDose
    dgr = dose.GetDoseGridRoi(RoiName="Cube3cm")
    rvd = dgr.RoiVolumeDistribution
    assert case.PatientModel.StructureSets[exam.Name].RoiGeometries["Cube3cm"].GetRoiVolume() == pytest.approx(27.0)
    assert rvd.TotalVolume == pytest.approx(18.0)          # 3 × 3 × 2 cm inside the grid
    assert rvd.RelativeVolumes.sum() == pytest.approx(1.0)
    # a script's own DVH from the distribution: V12Gy = 9 cc (the x < 0 half)
    data = dose.DoseValues.DoseData.ravel()
    v12 = float(np.sum(rvd.RelativeVolumes[data[rvd.VoxelIndices] >= 1200.0]) * rvd.TotalVolume)
    assert v12 == pytest.approx(9.0)
    assert dgr.InDoseGrid.NrVoxels.z == 5
    assert dgr.OfRoiGeometry.OfRoi.Name == "Cube3cm"


def test_absolute_volume_goals_use_the_in_grid_volume():
    api = _load(_half_dose())
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    v = es.AddClinicalGoal(RoiName="Cube3cm", GoalCriteria="AtMost", GoalType="AbsoluteVolumeAtDose",
                           PrimaryAcceptanceLevel=10.0, ParameterValue=1200.0)
    # 0.5 of the 18 cc in the grid = 9 cc (not 0.5 × 27 cc = 13.5 cc of the whole contour)
    assert v.GetClinicalGoalValue() == pytest.approx(9.0)
    assert v.EvaluateClinicalGoal() is True
    d = es.AddClinicalGoal(RoiName="Cube3cm", GoalCriteria="AtMost", GoalType="DoseAtAbsoluteVolume",
                           PrimaryAcceptanceLevel=1300.0, ParameterValue=8.9)
    assert d.GetClinicalGoalValue() == pytest.approx(1200.0)   # 8.9 of 18 cc < the 9 cc at 12 Gy
    d2 = es.AddClinicalGoal(RoiName="Cube3cm", GoalCriteria="AtMost", GoalType="DoseAtAbsoluteVolume",
                            PrimaryAcceptanceLevel=1300.0, ParameterValue=9.2)
    assert d2.GetClinicalGoalValue() == pytest.approx(0.0)


def test_roi_wholly_outside_the_grid_is_refused():
    # a grid from y = -12 mm up: the esophagus (cylinder r 6 mm at y = -20 mm) lies wholly outside it
    grid = GridSpec(corner_mm=(-40.0, -12.0, -10.0), spacing_xyz_mm=(4.0, 4.0, 4.0), shape_zyx=(5, 13, 20))
    api = _load(np.full(grid.shape_zyx, 5.0), grid=grid)
    dose = api.get_current("Plan").TreatmentCourse.TotalDose
    with pytest.raises(mock_tps.InvalidOperationException, match="'Esophagus' has no geometry on the dose grid"):
        dose.GetDoseGridRoi(RoiName="Esophagus")
    with pytest.raises(mock_tps.InvalidOperationException, match="no geometry on the dose grid"):
        dose.GetDoseStatistic(RoiName="Esophagus", DoseType="Max")
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    g = es.AddClinicalGoal(RoiName="Esophagus", GoalCriteria="AtMost", GoalType="DoseAtAbsoluteVolume",
                           PrimaryAcceptanceLevel=2000.0, ParameterValue=0.035)
    with pytest.raises(mock_tps.InvalidOperationException):
        g.EvaluateClinicalGoal()        # never a pass for an ROI the dose grid does not reach
    assert dose.GetDoseStatistic(RoiName="SpinalCord_PRV", DoseType="Max") == pytest.approx(500.0)


def test_conformity_and_homogeneity_index_goals():
    # 20 Gy on Cube2cm (±10 mm, 125 voxels of 4 mm) except 19 Gy in its z ∈ [-10, -6] slab (25 voxels,
    # 20 %); 20 Gy also in the slab x ∈ [10, 14] beside it (5 × 5 = 25 voxels).
    x, y, z = ALIGNED_GRID.centres_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    inside = (np.abs(xx) < 10) & (np.abs(yy) < 10) & (np.abs(zz) < 10)
    beside = (xx > 10) & (xx < 14) & (np.abs(yy) < 10) & (np.abs(zz) < 10)
    assert inside.sum() == 125 and beside.sum() == 25
    d = np.zeros(ALIGNED_GRID.shape_zyx)
    d[inside | beside] = 20.0
    d[inside & (zz < -6)] = 19.0
    api = _load(d, version="11B", grid=ALIGNED_GRID)
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    hi = es.AddClinicalGoal(RoiName="Cube2cm", GoalCriteria="AtLeast", GoalType="HomogeneityIndex",
                            AcceptanceLevel=0.95, ParameterValue=0.98)
    # D98 / D2 = 19 Gy / 20 Gy
    assert hi.GetClinicalGoalValue() == pytest.approx(0.95)
    assert hi.PlanningGoal.AcceptanceLevel == 0.95
    ci = es.AddClinicalGoal(RoiName="Cube2cm", GoalCriteria="AtLeast", GoalType="ConformityIndex",
                            AcceptanceLevel=0.9, ParameterValue=1900.0)
    # ROI volume at >= 19 Gy (125 voxels) over grid volume at >= 19 Gy (125 + 25 voxels)
    assert ci.GetClinicalGoalValue() == pytest.approx(125.0 / 150.0)
    assert ci.EvaluateClinicalGoal() is False
    with pytest.raises(mock_tps.ArgumentException, match="HomogeneityIndex ParameterValue is a fraction"):
        es.AddClinicalGoal(RoiName="Cube2cm", GoalCriteria="AtLeast", GoalType="HomogeneityIndex",
                           AcceptanceLevel=0.95, ParameterValue=98)
