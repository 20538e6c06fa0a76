"""Plain-data snapshot of a mock patient, for "nothing changed except ..." tests."""
from __future__ import annotations

from typing import Any, Dict

from ._api import array_digest

__all__ = ["snapshot", "approve"]


def _digest_dose(dose: Any) -> Any:
    return dose._snapshot()


def _case(case: Any) -> Dict[str, Any]:
    pm = case.PatientModel
    out: Dict[str, Any] = {}
    out["examinations"] = {
        e.Name: {"position": e.PatientPosition, "modality": e.EquipmentInfo.Modality,
                 "frame_of_reference": e.EquipmentInfo.FrameOfReference,
                 "ct": e.Series[0].ImageStack._stored.digest()}
        for e in case.Examinations}
    out["rois"] = {
        r.Name: {"type": r.Type, "color": r.Color, "organ_type": r.OrganData.OrganType,
                 "derived": r.DerivedRoiExpression is not None, "user_made": r._mock_user_made}
        for r in pm.RegionsOfInterest}
    out["structure_sets"] = {
        ss.OnExamination.Name: {
            "approval": [s.Review.ApprovalStatus for s in ss.SubStructureSets],
            "approved_rois": sorted(set().union(*[s._approved_rois for s in ss.SubStructureSets])),
            "geometries": {g.OfRoi.Name: None if g._coverage is None else g._coverage.digest()
                           for g in ss.RoiGeometries}}
        for ss in pm.StructureSets}
    plans = {}
    for p in case.TreatmentPlans:
        beam_sets = {}
        for bs in p.BeamSets:
            rx = bs.Prescription.PrimaryPrescriptionDoseReference
            beam_sets[bs.DicomPlanLabel] = {
                "fractions": bs.FractionationPattern.NumberOfFractions,
                "prescription": None if rx is None else (rx.DoseValue, rx.OnStructure.Name, rx.PrescriptionType),
                "beams": [(b.Name, b.GantryAngle, b.CouchRotationAngle) for b in bs.Beams],
                "weights": array_digest(bs._weights),
                "fraction_dose": _digest_dose(bs.FractionDose)}
        opts = []
        for po in p.PlanOptimizations:
            objective = [] if po.Objective is None else list(po.Objective.ConstituentFunctions)
            algo = po.OptimizationParameters.Algorithm
            opts.append({
                "objective": [f._snapshot() for f in objective],
                "constraints": [f._snapshot() for f in po.Constraints],
                "function_values": [None if f.FunctionValue is None else f.FunctionValue.FunctionValue
                                    for f in objective + list(po.Constraints)],
                "algorithm": (algo.MaxNumberOfIterations, algo.OptimalityTolerance),
                "dose_calculation": dict(vars(po.OptimizationParameters.DoseCalculation)),
                "progress": None if po.ProgressOfOptimization is None
                else array_digest(po.ProgressOfOptimization.ObjectiveValues)})
        plans[p.Name] = {
            "approval": p.Review.ApprovalStatus,
            "beam_sets": beam_sets,
            "total_dose": _digest_dose(p.TreatmentCourse.TotalDose),
            "optimizations": opts,
            "goals": [e._snapshot() for e in p.TreatmentCourse.EvaluationSetup.EvaluationFunctions]}
    out["plans"] = plans
    out["evaluation_doses"] = [
        {doe.OnExamination.Name: {d.Name: _digest_dose(d) for d in doe.DoseEvaluations}
         for doe in fe.DoseOnExaminations}
        for fe in case.TreatmentDelivery.FractionEvaluations]
    return out


def snapshot(patient: Any) -> Dict[str, Any]:
    """Nested plain data (dicts, lists, tuples, str, numbers, SHA-1 hex digests of arrays)
    of every case, examination, ROI, geometry, approval state, plan, beam set,
    beamlet weights, dose, optimization function and clinical goal of ``patient``.

    Two snapshots compare equal with ``==`` iff nothing a script can change differs.
    """
    return {"name": patient.Name, "id": patient.PatientID,
            "cases": {c.CaseName: _case(c) for c in patient.Cases}}


def approve(obj: Any) -> None:
    """Mock-only: approve a plan, a structure set or a sub structure set.

    Raises
    ------
    TypeError
        ``obj`` is none of those.

    Approving a structure set locks the ROIs that have a geometry on it now.
    (In RayStation approval is a GUI action with no scripting call.)
    """
    from ._patient_model import StructureSet, SubStructureSet
    from ._plan import TreatmentPlan
    if isinstance(obj, TreatmentPlan):
        obj._approve()
        return
    if isinstance(obj, StructureSet):
        ss, sub = obj, obj.SubStructureSets[0]
    elif isinstance(obj, SubStructureSet):
        ss, sub = obj._structure_set, obj
    else:
        raise TypeError(f"approve() takes a plan or a structure set, got {type(obj).__name__}")
    sub._approve([g.OfRoi.Name for g in ss.RoiGeometries if g.HasContours()])
