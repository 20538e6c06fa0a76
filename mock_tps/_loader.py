"""Build a loaded patient from :class:`~mock_tps._phantom_data.PhantomData`.

The patient arrives as a planner would have left it: case "CASE 1", examination
"CT 1", the phantom's ROIs (approved? no: unapproved structure set), the prior
courses as evaluation doses in ``case.TreatmentDelivery.FractionEvaluations[0]``,
and plan "SBRT" with beam set "SBRT" (prescription ``data.prescription_gy`` in
``data.fractions`` fractions to ``data.target_roi``).  Every object made here is
the user's (``_mock_user_made = True``): reirrad's scripts must never touch it.
"""
from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any, Optional

import numpy as np

from ._api import ArgumentException
from ._bridge import _session
from ._dose import EvaluationDose, gy_to_cgy
from ._optimization import PlanOptimization
from ._patient import Case, DoseOnExamination, Examination, Patient
from ._databases import ClinicDB, MachineDB, PatientDB, Ui
from ._phantom_data import PhantomData
from ._versions import DEFAULT_RS_VERSION, get_profile
from ._plan import BeamSet, PrescriptionDoseReference, Prescription, TreatmentPlan

__all__ = ["load_patient_data", "unload", "install_connect_modules"]

logger = logging.getLogger(__name__)

CASE_NAME = "CASE 1"
EXAM_NAME = "CT 1"
PLAN_NAME = "SBRT"
BEAM_SET_NAME = "SBRT"
#: Objective weights of the planner's SBRT-only plan (illustrative, not from the seed study).
_SBRT_ONLY_WEIGHTS = {"MinDvh": 100.0, "MinDose": 5.0, "MaxDose": 20.0, "DoseFallOff": 5.0, "Ring": 50.0}
#: The planner's PTVeval MinDvh: Rx + 0.5 Gy to 80 % (the hottest 80 % pushed past Rx; the
#: voxels the cord holds down are left to the MinDose at Rx), MaxDose at 125 % of Rx.
_MIN_DVH_HEADROOM_CGY = 50.0
_MIN_DVH_PERCENT = 80
_MAX_DOSE_FACTOR = 1.25
_CORD_PRV = "SpinalCord_PRV"
_ESOPHAGUS = "Esophagus"
#: The SBRT-only 20 Gy organs of Koide 2024 that the phantoms have, as MaxDose constraints (cGy)
#: below 20 Gy by what the sub-voxel reading adds on a 2 mm grid (measured on T4-T5: esophagus
#: +0.7 Gy, lung partial voxels next to the PTV more): the esophagus planned to its limit, as
#: in the seed's fatal case (sub-voxel D0.035cc 19.9 Gy).
_SBRT_ONLY_OAR_MAX_CGY = {"Esophagus": 1920.0, "Trachea": 1850.0, "Lungs": 1800.0, "Aorta": 1850.0}
_RING_MAX_CGY = 1900.0
_RING = "Ring_PTV+5mm"
_SBRT_ONLY_ITERATIONS = 100


def install_connect_modules() -> None:
    """Make the running version's scripting module (``connect`` up to 2024B, ``raystation``
    from 2025) give :mod:`mock_tps.connect`; the other name is not importable."""
    from . import connect
    name = _session().profile.module_name
    other = "raystation" if name == "connect" else "connect"
    sys.modules[name] = connect
    if sys.modules.get(other) is connect:
        del sys.modules[other]


def _check(data: Any) -> None:
    if not isinstance(data, PhantomData):
        raise TypeError(f"data must be a mock_tps PhantomData, got {type(data).__name__}")
    for r in data.rois:
        if r.mask is None and r.planes is None:
            raise ValueError(f"ROI '{r.name}' has neither a mask nor contours")
        if r.mask is not None and np.shape(r.mask) != tuple(data.ct_grid.shape_zyx):
            raise ValueError(f"ROI '{r.name}' mask shape {np.shape(r.mask)} differs from the CT grid "
                             f"shape {data.ct_grid.shape_zyx}")
    if np.shape(data.ct_hu) != tuple(data.ct_grid.shape_zyx):
        raise ValueError(f"ct_hu shape {np.shape(data.ct_hu)} differs from the CT grid shape {data.ct_grid.shape_zyx}")
    if data.influence_gy is None:
        if data.plan_dose_gy is None:
            raise ValueError("PhantomData needs influence_gy (a beam model) or plan_dose_gy (an imported dose)")
    elif data.influence_gy.shape[0] != data.dose_grid.n_voxels:
        raise ValueError(f"influence_gy has {data.influence_gy.shape[0]} rows, the dose grid "
                         f"{data.dose_grid.n_voxels} voxels")
    if data.plan_dose_gy is not None and np.shape(data.plan_dose_gy) != tuple(data.dose_grid.shape_zyx):
        raise ValueError(f"plan_dose_gy shape {np.shape(data.plan_dose_gy)} differs from the dose grid shape "
                         f"{data.dose_grid.shape_zyx}")
    names = [r.name for r in data.rois]
    if data.target_roi is None and data.influence_gy is not None:
        raise ValueError("target_roi is required for a plan with a beam model")
    if data.target_roi is not None and data.target_roi not in names:
        raise ValueError(f"target_roi '{data.target_roi}' is not among the ROIs {names}")


def load_patient_data(data: PhantomData, *, initial_plan: str = "sbrt_only",
                      rs_version: str = DEFAULT_RS_VERSION, gui: bool = False) -> Patient:
    """Build a patient from phantom data and make it current.

    Parameters
    ----------
    data : PhantomData
    rs_version : str
        The RayStation version the mock behaves as (a key of ``mock_tps.RS_VERSIONS``):
        its scripting module name, method signatures, argument spellings and members.
    gui : bool
        Whether a GUI is present (``is_gui_disabled()`` False, ``get_current('ui')``
        available).  Default False, as a script run without GUI.
    initial_plan : {'sbrt_only', 'none'}
        'sbrt_only': the plan carries the functions a planner would have made under
        the seed study's SBRT-only constraints — PTVeval MinDvh (Rx + 0.5 Gy at 80 %),
        MinDose (Rx) and MaxDose (125 % Rx), SpinalCord_PRV MaxDose *constraint* at its
        table limit − 0.3 Gy, other OARs MaxDose constraints 18.0–19.2 Gy, a ring
        (External − (PTV + 5 mm)) MaxDose objective 19.0 Gy, External
        DoseFallOff (Rx → Rx/2 over 1.5 cm) — optimized, dose computed.  Functions on absent ROIs are left out.  'none': no functions, no
        dose (``DoseValues`` None).

    Returns
    -------
    Patient
        Also current: its case, examination, plan and beam set are current, and
        ``import connect`` / ``import raystation`` give :mod:`mock_tps.connect`.
    """
    if initial_plan not in ("sbrt_only", "none"):
        raise ValueError(f"initial_plan must be 'sbrt_only' or 'none', got {initial_plan!r}")
    profile = get_profile(rs_version)
    _check(data)
    s = _session()
    s.profile = profile
    s.gui = bool(gui)
    patient = Patient(data.patient_name, data.patient_id)
    case = Case(CASE_NAME)
    patient.Cases._append(case)
    uid = data.frame_of_reference_uid or (
        "1.2.826.0.1.3680043.9.7777." + str(int(hashlib.sha1(data.name.encode()).hexdigest()[:12], 16)))
    exam = Examination(EXAM_NAME, data.ct_grid, data.ct_hu, uid, patient_position=data.patient_position)
    case.Examinations._append(exam)
    pm = case.PatientModel
    for spec in data.rois:
        roi = pm.CreateRoi(Name=spec.name, Color=spec.color, Type=spec.roi_type)
        roi.OrganData._init(OrganType=spec.organ_type)
        roi._mock_user_made = True
    ss = pm._add_structure_set(exam)
    for spec in data.rois:
        geom = ss._geometry(spec.name)
        if spec.planes is not None:
            geom._set_contours(spec.planes, spec.plane_spacing_mm or data.ct_grid.spacing_xyz_mm[2], spec.mask)
        else:
            geom._set_coverage(spec.mask)

    doe = DoseOnExamination(exam)
    case.TreatmentDelivery.FractionEvaluations[0].DoseOnExaminations._append(doe)
    for course in data.prior_courses:
        ev = EvaluationDose(course.name, course.grid, ss)
        ev._set_dose_cgy(gy_to_cgy(np.asarray(course.dose_gy, dtype=np.float64)))
        ev._mock_user_made = True
        doe.DoseEvaluations._append(ev)

    plan = TreatmentPlan(case, PLAN_NAME, data.dose_grid, ss)
    plan._mock_user_made = True
    case.TreatmentPlans._append(plan)
    imported = data.influence_gy is None
    if imported:                          # no beamlets: an empty (voxels × 0) influence, no scipy to import
        from . import _dicom_plan
        bs = _dicom_plan.BeamSet(plan, BEAM_SET_NAME, data.fractions, data.beams,
                                 np.zeros((data.dose_grid.n_voxels, 0)), np.zeros(0, dtype=int),
                                 data.dose_grid, ss, exam)
    else:
        bs = BeamSet(plan, BEAM_SET_NAME, data.fractions, data.beams, data.influence_gy,
                     data.beamlet_beam_index, data.dose_grid, ss, exam)
    bs._mock_user_made = True
    if data.prescription_gy is not None:
        target = pm.RegionsOfInterest[data.target_roi] if data.target_roi is not None else None
        bs._init(Prescription=Prescription(PrescriptionDoseReference(
            gy_to_cgy(data.prescription_gy), target, "DoseAtVolume", 90.0)))
    plan.BeamSets._append(bs)
    if imported:
        bs.FractionDose._set_dose_cgy(gy_to_cgy(np.asarray(data.plan_dose_gy, dtype=np.float64)) / data.fractions)
        plan._update_total_dose()
        po = _dicom_plan.PlanOptimization(plan, bs)
    else:
        bs._initial_weights = _uniform_weights(bs, data)
        bs._weights = bs._initial_weights.copy()
        po = PlanOptimization(plan, bs)
    plan.PlanOptimizations._append(po)

    s.patient, s.case, s.examination, s.plan, s.beam_set = patient, case, exam, plan, bs
    s.databases = {"PatientDB": PatientDB(patient), "MachineDB": MachineDB(), "ClinicDB": ClinicDB(),
                   "ui": Ui(profile.application_version)}
    install_connect_modules()
    if initial_plan == "sbrt_only" and not imported:
        _make_sbrt_only_plan(po, data)
    logger.info("Loaded phantom '%s' (%d ROIs, %d prior courses, %s).", data.name,
                len(data.rois), len(data.prior_courses),
                "imported dose, no beam model" if imported else f"{data.influence_gy.shape[1]} beamlets")
    return patient


def _uniform_weights(bs: BeamSet, data: PhantomData) -> np.ndarray:
    """Equal beamlet weights scaled so the target's mean fraction dose is the Rx per fraction."""
    n = bs._influence.value.shape[1]
    cov = bs._structure_set._geometry(data.target_roi)._coverage_on(data.dose_grid).ravel()
    d = bs._fraction_dose_gy(np.ones(n))
    mean = float(np.sum(cov * d) / np.sum(cov)) if np.sum(cov) > 0 else 0.0
    scale = (data.prescription_gy / data.fractions) / mean if mean > 0 else 1.0
    return np.full(n, scale)


def _prior_cord_bed2(po: PlanOptimization, data: PhantomData) -> float:
    """Prior cord-PRV BED (α/β 2 Gy) a planner reads off the prior plans: the sum over
    courses of each course's maximum BED in the cord PRV (an upper bound of the voxel sum)."""
    ss = po._plan.BeamSets[0]._structure_set
    total = 0.0
    for course in data.prior_courses:
        cov = ss._geometry(_CORD_PRV)._coverage_on(course.grid)
        d = np.asarray(course.dose_gy, dtype=np.float64)[cov > 0]
        d = d[np.isfinite(d)]
        if d.size:
            dmax = float(d.max())
            total += dmax * (1.0 + dmax / (course.fractions * 2.0))
    return total


def _make_sbrt_only_plan(po: PlanOptimization, data: PhantomData) -> None:
    """The planner's plan under the seed study's SBRT-only constraints, without any
    cumulative assessment (the practice in which the seed's fatal case was planned):

    - cord PRV: MaxDose constraint 0.3 Gy below the Koide 2024 table limit for the
      prior cord BED (α/β 2) — D0.035cc ≤ limit is then met with margin;
    - every other specified OAR present: MaxDose constraint, esophagus 19.2 Gy, trachea and
      aorta 18.5 Gy, lungs 18.0 Gy (D0.035cc ≤ 20 Gy also by the sub-voxel rule);
    - unspecified tissue: a ring ROI ``Ring_PTV+5mm`` = External − (PTV + 5 mm) with a
      MaxDose *objective* 19.0 Gy (weight 50): as a constraint it binds the ring's partial
      voxels 2-3 mm from the PTV (coarse T4-T5: PTVeval V24Gy 42.5 % instead of 52.9 %, the
      ring's D0.035cc ≤ 20 Gy met either way);
    - PTVeval MinDvh 24.5 Gy at 80 %, MinDose 24 Gy (weight 5), MaxDose 30 Gy;
      External DoseFallOff (24 → 12 Gy over 1.5 cm).

    Weights and margins are this mock's illustrative choices, not the seed study's.
    """
    from constraints.protocol import load_protocol

    pm = po._plan._case.PatientModel
    names = set(pm.RegionsOfInterest.Keys)
    rx = gy_to_cgy(data.prescription_gy)
    made = []
    f = po.AddOptimizationFunction(FunctionType="MinDvh", RoiName=data.target_roi)
    f.DoseFunctionParameters.DoseLevel = rx + _MIN_DVH_HEADROOM_CGY
    f.DoseFunctionParameters.PercentVolume = _MIN_DVH_PERCENT
    f.DoseFunctionParameters.Weight = _SBRT_ONLY_WEIGHTS["MinDvh"]
    made.append(f)
    f = po.AddOptimizationFunction(FunctionType="MinDose", RoiName=data.target_roi)
    f.DoseFunctionParameters.DoseLevel = rx
    f.DoseFunctionParameters.Weight = _SBRT_ONLY_WEIGHTS["MinDose"]
    made.append(f)
    f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=data.target_roi)
    f.DoseFunctionParameters.DoseLevel = rx * _MAX_DOSE_FACTOR
    f.DoseFunctionParameters.Weight = _SBRT_ONLY_WEIGHTS["MaxDose"]
    made.append(f)
    if _CORD_PRV in names:
        table = load_protocol("koide2024").tables["cord_prv_d0035cc"]
        limit_gy = table.lookup(_prior_cord_bed2(po, data))
        f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=_CORD_PRV, IsConstraint=True)
        f.DoseFunctionParameters.DoseLevel = gy_to_cgy(limit_gy - 0.3)
        made.append(f)
    for oar, level_cgy in _SBRT_ONLY_OAR_MAX_CGY.items():
        if oar in names:
            f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=oar, IsConstraint=True)
            f.DoseFunctionParameters.DoseLevel = level_cgy
            made.append(f)
    external = _external_name(data)
    if external is not None and data.target_roi is not None:
        ptv = "PTV" if "PTV" in names else data.target_roi
        ring = pm.CreateRoi(Name=pm.GetUniqueRoiName(DesiredName=_RING), Color="Cyan", Type="Control")
        margin = {"Type": "Expand", "Superior": 0.5, "Inferior": 0.5, "Anterior": 0.5, "Posterior": 0.5,
                  "Right": 0.5, "Left": 0.5}
        zero = {k: (0.0 if k != "Type" else "Expand") for k in margin}
        ring.CreateAlgebraGeometry(Examination=po._plan.BeamSets[0]._examination, Algorithm="Auto",
                                   ExpressionA={"Operation": "Union", "SourceRoiNames": [external],
                                                "MarginSettings": zero},
                                   ExpressionB={"Operation": "Union", "SourceRoiNames": [ptv],
                                                "MarginSettings": margin},
                                   ResultOperation="Subtraction", ResultMarginSettings=zero)
        ring._mock_user_made = True
        f = po.AddOptimizationFunction(FunctionType="MaxDose", RoiName=ring.Name)
        f.DoseFunctionParameters.DoseLevel = _RING_MAX_CGY
        f.DoseFunctionParameters.Weight = _SBRT_ONLY_WEIGHTS["Ring"]
        made.append(f)
        f = po.AddOptimizationFunction(FunctionType="DoseFallOff", RoiName=external)
        p = f.DoseFunctionParameters
        p.HighDoseLevel = rx
        p.LowDoseLevel = rx / 2.0
        p.LowDoseDistance = 1.5
        p.Weight = _SBRT_ONLY_WEIGHTS["DoseFallOff"]
        made.append(f)
    for f in made:
        f._mock_user_made = True
    po.OptimizationParameters.Algorithm.MaxNumberOfIterations = _SBRT_ONLY_ITERATIONS
    po.RunOptimization()


def _external_name(data: PhantomData) -> Optional[str]:
    for r in data.rois:
        if r.roi_type == "External":
            return r.name
    return None


def unload() -> None:
    """Close the patient: afterwards ``get_current`` raises ``SystemError``."""
    s = _session()
    s.patient = s.case = s.examination = s.plan = s.beam_set = None
    s.composite_depth = 0


def load_phantom(name: str, *, initial_plan: str = "sbrt_only", rs_version: str = DEFAULT_RS_VERSION,
                 gui: bool = False, **params: Any) -> Patient:
    """Build a built-in phantom (``mock_tps.PHANTOMS``) and load it as the current patient.

    Parameters
    ----------
    name : str
        A key of ``mock_tps._phantoms.PHANTOM_BUILDERS``.
    initial_plan : {'sbrt_only', 'none'}
        See :func:`load_patient_data`.
    rs_version : str
        RayStation version profile (``mock_tps.RS_VERSIONS``); see :func:`load_patient_data`.
    gui : bool
        See :func:`load_patient_data`.
    **params
        Passed to the phantom builder.

    Raises
    ------
    ArgumentException
        Unknown phantom name (the message lists the known ones).
    """
    from ._phantoms import PHANTOM_BUILDERS
    if name not in PHANTOM_BUILDERS:
        raise ArgumentException(f"Unknown phantom '{name}'; known: {', '.join(PHANTOM_BUILDERS)}.")
    get_profile(rs_version)
    data = PHANTOM_BUILDERS[name](**params)
    return load_patient_data(data, initial_plan=initial_plan, rs_version=rs_version, gui=gui)
