"""DICOM import into the mock: geometry conventions, dose scaling, plan, priors, registration."""
from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_builders import PATIENT, Shape, linear_dose, write_case  # noqa: E402

from mock_tps import InvalidOperationException  # noqa: E402
from mock_tps import _dicom_write as w  # noqa: E402
from mock_tps._dicom_dose import read_rtdose  # noqa: E402
from mock_tps._dicom_voxelize import plane_fraction, slab_bounds_mm  # noqa: E402
from mock_tps.dicom_import import import_dicom  # noqa: E402

FRAME = "1.2.3.4.5.6"
BOX = Shape("cylinder", (1.0, -2.0, 3.0), 8.0, 12.0)


def _dose_file(tmp_path, **kw):
    dose = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6) * 0.1       # (z, y, x), value encodes the index
    p, step = w.write_rtdose(tmp_path / "RD.dcm", dose, (-10.0, -20.0, 5.0), (2.0, 3.0, 2.5), frame_uid=FRAME,
                             study_uid="1.2", patient=PATIENT, **kw)
    return p, dose, step


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0),
                                         (1, 0, 0, 0, -1, 0)], ids=["HFS", "FFS", "HFP", "FFP"])
def test_orientation_flips_into_patient_order(tmp_path, orientation):
    p, dose, step = _dose_file(tmp_path, orientation=orientation)
    d = read_rtdose(p)
    assert d.grid.corner_mm == pytest.approx((-11.0, -21.5, 3.75))            # first centre − half a voxel
    assert d.grid.spacing_xyz_mm == pytest.approx((2.0, 3.0, 2.5))                # non-square pixels: dx 2, dy 3
    assert np.allclose(d.dose_gy, dose, atol=step)


def test_grid_frame_offsets_absolute_and_relative(tmp_path):
    rel, dose, step = _dose_file(tmp_path, offsets="relative")
    a = read_rtdose(rel)
    absolute = tmp_path / "abs.dcm"
    w.write_rtdose(absolute, dose, (-10.0, -20.0, 5.0), (2.0, 3.0, 2.5), frame_uid=FRAME, study_uid="1.2",
                   patient=PATIENT, offsets="absolute")
    b = read_rtdose(absolute)
    assert b.grid == a.grid
    assert list(pydicom.dcmread(str(absolute)).GridFrameOffsetVector)[:2] == [5.0, 7.5]


def test_descending_frames_are_sorted(tmp_path):
    p, dose, step = _dose_file(tmp_path)
    ds = pydicom.dcmread(str(p))
    ds.ImagePositionPatient = [-10.0, -20.0, 12.5]
    ds.GridFrameOffsetVector = [0.0, -2.5, -5.0, -7.5]
    px = np.frombuffer(ds.PixelData, "<u4").reshape(4, 5, 6)[::-1]
    ds.PixelData = np.ascontiguousarray(px).tobytes()
    ds.save_as(str(p))
    d = read_rtdose(p)
    assert d.grid.corner_mm[2] == pytest.approx(3.75)
    assert np.allclose(d.dose_gy, dose, atol=step)


def test_fraction_dose_times_fractions_and_plan(tmp_path):
    rs, rd = write_case(tmp_path, BOX, grid_mm=2.0, axis=0, summation="FRACTION")
    rp, _ = w.write_rtplan(tmp_path / "RP.dcm", fractions=5, prescription_gy=30.0, frame_uid=FRAME,
                           study_uid="1.2", patient=PATIENT)
    c = import_dicom(rtstruct=rs, plan_dose=rd, plan=rp)
    assert (c.fractions, c.fractions_source, c.prescription_gy) == (5, "RTPLAN", 30.0)
    import connect
    bs = connect.get_current("BeamSet")
    frac = bs.FractionDose.DoseValues.DoseData
    total = connect.get_current("Plan").TreatmentCourse.TotalDose.DoseValues.DoseData
    stored = read_rtdose(rd).dose_gy
    assert np.allclose(frac, stored * 100.0)                     # one fraction, cGy
    assert np.allclose(total, stored * 5 * 100.0)                # × 5 fractions
    assert bs.FractionationPattern.NumberOfFractions == 5
    assert bs.Prescription.PrimaryPrescriptionDoseReference.DoseValue == pytest.approx(3000.0)


def test_imported_plan_has_no_beam_model(tmp_path):
    rs, rd = write_case(tmp_path, BOX, grid_mm=2.0, axis=0)
    import_dicom(rtstruct=rs, plan_dose=rd, fractions=3)
    import connect
    bs = connect.get_current("BeamSet")
    with pytest.raises(InvalidOperationException, match="has no beam model \\(imported from DICOM\\)"):
        bs.ComputeDose()
    po = connect.get_current("Plan").PlanOptimizations[0]
    po.AddOptimizationFunction(FunctionType="MaxDose", RoiName="Shape")
    with pytest.raises(InvalidOperationException, match="has no beam model"):
        po.RunOptimization()


def test_ct_series_any_slice_order_and_position(tmp_path):
    rs, rd = write_case(tmp_path, BOX, grid_mm=2.0, axis=0)
    ct = tmp_path / "CT"
    hu = np.full((14, 16, 16), -50.0)
    paths = w.write_ct_slices(ct, hu, (-14.0, -17.0, -4.0), (2.0, 2.0, 2.0), frame_uid=FRAME, study_uid="1.2",
                              patient=PATIENT, patient_position="FFS", orientation=(-1, 0, 0, 0, 1, 0))
    for k, p in enumerate(paths):                                 # names no longer in slice order
        p.rename(ct / f"img_{(k * 5) % 14:02d}.dcm")
    c = import_dicom(rtstruct=rs, plan_dose=rd, ct_dir=ct)
    assert not c.synthetic_ct
    import connect
    exam = connect.get_current("Examination")
    assert exam.PatientPosition == "FFS"
    assert exam.EquipmentInfo.FrameOfReference == FRAME
    stack = exam.Series[0].ImageStack
    assert stack.Corner.z == pytest.approx(-0.4) and stack.PixelSize.x == pytest.approx(0.2)
    vol = connect.get_current("Case").PatientModel.StructureSets[exam.Name].RoiGeometries["Shape"].GetRoiVolume()
    assert vol == pytest.approx(np.pi * 64 * 12 / 1000, rel=0.01)


def test_even_odd_rule_holes_and_islands():
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    ring = [np.c_[10 * np.cos(t), 10 * np.sin(t)], np.c_[5 * np.cos(t), 5 * np.sin(t)],
            np.c_[2 * np.cos(t), 2 * np.sin(t)]]
    f = plane_fraction(ring, -12.0, 0.5, 48, -12.0, 0.5, 48)
    assert f.sum() * 0.25 == pytest.approx(np.pi * (100 - 25 + 4), rel=2e-3)   # disc − hole + island


def test_slab_rule_end_caps_and_gaps():
    lo, hi = slab_bounds_mm(np.array([0.0, 3.0, 6.0, 30.0]), 3.0)
    assert lo.tolist() == [-1.5, 1.5, 4.5, 28.5] and hi.tolist() == [1.5, 4.5, 7.5, 31.5]


def test_prior_same_frame_and_registered(tmp_path):
    rs, rd = write_case(tmp_path, BOX, grid_mm=2.0, axis=0)
    plan = read_rtdose(rd)
    g = plan.grid
    first = tuple(c + s / 2 for c, s in zip(g.corner_mm, g.spacing_xyz_mm))
    dose = linear_dose(first, g.spacing_xyz_mm, g.shape_zyx, 0, (0.0, 0.0, 0.0), 40.0, 0.5)
    same, _ = w.write_rtdose(tmp_path / "prior_same.dcm", dose, first, g.spacing_xyz_mm, frame_uid=FRAME,
                             study_uid="1.2", patient=PATIENT)
    # the same dose on another frame whose coordinates are the planning ones − 10 mm in x
    other, _ = w.write_rtdose(tmp_path / "prior_other.dcm", dose, first, g.spacing_xyz_mm, frame_uid="9.9.9",
                              study_uid="1.2", patient=PATIENT)
    m = np.eye(4)
    m[0, 3] = 10.0                                                # prior → planning: x_plan = x_prior + 10
    reg = w.write_registration(tmp_path / "REG.dcm", fixed_frame_uid=FRAME, moving_frame_uid="9.9.9",
                               moving_to_fixed=m, study_uid="1.2", patient=PATIENT)
    for registration in (m, str(reg)):
        c = import_dicom(rtstruct=rs, plan_dose=rd, priors=[(same, 30), (other, 30, 0.1, "Other 60Gy/30fx")],
                         registration=registration)
        assert [p.registered for p in c.priors] == [False, True]
        assert c.priors[0].name.startswith("prior_same ") and c.priors[0].name.endswith("Gy/30fx")
        import connect
        doe = connect.get_current("Case").TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations["CT 1"]
        reg_dose = doe.DoseEvaluations["Other 60Gy/30fx"].DoseValues.DoseData / 100.0
        same_dose = doe.DoseEvaluations[c.priors[0].name].DoseValues.DoseData / 100.0
        known = ~np.isnan(reg_dose)
        # planning x holds the prior dose of x − 10 mm: 0.5 Gy/mm × 10 mm = 5 Gy less (trilinear is exact)
        assert np.allclose(reg_dose[known], same_dose[known] - 5.0, atol=1e-6)
        assert np.isnan(reg_dose[:, :, :5]).all()                              # 10 mm = 5 voxels unknown
        assert c.priors[1].unknown_voxels == np.isnan(reg_dose).sum() > 0
