"""The offline FMO strategies (``exact``, ``zones``, ``sbrt-only``) on an imported patient.

An imported plan has no beam model, so the beamlet influence matrix is computed the
way the phantoms' is (:func:`mock_tps.dose_engine.influence_matrix`, pyRadPlan,
cached on disk): the imported CT, beamlets covering the protocol's target ROI (9
equi-spaced coplanar beams at its centroid), dose on the plan RTDOSE's grid inside
the External ROI.  The resolution is the beamlet width (``bixel_mm``; 10 mm is the
phantoms' coarse size) and the plan RTDOSE's grid.  Each strategy is then solved and
checked exactly (:func:`optimizer.fmo_strategies.plan_strategy`).
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

from constraints.dose_course import DoseCourse
from constraints.errors import InputError
from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

__all__ = ["N_BEAMS", "fmo_case_from_import", "run_strategies"]

#: Equi-spaced coplanar beams (the phantoms' default, a VMAT approximation).
N_BEAMS = 9


def _coverage(data: Any, roi_name: str) -> np.ndarray:
    from mock_tps._dicom_voxelize import voxelize_planes

    roi = next(r for r in data.rois if r.name == roi_name)
    return voxelize_planes(roi.planes, data.ct_grid, nominal_spacing_mm=roi.plane_spacing_mm)


def fmo_case_from_import(gathered: Any, imported: Any, protocol: Protocol, *, bixel_mm: float) -> Any:
    """An :class:`optimizer.fmo_case.FmoCase` of the imported patient (zero SBRT dose).

    Parameters
    ----------
    gathered : tps_scripts.adapter.Gathered
        The imported patient as the assessment read it (structures, priors on the
        plan dose grid).
    imported : mock_tps.dicom_import.ImportedCase
    bixel_mm : float
        Beamlet width at isocentre, mm.

    Raises
    ------
    constraints.errors.InputError
        No External ROI, or no target ROI.
    """
    import scipy.sparse as sp

    from mock_tps import dose_engine
    from mock_tps._phantom_data import BeamSpec, GridSpec
    from optimizer.fmo_case import FmoCase

    data = imported.data
    target_key = protocol.prescription.target
    target_roi = gathered.match.organ_to_roi.get(target_key)
    if target_roi is None or target_key not in gathered.case.structures:
        raise InputError(f"FMO strategies need the target {protocol.organs[target_key].display_name}: no ROI found")
    body_roi = next((r.name for r in data.rois if r.roi_type == "External"), None)
    if body_roi is None:
        raise InputError("FMO strategies need an External ROI (RTROIInterpretedType EXTERNAL) for the dose region")
    target = _coverage(data, target_roi)
    body = _coverage(data, body_roi)
    xs, ys, zs = data.ct_grid.centres_mm()
    w = target.astype(np.float64)
    iso = tuple(round(float(v), 1) for v in ((w.sum(axis=(0, 1)) * xs).sum() / w.sum(),
                                             (w.sum(axis=(0, 2)) * ys).sum() / w.sum(),
                                             (w.sum(axis=(1, 2)) * zs).sum() / w.sum()))
    beams = tuple(BeamSpec(f"B{k + 1}", 360.0 * k / N_BEAMS, 0.0, 0.0, iso) for k in range(N_BEAMS))
    grid = gathered.case.grid
    dose_grid = GridSpec(tuple(grid.corner_mm), tuple(grid.spacing_xyz_mm), tuple(grid.shape_zyx))
    res = dose_engine.influence_matrix(data.ct_hu, data.ct_grid, target, dose_grid, beams, bixel_mm,
                                       dose_region_mask=body)
    case = gathered.case
    zero = PlanCase(grid, case.structures, DoseCourse(np.zeros(grid.shape_zyx), grid, case.sbrt.fractions, "FMO"),
                    case.priors, case.fine_coverage)
    rx = gathered.prescription_gy
    if rx is None:
        raise InputError("FMO strategies need the prescription: the RTPLAN states none")
    return FmoCase(data.name, zero, sp.csr_matrix(res.matrix_gy, dtype=np.float64), int(case.sbrt.fractions),
                   float(rx), {"bixel_mm": float(bixel_mm), "n_beams": N_BEAMS}, imported.frame_of_reference_uid)


def run_strategies(fcase: Any, protocol: Protocol, strategies: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Solve each strategy; per strategy: status, PTVeval V24Gy (%) and D95 (Gy), pass flags, solve time (s)."""
    from optimizer.fmo import FmoOptions
    from optimizer.fmo_strategies import plan_strategy

    out: Dict[str, Dict[str, Any]] = {}
    for s in strategies:
        plan = plan_strategy(fcase, protocol, s, options=FmoOptions())
        sbrt_ok = None
        if plan.evaluation is not None:
            sbrt_ok = all(r.passed for r in plan.evaluation.results
                          if r.domain.is_sbrt and not r.advisory)
        out[s] = {"status": plan.result.status, "v24gy_percent": plan.v_rx_percent, "d95_gy": plan.d95_gy,
                  "cumulative_esophagus_pass": plan.cumulative_pass, "sbrt_only_pass": sbrt_ok,
                  "all_pass": plan.all_pass, "solve_s": round(float(plan.result.solve_s), 3)}
    return out
