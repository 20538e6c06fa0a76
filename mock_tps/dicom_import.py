"""Import DICOM-RT files into the mock planning system, as a physicist imports them into a TPS.

After :func:`import_dicom` the files are an ordinary loaded mock patient:
``import connect`` works, the ``tps_scripts`` adapter reads it, and every metric
takes the same road as for a phantom (DESIGN §4: no second DICOM-to-array path).

What becomes what
-----------------
- CT series → examination "CT 1" (its grid, HU, frame of reference and patient
  position).  Without a CT the examination is synthetic (HU 0, water) on a grid
  made from the dose grid and the contours
  (:func:`mock_tps._dicom_ct.synthetic_ct_grid`).
- RTSTRUCT → ROIs (name, ``Type`` from RTROIInterpretedType, ``OrganType``,
  colour) with their contours as the geometry, voxelized on demand on any grid a
  script asks for (rule: :mod:`mock_tps._dicom_voxelize`).  ROIs without closed
  contours have no geometry.
- RTDOSE (plan) → plan "SBRT", beam set "SBRT" with the dose as its
  ``FractionDose`` (total / fractions, cGy) and ``TreatmentCourse.TotalDose``; it has
  no beam model, so ``ComputeDose`` and ``RunOptimization`` refuse.  Plan and prior
  doses must be PHYSICAL (:func:`mock_tps._dicom_dose.require_physical`).
- RTPLAN → ``FractionationPattern.NumberOfFractions`` and the prescription (total
  dose, ``PrimaryPrescriptionDoseReference.DoseValue`` in cGy).
- Prior RTDOSEs → evaluation doses on the planning examination
  (``FractionEvaluations[0].DoseOnExaminations["CT 1"].DoseEvaluations``) holding the
  whole prior course's total dose (cGy), named ``"<file stem> <Dmax>Gy/<n>fx"``
  (so the adapter reads the fraction count from the name) unless a name is given.
  A prior on the planning frame of reference keeps its own grid; one on another
  frame is resampled trilinearly onto the plan's dose grid through a rigid
  registration, NaN (unknown) where it falls outside the prior grid — never zero.

Registration direction: a 4×4 matrix ``M`` maps **prior-frame coordinates to
planning-frame coordinates** (mm, column vectors: ``p_plan = M @ [x, y, z, 1]``).
A DICOM REG file is read for the two frames involved, whatever its own frame.

Every refusal is a :class:`~constraints.errors.DicomImportError` naming the file
and the problem, raised before anything is loaded: a failed import leaves the
previously loaded patient current.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from constraints.errors import DicomImportError

from ._dicom_ct import read_ct_series, synthetic_ct_grid
from ._dicom_dose import (DoseFile, dose_total_gy, read_registration, read_rtdose, read_rtplan, require_physical,
                          resample_dose_rigid, rigid_matrix)
from ._dicom_struct import organ_type_for, read_rtstruct
from ._dicom_voxelize import slab_bounds_mm
from ._phantom_data import GridSpec, PhantomData, PriorCourseSpec, RoiSpec

__all__ = ["import_dicom", "ImportedCase", "ImportedPrior"]

logger = logging.getLogger(__name__)

#: Largest examination grid made up without a CT series (a 512 x 512 x 381 CT has 1e8 voxels):
#: contours or a dose grid beyond it are implausible and would exhaust memory.
MAX_SYNTHETIC_CT_VOXELS = 10 ** 8


@dataclass(frozen=True)
class ImportedPrior:
    """A prior course as imported.

    Attributes
    ----------
    name : str
        Its evaluation dose's name.
    path : str
    fractions : int
    recovery : float
        As given by the caller (RayStation cannot store it: give it to the plug-in's
        configuration).
    registered : bool
        Resampled through a registration onto the plan's dose grid.
    unknown_voxels : int
        Voxels of the stored dose that are NaN (outside the prior grid after registration).
    note : str
        How the total dose was obtained (DoseSummationType).
    """

    name: str
    path: str
    fractions: int
    recovery: float
    registered: bool
    unknown_voxels: int
    note: str


@dataclass(frozen=True, eq=False)
class ImportedCase:
    """Result of :func:`import_dicom`.

    Attributes
    ----------
    data : PhantomData
        The bundle loaded into the mock (mm, Gy).
    patient : mock patient or None
        The loaded patient (None with ``load=False``).
    frame_of_reference_uid : str
    fractions : int
    fractions_source : {'RTPLAN', 'argument', 'assumed'}
        'assumed': whole-course dose with no fraction count known; 1 is stored and
        the total dose is exact, but per-fraction quantities are not.
    prescription_gy : float or None
    plan_dose_note : str
    roi_names : tuple of str
    empty_rois : tuple of str
        ROIs without closed contours (imported without geometry).
    synthetic_ct : bool
    priors : tuple of ImportedPrior
    """

    data: PhantomData
    patient: Any
    frame_of_reference_uid: str
    fractions: int
    fractions_source: str
    prescription_gy: Optional[float]
    plan_dose_note: str
    roi_names: Tuple[str, ...]
    empty_rois: Tuple[str, ...]
    synthetic_ct: bool
    priors: Tuple[ImportedPrior, ...] = field(default=())


def _read(reader: Any, what: str, path: Any, *args: Any) -> Any:
    """``reader(path, *args)``; a malformed element that the reader's own checks miss
    (pydicom/numpy raising TypeError, ValueError, NotImplementedError, ...) becomes a
    DicomImportError naming the file, never a bare exception."""
    try:
        return reader(path, *args)
    except DicomImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure of a malformed file
        raise DicomImportError(f"{what} {str(path)!r} cannot be read: a malformed element "
                               f"({type(exc).__name__}: {exc}); export the file again") from None


def _fraction_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise DicomImportError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def _prior_items(priors: Sequence[Any]) -> list:
    out = []
    for k, item in enumerate(priors):
        if isinstance(item, (str, Path)) or not isinstance(item, (tuple, list)) or not 2 <= len(item) <= 4:
            raise DicomImportError(f"priors[{k}] must be (path, fractions[, recovery[, name]]), got {item!r}")
        path, fx = item[0], _fraction_count(item[1], f"priors[{k}] fractions")
        rec = float(item[2]) if len(item) > 2 and item[2] is not None else 0.0
        if not 0.0 <= rec < 1.0:
            raise DicomImportError(f"priors[{k}] recovery must be in [0, 1), got {rec!r}")
        name = item[3] if len(item) > 3 else None
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise DicomImportError(f"priors[{k}] name must be a non-empty string, got {name!r}")
        out.append((path, fx, rec, name))
    return out


def _prior_to_planning(prior: DoseFile, planning_frame: str, registration: Any) -> np.ndarray:
    if registration is None:
        raise DicomImportError(
            f"prior RTDOSE {prior.path!r} is on frame of reference {prior.frame_of_reference_uid}, the plan on "
            f"{planning_frame}: give a registration (a DICOM REG file or a 4x4 matrix mapping prior-frame to "
            "planning-frame coordinates)")
    if isinstance(registration, (str, Path)):
        return read_registration(registration, prior.frame_of_reference_uid, planning_frame)
    return rigid_matrix(registration, "registration matrix")


def _bounds_xy(rois: Sequence[Any]) -> Optional[Tuple[float, float, float, float]]:
    pts = [c for r in rois for _, cs in r.planes for c in cs]
    if not pts:
        return None
    allp = np.concatenate(pts)
    return float(allp[:, 0].min()), float(allp[:, 0].max()), float(allp[:, 1].min()), float(allp[:, 1].max())


def _touches_grid(planes: Sequence[Tuple[float, Sequence[np.ndarray]]], grid: GridSpec, nominal_mm: float) -> bool:
    """True when some contour plane's slab and in-plane box overlap the grid's extent."""
    if not planes:
        return False
    lo, hi = slab_bounds_mm(np.array([z for z, _ in planes]), nominal_mm)
    (x0, y0, z0), (x1, y1, z1) = grid.corner_mm, tuple(c + n * d for c, n, d in
                                                       zip(grid.corner_mm, grid.shape_zyx[::-1], grid.spacing_xyz_mm))
    for (_, contours), zlo, zhi in zip(planes, lo, hi):
        if zhi <= z0 or zlo >= z1:
            continue
        pts = np.concatenate(contours)
        if pts[:, 0].max() > x0 and pts[:, 0].min() < x1 and pts[:, 1].max() > y0 and pts[:, 1].min() < y1:
            return True
    return False


def import_dicom(*, rtstruct: Any, plan_dose: Any, plan: Any = None, ct_dir: Any = None,
                 priors: Sequence[Any] = (), registration: Any = None, fractions: Optional[int] = None,
                 load: bool = True, physical_only: bool = True) -> ImportedCase:
    """Import DICOM-RT files as the current mock patient (see the module doc).

    Parameters
    ----------
    rtstruct : path
        RTSTRUCT file.
    plan_dose : path
        RTDOSE of the plan, on the planning frame of reference.
    plan : path, optional
        RTPLAN: fraction count and prescription.
    ct_dir : path, optional
        Directory of the planning CT series.  Without it the examination is synthetic.
    priors : sequence of (path, fractions[, recovery[, name]])
        Prior-course RTDOSEs with their fraction counts (and recovery fraction in
        [0, 1), default 0; evaluation dose name, default ``"<stem> <Dmax>Gy/<n>fx"``).
    registration : path or array (4, 4), optional
        For priors on another frame of reference: a DICOM REG file, or a rigid 4×4
        matrix mapping prior-frame to planning-frame coordinates (mm).
    fractions : int, optional
        Fraction count of the plan when there is no RTPLAN (needed for a
        per-fraction RTDOSE); must agree with the RTPLAN when both are given.
    load : bool
        Load the result as the current mock patient (default True).
    physical_only : bool
        Refuse a plan or prior RTDOSE whose DoseType is not PHYSICAL (default True: the
        courses are summed from physical doses); False reads any dose map as it is, for a
        DVH of the map alone (``reirrad dvh``).

    Returns
    -------
    ImportedCase

    Raises
    ------
    constraints.errors.DicomImportError
        Any file that cannot be imported as asked (the message names the file and
        the problem); nothing is loaded then.
    """
    ss = _read(read_rtstruct, "RTSTRUCT", rtstruct)
    dose = _read(read_rtdose, "plan RTDOSE", plan_dose, "plan RTDOSE")
    if physical_only:
        require_physical(dose, "plan RTDOSE")
    plan_file = _read(read_rtplan, "RTPLAN", plan) if plan is not None else None
    ct = _read(read_ct_series, "CT directory", ct_dir) if ct_dir is not None else None
    planning_frame = ct.frame_of_reference_uid if ct is not None else ss.frame_of_reference_uid
    if ss.frame_of_reference_uid != planning_frame:
        raise DicomImportError(
            f"RTSTRUCT {ss.path!r} is on frame of reference {ss.frame_of_reference_uid}, the CT series in "
            f"{str(ct_dir)!r} on {planning_frame}: export the structure set drawn on this CT")
    if dose.frame_of_reference_uid != planning_frame:
        raise DicomImportError(
            f"plan RTDOSE {dose.path!r} is on frame of reference {dose.frame_of_reference_uid}, the planning "
            f"{'CT' if ct is not None else 'RTSTRUCT'} on {planning_frame}: the plan dose must be on the planning "
            "frame (a registration is accepted for prior-course doses only)")
    if plan_file is not None and plan_file.frame_of_reference_uid and plan_file.frame_of_reference_uid != planning_frame:
        raise DicomImportError(f"RTPLAN {plan_file.path!r} is on frame of reference "
                               f"{plan_file.frame_of_reference_uid}, the planning data on {planning_frame}")
    if fractions is not None:
        fractions = _fraction_count(fractions, "fractions")
    if plan_file is not None:
        if fractions is not None and fractions != plan_file.fractions:
            raise DicomImportError(f"fractions={fractions} disagrees with RTPLAN {plan_file.path!r}, which plans "
                                   f"{plan_file.fractions} fractions")
        n_fx, fx_source = plan_file.fractions, "RTPLAN"
    elif fractions is not None:
        n_fx, fx_source = fractions, "argument"
    else:
        n_fx, fx_source = None, "assumed"
    total_gy, note = dose_total_gy(dose, n_fx, "plan RTDOSE")
    n_fx = n_fx or 1
    nominal = ss.nominal_plane_spacing_mm()
    if ct is not None:
        grid, hu = ct.grid, ct.hu
        nominal = nominal or grid.spacing_xyz_mm[2]
    else:
        planes_z = np.concatenate([r.z_planes_mm for r in ss.rois]) if ss.rois else np.zeros(0)
        grid = synthetic_ct_grid(dose.grid, _bounds_xy(ss.rois), planes_z, nominal)
        n_voxels = int(np.prod([float(n) for n in grid.shape_zyx]))
        if n_voxels > MAX_SYNTHETIC_CT_VOXELS:
            raise DicomImportError(
                f"RTSTRUCT {ss.path!r}: its contours {_bounds_xy(ss.rois)} (x min, x max, y min, y max; mm) and "
                f"the plan RTDOSE's grid would need a synthetic examination of {tuple(grid.shape_zyx)} voxels "
                f"(more than {MAX_SYNTHETIC_CT_VOXELS:.0e}); check the contour coordinates, or give the CT series")
        nominal = nominal or grid.spacing_xyz_mm[2]
        hu = np.zeros(grid.shape_zyx, dtype=np.float32)
    prior_specs, prior_infos = [], []
    for path, fx, rec, name in _prior_items(priors):
        pd = _read(read_rtdose, "prior RTDOSE", path, "prior RTDOSE")
        if physical_only:
            require_physical(pd, "prior RTDOSE")
        ptotal, pnote = dose_total_gy(pd, fx, "prior RTDOSE")
        pgrid: GridSpec = pd.grid
        registered = pd.frame_of_reference_uid != planning_frame
        if registered:
            m = _prior_to_planning(pd, planning_frame, registration)
            ptotal = resample_dose_rigid(ptotal, pd.grid, dose.grid, m)
            pgrid = dose.grid
        dmax = float(np.nanmax(ptotal)) if np.isfinite(ptotal).any() else 0.0
        label = name or f"{Path(str(path)).stem} {dmax:.1f}Gy/{fx}fx"
        prior_specs.append(PriorCourseSpec(label, ptotal, pgrid, fx))
        prior_infos.append(ImportedPrior(label, str(path), fx, rec, registered, int(np.isnan(ptotal).sum()), pnote))
    labels = [p.name for p in prior_specs]
    if len(set(labels)) != len(labels):
        raise DicomImportError(f"prior evaluation dose names {labels} are not unique; give each prior a name")
    # contours are kept as the ROIs' shapes; the mock voxelizes them on the grids asked for
    rois = tuple(RoiSpec(r.name, r.roi_type, organ_type_for(r.roi_type), None, r.color, planes=r.planes,
                         plane_spacing_mm=nominal) for r in ss.rois)
    empty = tuple(r.name for r in ss.rois if not _touches_grid(r.planes, grid, nominal))
    patient_name = (ct.patient_name if ct is not None else "") or ss.patient_name or "Imported^DICOM"
    patient_id = (ct.patient_id if ct is not None else "") or ss.patient_id or "DICOM-IMPORT"
    data = PhantomData(
        name=f"dicom:{Path(str(rtstruct)).name}", params={"rtstruct": str(rtstruct), "plan_dose": str(plan_dose)},
        ct_grid=grid, ct_hu=hu, rois=tuple(rois), dose_grid=dose.grid, beams=(), influence_gy=None,
        beamlet_beam_index=np.zeros(0, dtype=int), prior_courses=tuple(prior_specs),
        prescription_gy=plan_file.prescription_gy if plan_file is not None else None, fractions=n_fx,
        target_roi=None, patient_name=patient_name, patient_id=patient_id, notes=note, plan_dose_gy=total_gy,
        frame_of_reference_uid=planning_frame,
        patient_position=ct.patient_position if ct is not None else "HFS")
    patient = None
    if load:
        from ._loader import load_patient_data
        patient = load_patient_data(data, initial_plan="none")
    logger.info("Imported %s: %d ROIs (%d empty), %d prior course(s), %s CT.", ss.path, len(rois), len(empty),
                len(prior_specs), "synthetic" if ct is None else "real")
    return ImportedCase(data, patient, planning_frame, n_fx, fx_source, data.prescription_gy, note,
                        tuple(r.name for r in ss.rois), empty, ct is None, tuple(prior_infos))
