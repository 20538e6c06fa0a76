"""Derived ROIs as structure scripts use them: set an expression, update, check dirtiness.

Synthetic phantom: Cube2cm = box ±10 mm (8 cc, CT-voxel aligned), Cube3cm = box
±15 mm (27 cc), CT voxels 2 mm.
"""
from __future__ import annotations

import importlib

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data

ZERO = {"Type": "Expand", "Superior": 0.0, "Inferior": 0.0, "Anterior": 0.0, "Posterior": 0.0,
        "Right": 0.0, "Left": 0.0}


@pytest.fixture()
def api():
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="none", rs_version="11B")
    yield importlib.import_module("connect")
    mock_tps.unload()


def _volume(api, name):
    case = api.get_current("Case")
    exam = api.get_current("Examination")
    return case.PatientModel.StructureSets[exam.Name].RoiGeometries[name].GetRoiVolume()


def test_algebra_expression_then_update(api):
    case = api.get_current("Case")
    exam = api.get_current("Examination")
    pm = case.PatientModel
    shell = pm.CreateRoi(Name="Shell", Color="Blue", Type="Control")
    assert shell.DerivedRoiExpression is None
    shell.SetAlgebraExpression(
        ExpressionA={"Operation": "Union", "SourceRoiNames": ["Cube3cm"], "MarginSettings": ZERO},
        ExpressionB={"Operation": "Union", "SourceRoiNames": ["Cube2cm"], "MarginSettings": ZERO},
        ResultOperation="Subtraction", ResultMarginSettings=ZERO)
    assert shell.DerivedRoiExpression.Type == "Algebra"
    geometry = pm.StructureSets[exam.Name].RoiGeometries["Shell"]
    assert geometry.PrimaryShape is None                 # nothing until UpdateDerivedGeometry
    shell.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")
    assert _volume(api, "Shell") == pytest.approx(27.0 - 8.0)
    assert geometry.PrimaryShape.DerivedRoiStatus.IsShapeDirty is False
    # a source changes: the derived shape is dirty until updated again
    pm.RegionsOfInterest["Cube2cm"].CreateMarginGeometry(
        Examination=exam, SourceRoiName="Cube2cm", MarginSettings=dict(ZERO, Type="Contract", Superior=0.2,
                                                                       Inferior=0.2))
    assert geometry.PrimaryShape.DerivedRoiStatus.IsShapeDirty is True
    shell.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")
    assert geometry.PrimaryShape.DerivedRoiStatus.IsShapeDirty is False
    # Cube2cm is now 2 × 2 × 1.6 cm = 6.4 cc (whole CT voxels): 27 − 6.4
    assert _volume(api, "Shell") == pytest.approx(27.0 - 6.4)
    # an edit other than the update overrides the derived geometry: no status (RayStation's "overridden")
    shell.CreateMarginGeometry(Examination=exam, SourceRoiName="Shell", MarginSettings=ZERO)
    assert shell.DerivedRoiExpression is not None and geometry.PrimaryShape.DerivedRoiStatus is None
    shell.DeleteExpression()
    assert shell.DerivedRoiExpression is None and geometry.PrimaryShape.DerivedRoiStatus is None
    assert _volume(api, "Shell") == pytest.approx(20.6)   # the geometry stays
    with pytest.raises(mock_tps.InvalidOperationException, match="not a derived ROI"):
        shell.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")


def test_margin_and_wall_expressions_match_the_direct_calls(api):
    exam = api.get_current("Examination")
    pm = api.get_current("Case").PatientModel
    margin = dict(ZERO, Superior=0.4, Inferior=0.4, Anterior=0.4, Posterior=0.4, Right=0.4, Left=0.4)
    direct = pm.CreateRoi(Name="Direct", Color="Red", Type="Control")
    direct.CreateMarginGeometry(Examination=exam, SourceRoiName="Cube2cm", MarginSettings=margin)
    derived = pm.CreateRoi(Name="Derived", Color="Red", Type="Control")
    derived.SetMarginExpression(SourceRoiName="Cube2cm", MarginSettings=margin)
    derived.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")
    assert _volume(api, "Derived") == pytest.approx(_volume(api, "Direct"))
    assert 8.0 < _volume(api, "Direct") < 2.8 ** 3            # rounded edges: less than the 2.8 cm cube
    wall = pm.CreateRoi(Name="Wall", Color="Red", Type="Control")
    wall.SetWallExpression(SourceRoiName="Cube2cm", OutwardDistance=0.4, InwardDistance=0.0)
    wall.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")
    assert _volume(api, "Wall") == pytest.approx(_volume(api, "Direct") - 8.0)
    inner = pm.CreateRoi(Name="InnerWall", Color="Red", Type="Control")
    inner.CreateWallGeometry(Examination=exam, SourceRoiName="Cube2cm", OutwardDistance=0.0, InwardDistance=0.2)
    # 8 cc minus the 1.6 cm cube left after contracting 2 mm (whole CT voxels): 8 − 4.096
    assert _volume(api, "InnerWall") == pytest.approx(8.0 - 1.6 ** 3)
    with pytest.raises(mock_tps.ArgumentException, match="not both 0"):
        inner.SetWallExpression(SourceRoiName="Cube2cm", OutwardDistance=0.0, InwardDistance=0.0)
    with pytest.raises(mock_tps.ArgumentException, match="does not exist"):
        inner.SetMarginExpression(SourceRoiName="NoSuchRoi", MarginSettings=margin)


def test_update_refused_on_an_approved_structure_set(api):
    exam = api.get_current("Examination")
    pm = api.get_current("Case").PatientModel
    d = pm.CreateRoi(Name="D", Color="Red", Type="Control")
    d.SetMarginExpression(SourceRoiName="Cube2cm", MarginSettings=ZERO)
    d.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")
    mock_tps.approve(pm.StructureSets[exam.Name])
    with pytest.raises(mock_tps.InvalidOperationException, match="approved"):
        d.UpdateDerivedGeometry(Examination=exam, Algorithm="Auto")


def test_exclude_from_export(api):
    pm = api.get_current("Case").PatientModel
    assert pm.RegionsOfInterest["Cube2cm"].ExcludeFromExport is False
    pm.ToggleExcludeFromExport(ExcludeFromExport=True, RegionOfInterests=["Cube2cm", "Cube3cm"], PointsOfInterests=[])
    assert [r.Name for r in pm.RegionsOfInterest if r.ExcludeFromExport] == ["Cube3cm", "Cube2cm"]
    pm.ToggleExcludeFromExport(ExcludeFromExport=False, RegionOfInterests=["Cube3cm"])
    assert [r.Name for r in pm.RegionsOfInterest if r.ExcludeFromExport] == ["Cube2cm"]
    with pytest.raises(IndexError):
        pm.ToggleExcludeFromExport(ExcludeFromExport=True, RegionOfInterests=["NoSuchRoi"])
