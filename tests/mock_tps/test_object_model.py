"""The mock's object model: units, geometry, doses, plans, optimization, goals.

Geometry of the synthetic patient: see ``_mock_synthetic.py`` (CT 2 mm voxels,
dose grid 4 mm voxels, both with corner (−40, −40, −30) mm).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import mock_tps
from mock_tps import ArgumentException, InvalidOperationException, connect
from _mock_synthetic import make_phantom_data


@pytest.fixture
def patient():
    p = mock_tps.load_patient_data(make_phantom_data(), initial_plan="none")
    yield p
    mock_tps.unload()


def _case(p):
    return p.Cases["CASE 1"]


def _geom(p, roi):
    return _case(p).PatientModel.StructureSets["CT 1"].RoiGeometries[roi]


def _prior(p):
    return (_case(p).TreatmentDelivery.FractionEvaluations[0]
            .DoseOnExaminations["CT 1"].DoseEvaluations["Prior EBRT 10Gy/5fx"])


CT_GRID_CM = dict(Corner={"x": -4.0, "y": -4.0, "z": -3.0}, VoxelSize={"x": 0.2, "y": 0.2, "z": 0.2},
                  NrVoxels={"x": 40, "y": 40, "z": 30})


# ---------------------------------------------------------------- units and grids
def test_uniform_10_gy_reads_1000_cgy(patient):
    d = _prior(patient)
    assert d.DoseValues.DoseData.shape == (15, 20, 20)           # (nz, ny, nx)
    assert np.all(d.DoseValues.DoseData == 1000.0)                 # 10 Gy = 1000 cGy
    for kind in ("Average", "Max", "Min"):
        assert d.GetDoseStatistic(RoiName="PTVeval", DoseType=kind) == pytest.approx(1000.0)
    assert d.GetDoseAtRelativeVolumes(RoiName="Esophagus", RelativeVolumes=[0.5, 0.98]) == pytest.approx([1000, 1000])
    assert d.GetRelativeVolumeAtDoseValues(RoiName="Esophagus", DoseValues=[999, 1001]) == pytest.approx([1.0, 0.0])
    assert d.Name == "Prior EBRT 10Gy/5fx" and d.ForBeamSet is None
    assert d.OfDoseDistribution is None and d.ByStructureRegistration is None


def test_dose_grid_in_cm(patient):
    g = _prior(patient).InDoseGrid
    assert (g.Corner.x, g.Corner.y, g.Corner.z) == pytest.approx((-4.0, -4.0, -3.0))   # −40 mm / 10
    assert (g.VoxelSize.x, g.VoxelSize.y, g.VoxelSize.z) == pytest.approx((0.4, 0.4, 0.4))  # 4 mm / 10
    assert (g.NrVoxels.x, g.NrVoxels.y, g.NrVoxels.z) == (20, 20, 15)


def test_interpolate_dose_in_point(patient):
    bs = connect.get_current("BeamSet")
    bs.ComputeDose(ComputeBeamDoses=True, DoseAlgorithm="CCDose", ForceRecompute=False)
    fd = bs.FractionDose
    data = fd.DoseValues.DoseData
    # centre of voxel (iz, iy, ix) = (7, 9, 4): x = -40 + 4.5*4 = -22 mm, y = -2 mm, z = 0 mm
    assert fd.InterpolateDoseInPoint(Point={"x": -2.2, "y": -0.2, "z": 0.0}) == pytest.approx(data[7, 9, 4])
    mid = fd.InterpolateDoseInPoint(Point={"x": -2.0, "y": -0.2, "z": 0.0})   # half way to ix = 5
    assert mid == pytest.approx(0.5 * (data[7, 9, 4] + data[7, 9, 5]))
    assert math.isnan(fd.InterpolateDoseInPoint(Point={"x": 10.0, "y": 0.0, "z": 0.0}))


# ---------------------------------------------------------------- examination
def test_examination_and_image_stack(patient):
    exam = connect.get_current("Examination")
    assert exam.Name == "CT 1" and exam.PatientPosition == "HFS"
    assert exam.EquipmentInfo.Modality == "CT" and exam.EquipmentInfo.FrameOfReference
    st = exam.Series[0].ImageStack
    assert (st.Corner.x, st.Corner.y, st.Corner.z) == pytest.approx((-3.9, -3.9, -2.9))  # first voxel centre
    assert (st.PixelSize.x, st.PixelSize.y) == pytest.approx((0.2, 0.2))
    assert (st.NrPixels.x, st.NrPixels.y) == (40, 40)
    assert st.SlicePositions == pytest.approx(np.arange(30) * 0.2)
    cp = st.ConversionParameters
    hu = (np.frombuffer(st.PixelData.tobytes(), dtype="<u2").astype(float).reshape(30, 40, 40)
          * cp.RescaleSlope + cp.RescaleIntercept)
    assert hu[15, 22, 20] == 700.0        # (x, y, z) = (1, 5, 1) mm: inside the bone box
    assert hu[15, 0, 0] == -1000.0        # corner: outside the body


# ---------------------------------------------------------------- ROIs and geometry
def test_roi_attributes(patient):
    roi = _case(patient).PatientModel.RegionsOfInterest["PTVeval"]
    assert (roi.Name, roi.Type, roi.Color, roi.OrganData.OrganType) == ("PTVeval", "Ptv", "Red", "Target")
    assert roi.DerivedRoiExpression is None
    assert _geom(patient, "PTVeval").OfRoi is roi


def test_volumes_in_cc(patient):
    assert _geom(patient, "Cube3cm").GetRoiVolume() == pytest.approx(27.0, rel=1e-5)   # 3 cm cube, not aligned
    assert _geom(patient, "Cube2cm").GetRoiVolume() == pytest.approx(8.0, rel=1e-6)
    assert _geom(patient, "PTVeval").GetRoiVolume() == pytest.approx(2.4 * 2.0 * 2.0, rel=1e-6)


def test_bounding_box_and_centre(patient):
    g = _geom(patient, "Cube2cm")
    lo, hi = g.GetBoundingBox()
    assert (lo.x, lo.y, lo.z, hi.x, hi.y, hi.z) == pytest.approx((-1, -1, -1, 1, 1, 1))
    c = g.GetCenterOfRoi()
    assert (c.x, c.y, c.z) == pytest.approx((0, 0, 0), abs=1e-9)
    assert g.HasContours() and g.PrimaryShape is not None


def test_primary_shape_contours_in_cm(patient):
    """A voxel ROI is contoured on each CT slice at coverage 0.5: the 2 cm cube gives one
    closed contour per slice inside it, 2 × 2 cm less the four cut corners (2 mm voxels:
    4 × 0.1²/2 = 0.02 cm²), points {x, y, z} in cm."""
    shape = _geom(patient, "Cube2cm").PrimaryShape
    contours = shape.Contours
    zs = sorted({round(c[0].z, 6) for c in contours})
    assert len(contours) == len(zs) == 10 and min(zs) > -1.0 and max(zs) < 1.0
    for c in contours:
        x = np.array([p.x for p in c])
        y = np.array([p.y for p in c])
        assert len({p.z for p in c}) == 1
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        assert area == pytest.approx(4.0 - 0.02, abs=1e-6)
        assert x.min() == pytest.approx(-1.0) and x.max() == pytest.approx(1.0)
    with pytest.raises(AttributeError, match="read-only"):
        shape.Contours = []


def test_roi_as_voxels_aligned_box(patient):
    v = _geom(patient, "Cube2cm").GetRoiGeometryAsVoxels(**CT_GRID_CM)
    assert v.ndim == 1 and v.size == 40 * 40 * 30
    v = v.reshape(30, 40, 40)
    expected = np.zeros((30, 40, 40), dtype=np.uint8)
    expected[10:20, 15:25, 15:25] = 255     # [-10, 10) mm: x index 15..24, z index 10..19
    assert np.array_equal(v, expected)


def test_roi_as_voxels_half_covered(patient):
    grid = dict(CT_GRID_CM, Corner={"x": -3.9, "y": -4.0, "z": -3.0})   # shifted by half a voxel in x
    v = _geom(patient, "Cube2cm").GetRoiGeometryAsVoxels(**grid).reshape(30, 40, 40)
    row = v[15, 20, :]
    assert row[14] == 128 and row[24] == 128          # [-11, -9] and [9, 11] mm: 0.5 → floor(127.5 + 0.5)
    assert np.all(row[15:24] == 255) and row[13] == 0 and row[25] == 0


def test_create_roi_and_unique_names(patient):
    pm = _case(patient).PatientModel
    assert pm.GetUniqueRoiName(DesiredName="rr_new") == "rr_new"
    assert pm.GetUniqueRoiName(DesiredName="PTVeval") == "PTVeval (1)"
    assert pm.GetUniqueRoiName(DesiredName="ptveval") == "ptveval (1)"    # unique ignoring case
    roi = pm.CreateRoi(Name="PTVeval (1)", Color="Red", Type="Control")
    assert pm.GetUniqueRoiName(DesiredName="PTVeval") == "PTVeval (2)"
    assert pm.RegionsOfInterest["PTVeval (1)"] is roi
    g = pm.StructureSets["CT 1"].RoiGeometries["PTVeval (1)"]
    assert not g.HasContours() and g.PrimaryShape is None
    with pytest.raises(InvalidOperationException, match="no geometry"):
        g.GetRoiVolume()
    with pytest.raises(ArgumentException, match="already exists"):
        pm.CreateRoi(Name="ptvEVAL", Color="Red", Type="Ptv")


def test_margin_expand_isotropic(patient):
    pm = _case(patient).PatientModel
    roi = pm.CreateRoi(Name="rr_exp", Color="Red", Type="Control")
    roi.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                             MarginSettings={"Type": "Expand", "Superior": 1, "Inferior": 1, "Anterior": 1,
                                             "Posterior": 1, "Right": 1, "Left": 1})
    # cube 2 cm + 1 cm rounded margin: 8 + 6·(2·2·1) + 12·(π·1²/4)·2 + 4/3·π·1³ cc
    expected = 8 + 24 + 12 * (math.pi / 4) * 2 + 4 / 3 * math.pi
    assert _geom(patient, "rr_exp").GetRoiVolume() == pytest.approx(expected, rel=0.03)


def test_margin_expand_superior_only(patient):
    roi = _case(patient).PatientModel.CreateRoi(Name="rr_sup", Color="Red", Type="Control")
    roi.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                             MarginSettings={"Type": "Expand", "Superior": 1.0})
    g = _geom(patient, "rr_sup")
    assert g.GetRoiVolume() == pytest.approx(2 * 2 * 3)            # 2 × 2 × (2 + 1) cm
    lo, hi = g.GetBoundingBox()
    assert (lo.z, hi.z) == pytest.approx((-1.0, 2.0))               # superior = +z


def test_margin_contract(patient):
    roi = _case(patient).PatientModel.CreateRoi(Name="rr_con", Color="Red", Type="Control")
    roi.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                             MarginSettings={"Type": "Contract", "Superior": 0.4, "Inferior": 0.4,
                                             "Anterior": 0.4, "Posterior": 0.4, "Right": 0.4, "Left": 0.4})
    assert _geom(patient, "rr_con").GetRoiVolume() == pytest.approx(1.2 ** 3)   # (2 − 2·0.4)³ cc


def test_sub_voxel_margin_still_expands(patient):
    roi = _case(patient).PatientModel.CreateRoi(Name="rr_prv", Color="Red", Type="Control")
    roi.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                             MarginSettings={"Type": "Expand", "Right": 0.15, "Left": 0.15})
    # 1.5 mm each side on a 2 mm grid (done on a 3× finer grid: 1.33 mm kept of 1.5): 2.27 × 2 × 2 cc
    assert _geom(patient, "rr_prv").GetRoiVolume() == pytest.approx((2 + 2 * 0.4 / 3) * 4, rel=1e-6)


def test_algebra_subtraction_and_union(patient):
    pm = _case(patient).PatientModel
    exam = connect.get_current("Examination")
    a = pm.CreateRoi(Name="rr_ring", Color="Red", Type="Control")
    a.CreateAlgebraGeometry(Examination=exam, Algorithm="Auto",
                            ExpressionA={"Operation": "Union", "SourceRoiNames": ["Cube3cm"], "MarginSettings": {}},
                            ExpressionB={"Operation": "Union", "SourceRoiNames": ["Cube2cm"], "MarginSettings": {}},
                            ResultOperation="Subtraction", ResultMarginSettings={})
    assert _geom(patient, "rr_ring").GetRoiVolume() == pytest.approx(27 - 8, rel=1e-5)
    b = pm.CreateRoi(Name="rr_and", Color="Red", Type="Control")
    b.CreateAlgebraGeometry(Examination=exam,
                            ExpressionA={"Operation": "Intersection", "SourceRoiNames": ["Cube2cm", "PTVeval"]},
                            ResultOperation="None")
    # x [-10, 10], y [-6, 10], z [-10, 10] mm
    assert _geom(patient, "rr_and").GetRoiVolume() == pytest.approx(2.0 * 1.6 * 2.0, rel=1e-6)


def test_roi_from_dose(patient):
    pm = _case(patient).PatientModel
    roi = pm.CreateRoi(Name="rr_iso", Color="Red", Type="Control")
    roi.CreateRoiGeometryFromDose(DoseDistribution=_prior(patient), ThresholdLevel=999.0)   # cGy
    assert _geom(patient, "rr_iso").GetRoiVolume() == pytest.approx(8 * 8 * 6)   # the whole 8×8×6 cm grid
    roi.CreateRoiGeometryFromDose(DoseDistribution=_prior(patient), ThresholdLevel=1001.0)
    assert not _geom(patient, "rr_iso").HasContours()


def test_approved_structure_set_refuses_edits(patient):
    pm = _case(patient).PatientModel
    mock_tps.approve(pm.StructureSets["CT 1"])
    assert pm.StructureSets["CT 1"].SubStructureSets[0].Review.ApprovalStatus == "Approved"
    ptv = pm.RegionsOfInterest["PTVeval"]
    with pytest.raises(InvalidOperationException, match="approved"):
        ptv.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                                 MarginSettings={"Type": "Expand", "Left": 1})
    with pytest.raises(InvalidOperationException, match="approved"):
        ptv.DeleteRoi()
    new = pm.CreateRoi(Name="rr_ok", Color="Red", Type="Control")           # new ROIs stay editable
    new.CreateMarginGeometry(Examination=connect.get_current("Examination"), SourceRoiName="Cube2cm",
                             MarginSettings={"Type": "Expand"})
    assert _geom(patient, "rr_ok").GetRoiVolume() == pytest.approx(8.0)


# ---------------------------------------------------------------- plan and dose
def test_plan_and_beam_set(patient):
    plan = connect.get_current("Plan")
    bs = plan.BeamSets["SBRT"]
    assert bs.DicomPlanLabel == "SBRT" and bs.FractionationPattern.NumberOfFractions == 2
    rx = bs.Prescription.PrimaryPrescriptionDoseReference
    assert rx.DoseValue == 2400.0 and rx.OnStructure.Name == "PTVeval" and rx.PrescriptionType
    assert [b.Name for b in bs.Beams] == ["B1", "B2", "B3"]
    assert bs.Beams["B2"].GantryAngle == 180.0 and bs.Beams[0].CouchRotationAngle == 0.0
    iso = bs.Beams[0].Isocenter.Position
    assert (iso.x, iso.y, iso.z) == pytest.approx((0.0, 0.4, 0.0))
    assert bs.GetPlanningExamination() is connect.get_current("Examination")
    assert bs.GetStructureSet() is _case(patient).PatientModel.StructureSets["CT 1"]
    assert bs.FractionDose.DoseValues is None and plan.TreatmentCourse.TotalDose.DoseValues is None
    assert plan.Review.ApprovalStatus != "Approved"


def test_compute_dose_units(patient):
    bs = connect.get_current("BeamSet")
    plan = connect.get_current("Plan")
    bs.ComputeDose(ComputeBeamDoses=True, DoseAlgorithm="CCDose", ForceRecompute=False)
    data = make_phantom_data()
    expected_cgy = (data.influence_gy @ bs._weights) * 100.0
    fd = bs.FractionDose.DoseValues.DoseData
    assert fd.ravel() == pytest.approx(expected_cgy)
    assert plan.TreatmentCourse.TotalDose.DoseValues.DoseData == pytest.approx(2 * fd)
    # initial weights: uniform, scaled so that PTVeval mean = 24 Gy / 2 fx = 1200 cGy per fraction
    assert bs.FractionDose.GetDoseStatistic(RoiName="PTVeval", DoseType="Average") == pytest.approx(1200.0)
    assert plan.TreatmentCourse.TotalDose.GetDoseStatistic(RoiName="PTVeval", DoseType="Average") == pytest.approx(2400.0)


def test_dose_statistic_matches_voxelised_roi(patient):
    bs = connect.get_current("BeamSet")
    bs.ComputeDose()
    fd = bs.FractionDose
    g = fd.InDoseGrid
    w = _geom(patient, "PTVeval").GetRoiGeometryAsVoxels(Corner=g.Corner, VoxelSize=g.VoxelSize,
                                                           NrVoxels=g.NrVoxels) / 255.0
    d = fd.DoseValues.DoseData.ravel()
    assert fd.GetDoseStatistic(RoiName="PTVeval", DoseType="Average") == pytest.approx(
        np.sum(w * d) / np.sum(w), rel=2e-3)
    assert fd.GetDoseStatistic(RoiName="PTVeval", DoseType="Max") == pytest.approx(d[w > 0].max())
    d50 = fd.GetDoseAtRelativeVolumes(RoiName="PTVeval", RelativeVolumes=[0.0, 1.0])
    assert d50 == pytest.approx([d[w > 0].max(), d[w > 0].min()])


def test_dvh_step_convention(patient):
    # four voxels of equal weight with doses 1, 2, 3, 4: D(0.5) = 3, D(0.75) = 2; V(2) = 0.75
    from mock_tps._dose import _dose_at_relative_volumes
    d = np.array([1.0, 2.0, 3.0, 4.0])
    assert _dose_at_relative_volumes(d, np.ones(4), np.array([0.5, 0.75, 0.0, 1.0])) == pytest.approx([3, 2, 4, 1])


def test_approved_plan_refuses_edits(patient):
    plan = connect.get_current("Plan")
    po = plan.PlanOptimizations[0]
    f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus")
    mock_tps.approve(plan)
    assert plan.Review.ApprovalStatus == "Approved"
    for call in (lambda: po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="PTVeval"),
                 lambda: po.RunOptimization(),
                 lambda: plan.BeamSets[0].ComputeDose(),
                 lambda: f.DeleteFunction(),
                 lambda: setattr(f.DoseFunctionParameters, "DoseLevel", 100.0),
                 lambda: plan.TreatmentCourse.EvaluationSetup.AddClinicalGoal(
                     RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose", PrimaryAcceptanceLevel=1)):
        with pytest.raises(InvalidOperationException, match="Plan 'SBRT' is approved"):
            call()


# ---------------------------------------------------------------- optimization
def test_optimization_functions(patient):
    po = connect.get_current("Plan").PlanOptimizations[0]
    assert po.OptimizedBeamSets[0] is connect.get_current("BeamSet")
    assert po.Objective is None and po.Constraints.Count == 0
    c = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="SpinalCord_PRV", IsConstraint=True)
    assert po.Objective is None and po.Constraints[0] is c
    f = po.AddOptimizationFunction(FunctionType="MinDvh", RoiName="PTVeval")
    assert po.Objective.ConstituentFunctions[0] is f and f.ForRegionOfInterest.Name == "PTVeval"
    p = f.DoseFunctionParameters
    assert (p.FunctionType, p.DoseLevel, p.PercentVolume, p.Weight) == ("MinDvh", 0.0, 0.0, 1.0)
    p.DoseLevel = 2400
    p.PercentVolume = 95
    assert p.DoseLevel == 2400.0
    with pytest.raises(ArgumentException):
        p.PercentVolume = 120
    assert f.FunctionValue is None
    f.DeleteFunction()
    assert po.Objective is None
    with pytest.raises(ArgumentException, match="Foo"):
        po.AddOptimizationFunction(FunctionType="Foo", RoiName="PTVeval")
    with pytest.raises(ArgumentException, match="NoSuchRoi"):
        po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="NoSuchRoi")
    assert po.OptimizationParameters.Algorithm.MaxNumberOfIterations == 40
    assert po.OptimizationParameters.DoseCalculation.ComputeFinalDose is True


def test_run_and_reset_optimization(patient):
    plan = connect.get_current("Plan")
    bs = connect.get_current("BeamSet")
    po = plan.PlanOptimizations[0]
    with pytest.raises(InvalidOperationException, match="no optimization functions"):
        po.RunOptimization()
    f = po.AddOptimizationFunction(FunctionType="UniformDose", RoiName="PTVeval")
    f.DoseFunctionParameters.DoseLevel = 3000          # cGy total: 15 Gy per fraction
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = 5
    w0 = bs._weights.copy()
    po.RunOptimization()
    assert po._mock_run_count == 1 and po._mock_last_result.iterations <= 5
    prog = po.ProgressOfOptimization
    assert len(prog.Iterations) == len(prog.ObjectiveValues) == po._mock_last_result.iterations + 1
    assert f.FunctionValue.FunctionValue >= 0
    mean1 = plan.TreatmentCourse.TotalDose.GetDoseStatistic(RoiName="PTVeval", DoseType="Average")
    assert abs(mean1 - 3000) < abs(2400 - 3000)        # moved from 2400 towards 3000 cGy
    last = prog.ObjectiveValues[-1]
    po.RunOptimization()                               # warm start: continues from the last weights
    assert po.ProgressOfOptimization.ObjectiveValues[0] == pytest.approx(last)
    po.ResetOptimization()
    assert np.array_equal(bs._weights, w0)
    assert bs.FractionDose.DoseValues is None and plan.TreatmentCourse.TotalDose.DoseValues is None
    assert po.ProgressOfOptimization is None and f.FunctionValue is None


# ---------------------------------------------------------------- clinical goals
def test_clinical_goals(patient):
    plan = connect.get_current("Plan")
    connect.get_current("BeamSet").ComputeDose()       # PTVeval mean = 2400 cGy by construction
    es = plan.TreatmentCourse.EvaluationSetup
    g = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose",
                           PrimaryAcceptanceLevel=2300, ParameterValue=0)
    assert es.EvaluationFunctions[0] is g and g.ForRegionOfInterest.Name == "PTVeval"
    pg = g.PlanningGoal
    assert (pg.Type, pg.GoalCriteria, pg.PrimaryAcceptanceLevel, pg.Priority) == ("AverageDose", "AtLeast", 2300, 2147483647)
    assert g.GetClinicalGoalValue() == pytest.approx(2400.0) and g.EvaluateClinicalGoal()
    with pytest.raises(InvalidOperationException, match="An identical clinical goal already exists"):
        es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose",
                           PrimaryAcceptanceLevel=2300, ParameterValue=0)
    td = plan.TreatmentCourse.TotalDose
    vol = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AbsoluteVolumeAtDose",
                             PrimaryAcceptanceLevel=9.0, ParameterValue=0.0)
    assert vol.GetClinicalGoalValue() == pytest.approx(9.6)           # cc receiving ≥ 0 cGy
    rel = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtMost", GoalType="VolumeAtDose",
                             PrimaryAcceptanceLevel=0.5, ParameterValue=2400.0)
    assert rel.GetClinicalGoalValue() == pytest.approx(
        td.GetRelativeVolumeAtDoseValues(RoiName="PTVeval", DoseValues=[2400.0])[0])
    dmin = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="DoseAtAbsoluteVolume",
                              PrimaryAcceptanceLevel=0.0, ParameterValue=9.6)
    assert dmin.GetClinicalGoalValue() == pytest.approx(td.GetDoseStatistic(RoiName="PTVeval", DoseType="Min"))
    dv = es.AddClinicalGoal(RoiName="SpinalCord_PRV", GoalCriteria="AtMost", GoalType="DoseAtVolume",
                            PrimaryAcceptanceLevel=1.0, ParameterValue=0.0)
    assert dv.GetClinicalGoalValue() == pytest.approx(td.GetDoseStatistic(RoiName="SpinalCord_PRV", DoseType="Max"))
    assert dv.EvaluateClinicalGoal() is False


def test_goal_without_dose_raises(patient):
    es = connect.get_current("Plan").TreatmentCourse.EvaluationSetup
    g = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose", PrimaryAcceptanceLevel=1)
    with pytest.raises(InvalidOperationException, match="No dose"):
        g.GetClinicalGoalValue()


def test_sbrt_only_initial_plan():
    p = mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    try:
        plan = connect.get_current("Plan")
        po = plan.PlanOptimizations[0]
        types = [(f.ForRegionOfInterest.Name, f.DoseFunctionParameters.__dict__.get("FunctionType", "DoseFallOff"))
                 for f in po.Objective.ConstituentFunctions]
        assert types == [("PTVeval", "MinDvh"), ("PTVeval", "MinDose"), ("PTVeval", "MaxDose"),
                         ("Ring_PTV+5mm", "MaxDose"), ("External", "DoseFallOff")]
        ring = [f for f in po.Objective.ConstituentFunctions if f.ForRegionOfInterest.Name == "Ring_PTV+5mm"][0]
        assert ring.DoseFunctionParameters.DoseLevel == 1900.0 and ring.DoseFunctionParameters.Weight == 50.0
        # SBRT-only constraints of the seed study: cord PRV 0.3 Gy below the table limit for the prior cord
        # BED (10 Gy/5 fx: BED2 = 10 (1 + 2/2) = 20 Gy2 <= 90 -> 12.2 Gy -> 1190 cGy); the esophagus 19.2 Gy
        cons = {c.ForRegionOfInterest.Name: c.DoseFunctionParameters.DoseLevel for c in po.Constraints}
        assert cons == {"SpinalCord_PRV": pytest.approx(1190.0), "Esophagus": 1920.0}
        assert plan._case.PatientModel.RegionsOfInterest["Ring_PTV+5mm"]._mock_user_made
        assert all(f._mock_user_made for f in po.Objective.ConstituentFunctions)
        assert plan.TreatmentCourse.TotalDose.DoseValues is not None
        cord_max = plan.TreatmentCourse.TotalDose.GetDoseStatistic(RoiName="SpinalCord_PRV", DoseType="Max")
        assert cord_max <= 1190.0 + 5.0      # the optimizer's constraint tolerance is 0.05 Gy
        assert p.Cases[0].PatientModel.RegionsOfInterest["PTVeval"]._mock_user_made
    finally:
        mock_tps.unload()
