"""Export doses of the neutral model and loaded mock patients as DICOM-RT.

- :func:`export_dose`: any dose of the neutral model (a :class:`constraints.grid.Grid`
  plus an array in Gy: a plan dose, a cumulative BED/EQD2 map, a per-voxel SBRT limit
  map) as an RTDOSE on the planning frame of reference, loadable in RayStation, MIM
  or 3D Slicer.  ``DoseGridScaling`` = max / (2^bits − 1), so the largest value
  uses the full range of the 32-bit (default) or 16-bit stored integers and every
  value is reproduced within one scaling step.  ``GridFrameOffsetVector`` is
  relative (first value 0), ``DoseUnits`` GY, ``DoseSummationType`` PLAN,
  ``DoseType`` PHYSICAL, or EFFECTIVE for BED/EQD2 maps with a
  ``SeriesDescription`` saying which quantity it is.
- :func:`export_patient`: the current mock patient's CT series, RTSTRUCT (each ROI's
  contours: those it was voxelized from — phantom and imported ROIs — else its
  coverage contoured at 0.5 per CT slice, :mod:`mock_tps._contours`), the plan
  dose (``TotalDose``), a minimal RTPLAN (fractions, prescription) and each prior
  evaluation dose (whole-course total) — so a phantom round-trips through
  :func:`mock_tps.dicom_import.import_dicom`.

Offline-only module: pydicom and contourpy are imported inside the functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from constraints.dose_course import fractions_from_name
from constraints.errors import InputError
from constraints.grid import Grid

from . import _dicom_write as w

__all__ = ["export_dose", "export_patient", "ExportedFiles", "DOSE_KINDS"]

#: kind → (DoseType, description prefix)
DOSE_KINDS = {
    "physical": ("PHYSICAL", "Physical dose"),
    "limit": ("PHYSICAL", "Per-voxel SBRT physical dose limit"),
    "bed": ("EFFECTIVE", "BED"),
    "eqd2": ("EFFECTIVE", "EQD2"),
}


def export_dose(path: Any, dose_gy: np.ndarray, grid: Grid, *, frame_of_reference_uid: str,
                kind: str = "physical", description: str = "", alpha_beta_gy: Optional[float] = None,
                bits: int = 32, study_instance_uid: Optional[str] = None,
                patient: Optional[Dict[str, str]] = None) -> Tuple[Path, float]:
    """Write a dose of the neutral model as an RTDOSE file.

    Parameters
    ----------
    path : path-like
    dose_gy : ndarray, shape grid.shape_zyx, Gy (or Gy BED/EQD2)
        Finite and ≥ 0 everywhere (unknown voxels cannot be written: RTDOSE has no NaN).
    grid : constraints.Grid
    frame_of_reference_uid : str
        The planning CT's frame of reference (``exam.EquipmentInfo.FrameOfReference``).
    kind : {'physical', 'limit', 'bed', 'eqd2'}
        'bed'/'eqd2' are written with DoseType EFFECTIVE and need ``alpha_beta_gy``.
    description : str
        Appended to the SeriesDescription (e.g. ``"cumulative, esophagus"``).
    bits : {32, 16}
    study_instance_uid : str, optional
    patient : dict with 'name' and 'id', optional

    Returns
    -------
    (Path, float)
        The file and its DoseGridScaling (Gy per stored unit: the round-trip step).

    Raises
    ------
    constraints.errors.InputError
        Unknown kind, bits not 16/32, a missing α/β for BED/EQD2, a shape other than
        the grid's, or non-finite/negative values.
    """
    if kind not in DOSE_KINDS:
        raise InputError(f"kind must be one of {sorted(DOSE_KINDS)}, got {kind!r}")
    if bits not in (16, 32):
        raise InputError(f"bits must be 16 or 32, got {bits!r}")
    if not isinstance(grid, Grid):
        raise InputError(f"grid must be a constraints.Grid, got {type(grid).__name__}")
    dose = np.asarray(dose_gy, dtype=np.float64)
    grid.require_array(dose, "dose_gy")
    bad = ~np.isfinite(dose)
    if bad.any():
        raise InputError(f"dose_gy has {int(bad.sum())} non-finite (unknown) value(s); RTDOSE cannot store them: "
                         "fill or crop them first")
    if dose.size and dose.min() < 0:
        raise InputError(f"dose_gy has negative values (minimum {dose.min():g}); RTDOSE stores doses >= 0")
    dose_type, prefix = DOSE_KINDS[kind]
    if kind in ("bed", "eqd2"):
        if alpha_beta_gy is None or not alpha_beta_gy > 0:
            raise InputError(f"kind {kind!r} needs alpha_beta_gy > 0, got {alpha_beta_gy!r}")
        prefix = f"{prefix} (alpha/beta {alpha_beta_gy:g} Gy)"
    text = f"{prefix}{': ' + description if description else ''}"[:64]
    return w.write_rtdose(path, dose, grid.origin_mm, grid.spacing_xyz_mm, frame_uid=frame_of_reference_uid,
                          study_uid=study_instance_uid or w.new_uid(),
                          patient=patient or {"name": "Anonymous", "id": "ANON"}, bits=bits,
                          dose_type=dose_type, summation="PLAN", description=text)


@dataclass(frozen=True)
class ExportedFiles:
    """Paths written by :func:`export_patient`."""

    ct_dir: Path
    rtstruct: Path
    plan_dose: Optional[Path]
    rtplan: Path
    priors: Tuple[Tuple[Path, int], ...]
    dose_scaling_gy: Optional[float]


def export_patient(directory: Any, *, bits: int = 32) -> ExportedFiles:
    """Export the current mock patient (CT, RTSTRUCT, plan RTDOSE, RTPLAN, prior RTDOSEs).

    Parameters
    ----------
    directory : path-like
        Created if needed; the CT series goes to ``<directory>/CT``.
    bits : {32, 16}
        Bits of the stored dose values.

    Returns
    -------
    ExportedFiles

    Raises
    ------
    constraints.errors.TpsStateError
        No patient loaded.
    constraints.errors.InputError
        A prior dose holds unknown (NaN) voxels.
    """
    from constraints.errors import TpsStateError

    from ._bridge import _session

    s = _session()
    if s.patient is None or s.beam_set is None:
        raise TpsStateError("no mock patient with a beam set is loaded: nothing to export")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    exam = s.beam_set.GetPlanningExamination()
    case = s.case
    frame = str(exam.EquipmentInfo.FrameOfReference)
    patient = {"name": str(s.patient.Name), "id": str(s.patient.PatientID)}
    study = w.new_uid()
    g = exam._grid
    first = tuple(c + 0.5 * sp for c, sp in zip(g.corner_mm, g.spacing_xyz_mm))
    hu = exam.Series[0].ImageStack._stored.value.astype(np.float64) - 1024.0
    w.write_ct_slices(out / "CT", hu, first, g.spacing_xyz_mm, frame_uid=frame, study_uid=study, patient=patient,
                      patient_position=str(exam.PatientPosition))
    ss = case.PatientModel.StructureSets[exam.Name]
    rois = [(roi.Name, roi.Type, list(ss.RoiGeometries[roi.Name]._contour_planes()))
            for roi in case.PatientModel.RegionsOfInterest]
    rtstruct = w.write_rtstruct(out / "RS.dcm", rois, frame_uid=frame, study_uid=study, patient=patient)
    bs = s.beam_set
    fx = int(bs.FractionationPattern.NumberOfFractions)
    ref = bs.Prescription.PrimaryPrescriptionDoseReference
    rx_gy = None if ref is None else float(ref.DoseValue) / 100.0
    rtplan, plan_uid = w.write_rtplan(out / "RP.dcm", fractions=fx, prescription_gy=rx_gy, frame_uid=frame,
                                      study_uid=study, patient=patient, label=str(bs.DicomPlanLabel))
    total = s.plan.TreatmentCourse.TotalDose
    plan_dose, scaling = None, None
    if total.DoseValues is not None:
        dg = total._grid
        plan_dose, scaling = export_dose(out / "RD.dcm", total.DoseValues.DoseData / 100.0,
                                         Grid(dg.corner_mm, dg.spacing_xyz_mm, dg.shape_zyx), frame_of_reference_uid=frame,
                                         description="plan total dose", bits=bits, study_instance_uid=study,
                                         patient=patient)
    priors = []
    for fe in case.TreatmentDelivery.FractionEvaluations:
        for doe in fe.DoseOnExaminations:
            for k, ev in enumerate(doe.DoseEvaluations):
                if ev.DoseValues is None:
                    continue
                pg = ev._grid
                p, _ = export_dose(out / f"RD_prior_{k + 1}.dcm", ev.DoseValues.DoseData / 100.0,
                                   Grid(pg.corner_mm, pg.spacing_xyz_mm, pg.shape_zyx), frame_of_reference_uid=frame,
                                   description=str(ev.Name), bits=bits, study_instance_uid=study, patient=patient)
                priors.append((p, fractions_from_name(str(ev.Name)) or 1))
    return ExportedFiles(out / "CT", rtstruct, plan_dose, rtplan, tuple(priors), scaling)
