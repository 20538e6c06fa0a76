"""Bad DICOM input: each refusal is a DicomImportError naming the file and the problem,
and nothing is loaded (the previously loaded patient stays current)."""
from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_builders import PATIENT, Shape, edit_dataset, edited_copy, write_case  # noqa: E402
from _mock_synthetic import make_phantom_data  # noqa: E402

from constraints.errors import DicomImportError, InputError  # noqa: E402
from mock_tps import _dicom_write as w  # noqa: E402
from mock_tps import load_patient_data  # noqa: E402
from mock_tps.dicom_import import import_dicom  # noqa: E402

SPHERE = Shape("sphere", (0.0, 0.0, 0.0), 8.0)


@pytest.fixture
def previous():
    """A loaded phantom that must survive every failed import."""
    return load_patient_data(make_phantom_data(), initial_plan="none")


def _still_loaded(previous):
    import connect
    assert connect.get_current("Patient") is previous


def _case(tmp_path, **kw):
    return write_case(tmp_path, SPHERE, grid_mm=2.0, axis=0, **kw)




def test_dicom_import_error_is_an_input_error():
    assert issubclass(DicomImportError, InputError)


def test_relative_dose_units(tmp_path, previous):
    rs, rd = _case(tmp_path, units="RELATIVE")
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*DoseUnits RELATIVE"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_effective_dose_is_refused_as_a_course_but_read_for_a_dvh(tmp_path, previous):
    """An EQD2/BED map (DoseType EFFECTIVE, as reirrad's own export writes it) summed as a course
    would be weighted twice: refused as the plan's or a prior's dose, read as it is for a DVH."""
    rs, rd = _case(tmp_path)
    prior = edited_copy(rd, tmp_path / "prior_eqd2.dcm", DoseType="EFFECTIVE")
    with pytest.raises(DicomImportError, match=r"prior RTDOSE .*prior_eqd2\.dcm.*DoseType 'EFFECTIVE'.*PHYSICAL"):
        import_dicom(rtstruct=rs, plan_dose=rd, priors=[(prior, 25)])
    _still_loaded(previous)
    with pytest.raises(DicomImportError, match=r"plan RTDOSE .*prior_eqd2\.dcm.*DoseType 'EFFECTIVE'"):
        import_dicom(rtstruct=rs, plan_dose=prior, fractions=2)
    _still_loaded(previous)
    physical = import_dicom(rtstruct=rs, plan_dose=rd, fractions=2, load=False)
    mapped = import_dicom(rtstruct=rs, plan_dose=prior, fractions=2, load=False, physical_only=False)
    np.testing.assert_array_equal(mapped.data.plan_dose_gy, physical.data.plan_dose_gy)


def test_missing_dose_grid_scaling(tmp_path, previous):
    rs, rd = _case(tmp_path)
    edit_dataset(rd, DoseGridScaling=None)
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*DoseGridScaling is missing"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_frame_of_reference_mismatch(tmp_path, previous):
    rs, rd = _case(tmp_path)
    edit_dataset(rd, FrameOfReferenceUID="1.2.3.999")
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*frame of reference 1\.2\.3\.999"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_prior_on_other_frame_without_registration(tmp_path, previous):
    rs, rd = _case(tmp_path)
    prior = edited_copy(rd, tmp_path / "prior.dcm", FrameOfReferenceUID="1.2.3.999")
    with pytest.raises(DicomImportError, match=r"prior RTDOSE .*prior\.dcm.*give a registration"):
        import_dicom(rtstruct=rs, plan_dose=rd, priors=[(prior, 30)])
    _still_loaded(previous)


def test_oblique_orientation(tmp_path, previous):
    c, s = np.cos(0.2), np.sin(0.2)
    rs, rd = _case(tmp_path, orientation=(c, s, 0, -s, c, 0))
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*oblique or not axial"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def _struct(tmp_path, planes, geometric_type="CLOSED_PLANAR"):
    return w.write_rtstruct(tmp_path / "RS_bad.dcm", [("Bad", "Organ", planes)], frame_uid="1.2.3.4.5.6",
                            study_uid="1.2.3", patient=PATIENT, geometric_type=geometric_type)


def test_open_contour(tmp_path, previous):
    _, rd = _case(tmp_path)
    sq = np.array([[0, 0], [5, 0], [5, 5], [0, 5]], float)
    rs = _struct(tmp_path, [(0.0, [sq])], geometric_type="OPEN_PLANAR")
    with pytest.raises(DicomImportError, match=r"RS_bad\.dcm.*'Bad' contour 1 is OPEN_PLANAR"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_degenerate_contour(tmp_path, previous):
    _, rd = _case(tmp_path)
    line = np.array([[0, 0], [5, 0], [10, 0]], float)
    rs = _struct(tmp_path, [(0.0, [line])])
    with pytest.raises(DicomImportError, match=r"RS_bad\.dcm.*'Bad' contour 1 at z = 0 mm is degenerate"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_missing_ct_slice(tmp_path, previous):
    rs, rd = _case(tmp_path)
    ct = tmp_path / "CT"
    w.write_ct_slices(ct, np.zeros((6, 8, 8)), (-8, -8, -6), (2, 2, 2), frame_uid="1.2.3.4.5.6", study_uid="1.2",
                      patient=PATIENT)
    (ct / "CT.0003.dcm").unlink()
    with pytest.raises(DicomImportError, match=r"CT series .*not equally spaced.*missing or duplicate slices"):
        import_dicom(rtstruct=rs, plan_dose=rd, ct_dir=ct)
    _still_loaded(previous)


def test_truncated_file(tmp_path, previous):
    rs, rd = _case(tmp_path)
    data = rd.read_bytes()
    rd.write_bytes(data[: len(data) - 100])
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*is truncated"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_non_dicom_file(tmp_path, previous):
    rs, rd = _case(tmp_path)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a dicom file\n" * 20)
    with pytest.raises(DicomImportError, match=r"RTSTRUCT .*notes\.txt.*is not a DICOM file"):
        import_dicom(rtstruct=bad, plan_dose=rd)
    with pytest.raises(DicomImportError, match=r"RTSTRUCT .*RD\.dcm.*has Modality 'RTDOSE'; expected 'RTSTRUCT'"):
        import_dicom(rtstruct=rd, plan_dose=rd)
    _still_loaded(previous)


def test_per_fraction_dose_without_fraction_count(tmp_path, previous):
    rs, rd = _case(tmp_path, summation="FRACTION")
    with pytest.raises(DicomImportError, match=r"RD\.dcm.*FRACTION.*fraction count is unknown"):
        import_dicom(rtstruct=rs, plan_dose=rd)
    _still_loaded(previous)


def test_non_rigid_registration_matrix(tmp_path, previous):
    rs, rd = _case(tmp_path)
    prior = edited_copy(rd, tmp_path / "prior.dcm", FrameOfReferenceUID="1.2.3.999")
    with pytest.raises(DicomImportError, match=r"registration matrix: the 3x3 part is not a rotation"):
        import_dicom(rtstruct=rs, plan_dose=rd, priors=[(prior, 30)], registration=np.diag([2.0, 1, 1, 1]))
    _still_loaded(previous)
