"""Optimization functions and their report, as an optimization-report script reads them."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import mock_tps
from _mock_synthetic import make_phantom_data
from mock_tps._uniformity import relative_std_percent, uniformity_penalty


@pytest.fixture()
def api():
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version="2023B")
    yield importlib.import_module("connect")
    mock_tps.unload()


def _ptv_geud_gy(api, a):
    """gEUD (Gy) of PTVeval's total dose with the coverage × voxel-volume weights the optimizer uses."""
    bs = api.get_current("BeamSet")
    rvd = bs.FractionDose.GetDoseGridRoi(RoiName="PTVeval").RoiVolumeDistribution
    total_gy = api.get_current("Plan").TreatmentCourse.TotalDose.DoseValues.DoseData.ravel() / 100.0
    d = total_gy[rvd.VoxelIndices]
    return float(rvd.RelativeVolumes @ d ** a) ** (1.0 / a)


def test_function_values_target_eud_and_treatment_setup(api):
    plan = api.get_current("Plan")
    po = plan.PlanOptimizations[0]
    ts = po.OptimizationParameters.TreatmentSetupSettings[0]
    assert ts.ForTreatmentSetup is api.get_current("BeamSet")
    assert [s.ForBeam.Name for s in ts.BeamSettings] == ["B1", "B2", "B3"]
    assert ts.BeamSettings[0].ArcConversionPropertiesPerBeam is None      # static beams
    eud = po.AddOptimizationFunction(FunctionType="TargetEud", RoiName="PTVeval", IsConstraint=False,
                                     RestrictAllBeamsIndividually=False, RestrictToBeams=None, IsRobust=False,
                                     RestrictToBeamSet=None, UseRbeDose=False)
    eud.DoseFunctionParameters.DoseLevel = 2400
    eud.DoseFunctionParameters.EudParameterA = 1
    eud.DoseFunctionParameters.Weight = 10
    assert eud.DoseFunctionParameters.FunctionType == "UniformEud"          # read back as RayStation does
    mx = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus")
    mx.DoseFunctionParameters.DoseLevel = 500
    assert po.Objective.FunctionValue is None and eud.FunctionValue is None
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = 8
    po.RunOptimization()
    # TargetEud = (E − D)², E the gEUD in Gy, D = 24 Gy
    e = _ptv_geud_gy(api, 1.0)
    assert eud.FunctionValue.FunctionValue == pytest.approx((e - 24.0) ** 2, rel=1e-6)
    total = 10 * eud.FunctionValue.FunctionValue + 1 * mx.FunctionValue.FunctionValue
    assert po.Objective.FunctionValue.FunctionValue == pytest.approx(total)
    np.testing.assert_allclose(po.ProgressOfOptimization.FunctionValues,
                               [eud.FunctionValue.FunctionValue, mx.FunctionValue.FunctionValue])
    assert po.ProgressOfOptimization.ObjectiveValues.size == po.ProgressOfOptimization.Iterations.size
    po.ResetOptimization()
    assert po.Objective.FunctionValue is None


def _ptv_relative_std_percent(api):
    """Relative standard deviation (%) of PTVeval's total dose, volume-weighted as the optimizer does."""
    bs = api.get_current("BeamSet")
    rvd = bs.FractionDose.GetDoseGridRoi(RoiName="PTVeval").RoiVolumeDistribution
    total_gy = api.get_current("Plan").TreatmentCourse.TotalDose.DoseValues.DoseData.ravel() / 100.0
    return relative_std_percent(total_gy[rvd.VoxelIndices], np.asarray(rvd.RelativeVolumes))[0]


def test_uniformity_constraint_api_and_optimization(api):
    po = api.get_current("Plan").PlanOptimizations[0]
    with pytest.raises(mock_tps.ArgumentException, match="IsConstraint=True"):
        po.AddOptimizationFunction(FunctionType="UniformityConstraint", RoiName="PTVeval")
    u = po.AddOptimizationFunction(FunctionType="UniformityConstraint", RoiName="PTVeval", IsConstraint=True)
    p = u.DoseFunctionParameters
    assert not hasattr(p, "FunctionType")          # as DoseFallOff: no FunctionType attribute
    p.PercentStdDeviation = 3
    assert p.PercentStdDeviation == 3.0
    with pytest.raises(mock_tps.ArgumentException):
        p.PercentStdDeviation = 0
    # MinDose 24 Gy alone leaves PTVeval's dose spread by 2.7 % (measured); the constraint holds it at 2 %
    target = po.AddOptimizationFunction(FunctionType="MinDose", RoiName="PTVeval")
    target.DoseFunctionParameters.DoseLevel = 2400
    u.DeleteFunction()
    po.RunOptimization()
    free_spread = _ptv_relative_std_percent(api)
    assert free_spread > 2.5
    u = po.AddOptimizationFunction(FunctionType="UniformityConstraint", RoiName="PTVeval", IsConstraint=True)
    u.DoseFunctionParameters.PercentStdDeviation = 2
    po.RunOptimization()
    result = po._mock_last_result
    assert result.constraint_satisfied[-1], result.message
    # met within the optimizer's tolerance, read here in percentage points (0.05)
    assert _ptv_relative_std_percent(api) <= 2.0 + 0.05
    assert u.FunctionValue.FunctionValue == pytest.approx(0.0, abs=0.05 ** 2)


def test_uniformity_value_and_gradient():
    # d = (1, 3) Gy, equal weights: mean 2, sigma 1, r = 50 %; s = 40 % → f = 10² = 100
    r, _ = relative_std_percent(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    assert r == pytest.approx(50.0)
    f, _ = uniformity_penalty(np.array([1.0, 3.0]), np.array([2.0, 2.0]), 40.0)
    assert f == pytest.approx(100.0)
    assert uniformity_penalty(np.array([1.0, 3.0]), np.array([1.0, 1.0]), 60.0)[0] == 0.0
    rng = np.random.default_rng(3)
    d = rng.uniform(20, 26, 30)
    w = rng.uniform(0.2, 1.0, 30)
    f0, g = uniformity_penalty(d, w, 2.0)
    h = 1e-6
    fd = np.array([(uniformity_penalty(d + h * e, w, 2.0)[0] - uniformity_penalty(d - h * e, w, 2.0)[0]) / (2 * h)
                   for e in np.eye(d.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError):
        relative_std_percent(np.array([0.0, 0.0]), np.array([1.0, 1.0]))
