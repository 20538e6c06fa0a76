"""Reference doses (RayStation 2025): AddCustomEvaluationDose and MaxRefDose, as a script uses them."""
from __future__ import annotations

import numpy as np
import pytest

import mock_tps
from mock_tps._api import ScriptArgumentError
from mock_tps._reference_dose import max_ref_dose_spec
from mock_tps._tps_optimizer import FunctionSpec, constraint_violation_gy, penalty_value_and_dose_gradient


def _grid_args(bs):
    g = bs.FractionDose.InDoseGrid
    return dict(DoseGridNumberOfVoxels=g.NrVoxels, DoseGridVoxelSize=g.VoxelSize, DoseGridCorner=g.Corner)


def _add_dose(api, name, values_cgy):
    case, bs = api.get_current("Case"), api.get_current("BeamSet")
    case.AddCustomEvaluationDose(Name=name, ExaminationName=api.get_current("Examination").Name,
                                 ReferencedBeamSet=bs, FractionDoseValues=values_cgy, IsRbeDose=False,
                                 **_grid_args(bs))
    doe = case.TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations[0]
    return [d for d in doe.DoseEvaluations if d.Name == name][0]


@pytest.mark.parametrize("version", list(mock_tps.RS_VERSIONS))
def test_reference_functions_exist_only_in_2025(version, load_synthetic):
    api = load_synthetic(version)
    po = api.get_current("Plan").PlanOptimizations[0]
    case = api.get_current("Case")
    present = version == "2025"
    assert hasattr(po, "AddReferenceOptimizationFunction") is present
    assert hasattr(case, "AddCustomEvaluationDose") is present
    assert hasattr(po, "AddOptimizationFunction")
    if not present:
        with pytest.raises(AttributeError):
            po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=None,
                                                RoiName="Esophagus")


def test_custom_evaluation_dose_is_a_fraction_dose_of_the_beam_set(load_synthetic):
    api = load_synthetic("2025")
    bs = api.get_current("BeamSet")
    n = bs.FractionDose.InDoseGrid.NrVoxels
    values = np.arange(n.x * n.y * n.z, dtype=float) % 7          # cGy per fraction, x fastest
    dose = _add_dose(api, "rr_ref_test", values)
    assert dose.ForBeamSet is bs and dose.CustomDoseProperties.IsRbeDose is False
    np.testing.assert_array_equal(dose.DoseValues.DoseData.ravel(), values)
    assert dose.DoseValues.DoseData.shape == (n.z, n.y, n.x)
    dose.SetDoseValues(Dose=values * 2)
    np.testing.assert_array_equal(dose.DoseValues.DoseData.ravel(), values * 2)
    with pytest.raises(mock_tps.ArgumentException, match="exists already"):
        _add_dose(api, "rr_ref_test", values)
    with pytest.raises(mock_tps.ArgumentException, match="voxels"):
        _add_dose(api, "short", values[:-1])
    with pytest.raises(mock_tps.ArgumentException, match="≥ 0"):
        _add_dose(api, "negative", values - 10)
    case = api.get_current("Case")
    with pytest.raises(mock_tps.ArgumentException, match="dose grid of the referenced beam set"):
        args = _grid_args(bs)
        args["DoseGridCorner"] = {"x": 0.0, "y": 0.0, "z": 0.0}
        case.AddCustomEvaluationDose(Name="moved", ExaminationName="CT 1", ReferencedBeamSet=bs,
                                     FractionDoseValues=values, **args)
    with pytest.raises(ScriptArgumentError, match="unknown argument 'DoseValues'"):
        case.AddCustomEvaluationDose(Name="x", ExaminationName="CT 1", ReferencedBeamSet=bs, DoseValues=values,
                                     **_grid_args(bs))
    with pytest.raises(ScriptArgumentError, match="missing required"):
        case.AddCustomEvaluationDose(Name="x", ExaminationName="CT 1", ReferencedBeamSet=bs, **_grid_args(bs))
    with pytest.raises(TypeError, match="named arguments"):
        dose.SetDoseValues(values)


def test_max_ref_dose_function_parameters_and_refusals(load_synthetic):
    api = load_synthetic("2025")
    po = api.get_current("Plan").PlanOptimizations[0]
    bs = api.get_current("BeamSet")
    ref = _add_dose(api, "rr_ref", np.full(bs.FractionDose._grid.n_voxels, 100.0))
    f = po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=ref,
                                            RoiName="Esophagus", IsConstraint=True, RestrictToBeams=None)
    p = f.DoseFunctionParameters
    assert p.FunctionType == "Max" and p.OfReferenceDose is ref and p.Weight == 1.0
    assert not hasattr(p, "DoseLevel")           # a reference function has no dose level
    p.Weight = 3
    assert p.Weight == 3.0
    with pytest.raises(mock_tps.ArgumentException):
        p.Weight = -1
    assert f in list(po.Constraints)
    with pytest.raises(mock_tps.ArgumentException, match="use AddOptimizationFunction"):
        po.AddReferenceOptimizationFunction(FunctionType="MaxDose", ReferenceDoseDistribution=ref, RoiName="Esophagus")
    with pytest.raises(mock_tps.ArgumentException, match="not supported by the mock"):
        po.AddReferenceOptimizationFunction(FunctionType="RefDoseFallOff", ReferenceDoseDistribution=ref,
                                            RoiName="Esophagus")
    prior = api.get_current("Case").TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations[0].DoseEvaluations[0]
    with pytest.raises(mock_tps.ArgumentException, match="fraction dose"):
        po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=prior,
                                            RoiName="Esophagus")
    with pytest.raises(mock_tps.ArgumentException, match="ROI 'Nope'"):
        po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=ref, RoiName="Nope")
    with pytest.raises(ScriptArgumentError, match="unknown argument 'DoseLevel'"):
        po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=ref,
                                            RoiName="Esophagus", DoseLevel=100)
    with pytest.raises(mock_tps.InvalidOperationException, match="reference dose of a MaxRefDose"):
        ref.DeleteEvaluationDose()
    po.AddReferenceOptimizationFunction(FunctionType="MinRefDose", ReferenceDoseDistribution=ref, RoiName="PTVeval")
    with pytest.raises(mock_tps.InvalidOperationException, match="cannot run a MinRefDose"):
        po.RunOptimization()


def test_max_ref_dose_penalty_and_gradient_by_hand():
    # r = (10, 5, 0) Gy, d = (12, 4, 1) Gy, equal volumes (ŵ = 1/3):
    # f = (1/3)((12-10)² + 0 + (1-0)²) = 5/3 Gy²;  ∂f/∂d = 2 ŵ (d - r)₊ = (4/3, 0, 2/3) Gy
    spec = max_ref_dose_spec(FunctionSpec, np.array([10.0, 5.0, 0.0]),
                             dict(voxel_index=np.arange(3), voxel_volume_weight=np.ones(3), weight=1.0,
                                  is_constraint=False))
    value, grad = penalty_value_and_dose_gradient(spec, np.array([12.0, 4.0, 1.0]))
    assert value == pytest.approx(5.0 / 3.0, rel=1e-12)
    np.testing.assert_allclose(grad, [4.0 / 3.0, 0.0, 2.0 / 3.0], rtol=1e-12)
    # read as a constraint: max(d - r) = 2 Gy
    assert constraint_violation_gy(spec, np.array([12.0, 4.0, 1.0])) == pytest.approx(2.0)
    # a reference of 0 everywhere: the penalty of MaxDose at 0 Gy, f = (1/3)(144 + 16 + 1) = 161/3
    zero = max_ref_dose_spec(FunctionSpec, np.zeros(3), dict(voxel_index=np.arange(3),
                                                             voxel_volume_weight=np.ones(3)))
    assert penalty_value_and_dose_gradient(zero, np.array([12.0, 4.0, 1.0]))[0] == pytest.approx(161.0 / 3.0)


def _setup_run(api, iterations):
    po = api.get_current("Plan").PlanOptimizations[0]
    bs = api.get_current("BeamSet")
    grid = bs.FractionDose._grid
    # reference: 4 Gy per fraction on the left half of the grid, 2 Gy on the right (cGy per fraction)
    nz, ny, nx = grid.shape_zyx
    ref_cgy = np.where(np.arange(nx)[None, None, :] < nx // 2, 400.0, 200.0) * np.ones((nz, ny, nx))
    ref = _add_dose(api, "rr_ref", ref_cgy.ravel())
    tgt = po.AddOptimizationFunction(FunctionType="MinDose", RoiName="PTVeval")
    tgt.DoseFunctionParameters.DoseLevel = 2400
    tgt.DoseFunctionParameters.Weight = 100
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = iterations
    return po, bs, ref, ref_cgy.ravel() / 100.0 * bs.FractionationPattern.NumberOfFractions


def test_max_ref_dose_objective_value_in_the_optimization(load_synthetic):
    api = load_synthetic("2025")
    po, bs, ref, r_gy = _setup_run(api, 20)      # r_gy: the reference total = fraction dose × fractions
    obj = po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=ref,
                                              RoiName="SpinalCord_PRV")
    obj.DoseFunctionParameters.Weight = 10
    po.RunOptimization()
    total_gy = bs.FractionDose.DoseValues.DoseData.ravel() / 100.0 * bs.FractionationPattern.NumberOfFractions
    rvd = bs.FractionDose.GetDoseGridRoi(RoiName="SpinalCord_PRV").RoiVolumeDistribution
    i, w = rvd.VoxelIndices, rvd.RelativeVolumes
    by_hand = float(w @ np.maximum(total_gy[i] - r_gy[i], 0.0) ** 2)
    assert by_hand > 0
    assert obj.FunctionValue.FunctionValue == pytest.approx(by_hand, rel=1e-6)
    assert obj._snapshot()["reference"] == "rr_ref"


def test_max_ref_dose_constraint_holds_voxel_by_voxel(load_synthetic):
    api = load_synthetic("2025")
    po, bs, ref, r_gy = _setup_run(api, 200)
    po.AddReferenceOptimizationFunction(FunctionType="MaxRefDose", ReferenceDoseDistribution=ref,
                                        RoiName="Esophagus", IsConstraint=True)
    po.RunOptimization()
    assert po._mock_last_result.converged, po._mock_last_result.message
    total_gy = bs.FractionDose.DoseValues.DoseData.ravel() / 100.0 * bs.FractionationPattern.NumberOfFractions
    eso = bs.FractionDose.GetDoseGridRoi(RoiName="Esophagus").RoiVolumeDistribution.VoxelIndices
    excess = total_gy[eso] - r_gy[eso]
    assert float(np.max(excess)) <= 0.05
    left = r_gy[eso] > 6.0                       # the 8 Gy half is used: the limit is per voxel, not the lowest
    assert float(np.max(total_gy[eso][left])) > 4.0 + 0.05


def test_copy_plan_copies_a_beam_set_an_evaluation_dose_refers_to(load_synthetic):
    api = load_synthetic("2025")
    case, bs = api.get_current("Case"), api.get_current("BeamSet")
    ref = _add_dose(api, "rr_ref", np.full(bs.FractionDose._grid.n_voxels, 100.0))
    case.CopyPlan(PlanName=api.get_current("Plan").Name, NewPlanName="copy")
    copy_bs = case.TreatmentPlans["copy"].BeamSets[0]
    assert copy_bs is not bs and ref.ForBeamSet is bs          # the copy owns its beam set; the dose keeps its own
