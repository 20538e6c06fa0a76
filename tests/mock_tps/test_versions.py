"""Version profiles and strict signatures: what each RayStation version's scripts may call.

Each test is written as a script for that version would be, then checks that the
spelling of another version fails there, as it would in RayStation.
"""
from __future__ import annotations

import importlib
import inspect
import math

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data
from mock_tps._api import ApiObject, Collection, ScriptArgumentError, _ApiMethod


def test_profiles_cover_11b_to_2025_in_release_order():
    names = list(mock_tps.RS_VERSIONS)
    for v in ("11B", "12A", "2023B", "2024A", "2025"):
        assert v in names
    majors = [p.major for p in mock_tps.RS_VERSIONS.values()]
    assert majors == sorted(majors) and len(set(majors)) == len(majors)
    # public scripts: 11B reports application version 12 ("version >= 12 ... change in 11B")
    assert mock_tps.RS_VERSIONS["11B"].major == 12
    assert mock_tps.RS_VERSIONS["2025"].module_name == "raystation"
    assert {p.module_name for n, p in mock_tps.RS_VERSIONS.items() if n != "2025"} == {"connect"}
    assert mock_tps.RS_VERSIONS["11B"].python_version == "3.8"
    assert mock_tps.RS_VERSIONS["2025"].python_version == "3.11"


def test_unknown_version_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown RayStation version '13C'.*11B"):
        mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version="13C")


@pytest.mark.parametrize("version, spelling, other", [
    ("11B", "AcceptanceLevel", "PrimaryAcceptanceLevel"),
    ("12A", "AcceptanceLevel", "PrimaryAcceptanceLevel"),
    ("2023B", "AcceptanceLevel", "PrimaryAcceptanceLevel"),
    ("2024A", "PrimaryAcceptanceLevel", "AcceptanceLevel"),
    ("2025", "PrimaryAcceptanceLevel", "AcceptanceLevel"),
])
def test_clinical_goal_acceptance_level_spelling(version, spelling, other, load_synthetic):
    api = load_synthetic(version)
    es = api.get_current("Plan").TreatmentCourse.EvaluationSetup
    goal = es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose",
                              **{spelling: 2300.0}, Priority=1)
    assert getattr(goal.PlanningGoal, spelling) == 2300.0
    assert not hasattr(goal.PlanningGoal, other)      # hasattr answers as in that version
    with pytest.raises(ScriptArgumentError, match=f"AddClinicalGoal: unknown argument '{other}'"):
        es.AddClinicalGoal(RoiName="PTVeval", GoalCriteria="AtLeast", GoalType="AverageDose", **{other: 2200.0})
    assert es.EvaluationFunctions.Count == 1          # the refused call added nothing


@pytest.mark.parametrize("version, spelling, other", [
    ("11B", "RestrictToBeam", "RestrictToBeams"),
    ("12A", "RestrictToBeam", "RestrictToBeams"),
    ("2023B", "RestrictToBeams", "RestrictToBeam"),
    ("2025", "RestrictToBeams", "RestrictToBeam"),
])
def test_add_optimization_function_restrict_spelling(version, spelling, other, load_synthetic):
    api = load_synthetic(version)
    po = api.get_current("Plan").PlanOptimizations[0]
    f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus", IsConstraint=False,
                                   RestrictAllBeamsIndividually=False, IsRobust=False, RestrictToBeamSet=None,
                                   UseRbeDose=False, **{spelling: None})
    assert f.DoseFunctionParameters.FunctionType == "MaxDose"
    with pytest.raises(ScriptArgumentError, match=other):
        po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Esophagus", **{other: None})


def test_prescription_names_per_version(load_synthetic):
    api = load_synthetic("10B")
    bs = api.get_current("BeamSet")
    assert bs.Prescription.PrimaryDosePrescription.DoseValue == pytest.approx(2400.0)
    assert not hasattr(bs.Prescription, "PrimaryPrescriptionDoseReference")
    assert not hasattr(bs, "ScaleToPrimaryPrescriptionDoseReference") and hasattr(bs, "NormalizeToPrescription")
    api = load_synthetic("11B")
    bs = api.get_current("BeamSet")
    assert bs.Prescription.PrimaryPrescriptionDoseReference.DoseValue == pytest.approx(2400.0)
    assert not hasattr(bs.Prescription, "PrimaryDosePrescription")
    with pytest.raises(AttributeError):
        bs.NormalizeToPrescription(RoiName="PTVeval", DoseValue=2400, DoseVolume=90)


def test_compute_dose_signature_2025_and_interpolate_frame_of_reference(load_synthetic):
    api = load_synthetic("2025")
    bs = api.get_current("BeamSet")
    with pytest.raises(ScriptArgumentError, match="ComputeDose: unknown argument 'ComputeBeamDoses'.*RunEntryValidation"):
        bs.ComputeDose(ComputeBeamDoses=True, DoseAlgorithm="CCDose", ForceRecompute=False)
    bs.ComputeDose(RunEntryValidation=True)
    uid = api.get_current("Examination").EquipmentInfo.FrameOfReference
    d = bs.FractionDose.InterpolateDoseInPoint(Point={"x": 0.0, "y": 0.0, "z": 0.0}, PointFrameOfReference=uid)
    assert d > 0
    assert bs.FrameOfReference == uid
    api = load_synthetic("11B")
    bs = api.get_current("BeamSet")
    bs.ComputeDose(ComputeBeamDoses=True, DoseAlgorithm="CCDose", ForceRecompute=False)
    with pytest.raises(ScriptArgumentError, match="PointFrameOfReference"):
        bs.FractionDose.InterpolateDoseInPoint(Point={"x": 0.0, "y": 0.0, "z": 0.0}, PointFrameOfReference=uid)


def test_unknown_and_misspelled_arguments_fail(load_synthetic):
    api = load_synthetic("2024A", initial_plan="sbrt_only")
    bs = api.get_current("BeamSet")
    po = api.get_current("Plan").PlanOptimizations[0]
    runs = po._mock_run_count
    with pytest.raises(ScriptArgumentError, match="RunOptimization: unknown argument 'NotAnArgument'"):
        po.RunOptimization(NotAnArgument=1)
    assert po._mock_run_count == runs
    with pytest.raises(TypeError):        # also a TypeError, as Python's own wording would be
        bs.FractionDose.InterpolateDoseInPoint(Point={"x": 0.0, "y": 0.0, "z": 0.0}, Typo=1)
    with pytest.raises(ScriptArgumentError, match="missing required argument"):
        bs.FractionDose.GetDoseStatistic(RoiName="PTVeval")
    with pytest.raises(TypeError, match=r"^Method must be called with named arguments\.$"):
        bs.FractionDose.GetDoseStatistic("PTVeval", "Max")


def test_threshold_level_nan_raises_and_makes_no_roi_geometry(load_synthetic):
    api = load_synthetic("2024A", initial_plan="sbrt_only")
    pm = api.get_current("Case").PatientModel
    roi = pm.CreateRoi(Name="iso", Color="Red", Type="Control")
    dose = api.get_current("Plan").TreatmentCourse.TotalDose
    for bad in (math.nan, math.inf, "2000"):
        with pytest.raises((ValueError, TypeError)):
            roi.CreateRoiGeometryFromDose(DoseDistribution=dose, ThresholdLevel=bad)
    assert not pm.StructureSets[0].RoiGeometries["iso"].HasContours()
    roi.CreateRoiGeometryFromDose(DoseDistribution=dose, ThresholdLevel=2000.0)
    assert pm.StructureSets[0].RoiGeometries["iso"].HasContours()


def _api_classes():
    import pkgutil

    seen = []
    for info in pkgutil.iter_modules(mock_tps.__path__):
        mod = importlib.import_module(f"mock_tps.{info.name}")
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, (ApiObject, Collection)) and obj.__module__ == mod.__name__:
                seen.append(obj)
    return seen


def test_no_public_mock_method_takes_catch_all_arguments():
    classes = _api_classes()
    assert len(classes) > 30
    checked = 0
    for cls in classes:
        for name, member in vars(cls).items():
            if name.startswith("_") or isinstance(member, property):
                continue
            if isinstance(member, _ApiMethod):
                func = member.func
            elif inspect.isfunction(member):
                func = member
            else:
                continue
            kinds = {p.kind for p in inspect.signature(func).parameters.values()}
            assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{cls.__name__}.{name} takes **kwargs"
            assert inspect.Parameter.VAR_POSITIONAL not in kinds, f"{cls.__name__}.{name} takes *args"
            checked += 1
    assert checked > 40
    from mock_tps import connect
    for name in connect.__all__:
        f = getattr(connect, name)
        if inspect.isfunction(f):
            kinds = {p.kind for p in inspect.signature(f).parameters.values()}
            assert inspect.Parameter.VAR_KEYWORD not in kinds, name


def test_api_method_refuses_catch_all_signatures_at_definition():
    with pytest.raises(TypeError, match="must not take"):
        _ApiMethod(lambda self, **kw: None)
