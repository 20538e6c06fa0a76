"""The phantoms' prior courses: conventional 3D-conformal plans and the dose they gave.

Each prior course is open fields (and, for an off-cord phase, the same fields with an
MLC block over the cord PRV + 3 mm) to an analytic prior PTV, computed by the same
dose engine as the SBRT beamlets and scaled so that the prior PTV's mean dose is the
course's prescription.

``t4t5_esophageal``: esophageal CRT, AP/PA to 40 Gy then off-cord laterals to 60 Gy.
``c7t1_head_neck``: laterals + anterior field to 42 Gy, then off-cord laterals to 70 Gy.
``c3_cervical``: opposed laterals, cord in the field (50 Gy / 25 fx is itself the era's
cord tolerance; docs/decisions/phantom-prior-cord-sparing.md).
``t8_two_courses``: AP/PA to T7–T9, then posterior obliques 160°/200° to T8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mock_tps._phantom_data import BeamSpec, GridSpec, PriorCourseSpec
from mock_tps._phantom_masks import fractional_mask
from mock_tps._phantom_regions import PRV_MARGIN_MM, Shapes, SpineRegion
from mock_tps._phantom_shapes import Shape, capsule

__all__ = ["PriorPlan", "PRIOR_PLANS", "CORD_BLOCK_MARGIN_MM", "prior_courses"]

#: Margin of the prior courses' MLC cord block around the cord PRV, mm.
CORD_BLOCK_MARGIN_MM = 3.0


@dataclass(frozen=True)
class PriorPlan:
    """A prior course: 3D-conformal fields to an analytic prior PTV.

    ``field_weights`` weight the open fields; ``blocked_weights`` (same gantries)
    weight the same fields with an MLC block over ``block`` (the off-cord phase of a
    conventional plan): a beamlet is shut when the block region gets at least half
    its peak dose, i.e. when its central ray crosses the region.  With
    ``weights_are_shares`` each field is first normalised to unit prior-PTV mean
    dose, so a weight is that field's share of the prescription.
    """

    name: str
    dose_gy: float
    fractions: int
    date: str
    ptv: Shape
    gantries_deg: Tuple[float, ...]
    field_weights: Tuple[float, ...]
    blocked_weights: Tuple[float, ...] = ()
    block: Optional[Shape] = None
    weights_are_shares: bool = False


def _cord_block(a: SpineRegion) -> Shape:
    """The region a conventional plan's cord block shields: the cord PRV + 3 mm, all slices."""
    half = a.cord_ax - a.cord_ay   # the cord stadium's transverse segment, as in Shapes
    return capsule((-half, a.canal_y), (half, a.canal_y), a.cord_ay + PRV_MARGIN_MM + CORD_BLOCK_MARGIN_MM,
                   -a.z_half, a.z_half)


def _course_name(dose_gy: float, fractions: int, label: str = "Prior EBRT") -> str:
    return f"{label} {dose_gy:g}Gy/{fractions}fx"


def _t4t5(s: Shapes, a: SpineRegion, doses: Sequence[float], fxs: Sequence[int]) -> List[PriorPlan]:
    d, n = doses[0], fxs[0]
    # mediastinal esophageal PTV: esophagus + 14 mm joined to the anterior
    # vertebral body (posterior edge ~5 mm anterior of the cord)
    ptv = capsule(s.esophagus_centre, (0.0, a.vb_y - 0.3 * a.vb_r), 14.0, -a.z_half + 10.0, a.z_half - 10.0)
    # the classic esophageal CRT: AP/PA to 40 Gy (cord in the field), then opposed
    # laterals with the cord blocked to 60 Gy (weights in Gy of a 60 Gy course)
    s_ = d / 60.0
    return [PriorPlan(_course_name(d, n), d, n, "2024-09-20", ptv, (0.0, 90.0, 180.0, 270.0),
                      (20.0 * s_, 0.0, 20.0 * s_, 0.0), (0.0, 10.0 * s_, 0.0, 10.0 * s_),
                      _cord_block(a), weights_are_shares=True)]


def _c7t1(s: Shapes, a: SpineRegion, doses: Sequence[float], fxs: Sequence[int]) -> List[PriorPlan]:
    d, n = doses[0], fxs[0]
    # prevertebral/pharyngo-esophageal PTV kept anterior of the cord (off-cord laterals)
    ptv = capsule(s.esophagus_centre, (0.0, a.vb_y - 0.5 * a.vb_r), 0.8 * a.vb_r, -a.z_half + 10.0, a.z_half - 10.0)
    # laterals + AP to 42 Gy (cord in the AP field), then off-cord laterals
    # (cord blocked) to 70 Gy (weights in Gy of a 70 Gy course)
    s_ = d / 70.0
    return [PriorPlan(_course_name(d, n), d, n, "2023-11-02", ptv, (90.0, 270.0, 0.0),
                      (14.0 * s_, 14.0 * s_, 14.0 * s_), (14.0 * s_, 14.0 * s_, 0.0),
                      _cord_block(a), weights_are_shares=True)]


def _c3(s: Shapes, a: SpineRegion, doses: Sequence[float], fxs: Sequence[int]) -> List[PriorPlan]:
    d, n = doses[0], fxs[0]
    zr = 1.5 * a.pitch
    ptv = capsule((0.0, a.vb_y - 3.0), (0.0, a.canal_y), a.vb_r + 5.0, -zr, zr)
    # opposed laterals, cord in the field: 50 Gy/25 fx is the era's cord tolerance
    # itself, and a cord block would take the abutting vertebral body below the
    # seed's 50 Gy EQD2 prior (docs/decisions/phantom-prior-cord-sparing.md)
    return [PriorPlan(_course_name(d, n), d, n, "2024-02-15", ptv, (90.0, 270.0), (1.0, 1.0))]


def _t8(s: Shapes, a: SpineRegion, doses: Sequence[float], fxs: Sequence[int]) -> List[PriorPlan]:
    z1 = 1.5 * a.pitch
    ptv1 = capsule((0.0, a.vb_y - 3.0), (0.0, a.canal_y + 4.0), a.vb_r + 6.0, -z1, z1)
    z2 = 0.5 * a.level_h + 8.0
    ptv2 = capsule((0.0, a.vb_y), (0.0, a.canal_y), a.vb_r + 4.0, -z2, z2)
    return [
        PriorPlan(_course_name(doses[0], fxs[0], "Prior EBRT 1"), doses[0], fxs[0], "2023-05-10", ptv1, (0.0, 180.0),
                  (1.0, 1.0)),
        PriorPlan(_course_name(doses[1], fxs[1], "Prior EBRT 2"), doses[1], fxs[1], "2024-08-22", ptv2, (160.0, 200.0),
                  (1.0, 1.0)),
    ]


#: phantom name -> its prior plans from (shapes, region, course doses (Gy), course fractions)
PRIOR_PLANS: Dict[str, Callable[[Shapes, SpineRegion, Sequence[float], Sequence[int]], List[PriorPlan]]] = {
    "t4t5_esophageal": _t4t5,
    "c7t1_head_neck": _c7t1,
    "c3_cervical": _c3,
    "t8_two_courses": _t8,
}


def prior_courses(plans: Sequence[PriorPlan], ct_hu: np.ndarray, ct_grid: GridSpec, body: np.ndarray,
                  dose_grid: GridSpec, prior_grid: GridSpec, isocenter_mm: Tuple[float, float, float],
                  bixel_mm: float, use_cache: bool) -> List[PriorCourseSpec]:
    """The dose of each prior plan on ``prior_grid`` (the top slices of ``dose_grid``), Gy.

    Each field is computed on ``dose_grid`` (inside ``body``), weighted, and the course
    scaled so that its prior PTV's mean dose is the course's prescription.
    """
    from mock_tps import dose_engine

    out = []
    for pp in plans:
        p_beams = tuple(
            BeamSpec(f"P{k + 1}", float(g), 0.0, 0.0, isocenter_mm) for k, g in enumerate(pp.gantries_deg)
        )
        p_res = dose_engine.influence_matrix(
            ct_hu, ct_grid, fractional_mask(ct_grid, pp.ptv), dose_grid, p_beams, bixel_mm,
            dose_region_mask=body, use_cache=use_cache,
        )
        ptv_d = fractional_mask(dose_grid, pp.ptv).ravel().astype(np.float64)
        fields = [dose_engine.beam_doses_gy(p_res, len(p_beams))]
        weights = list(pp.field_weights)
        if pp.blocked_weights:  # the same fields with an MLC block over pp.block
            a_csr = p_res.matrix_gy.tocsr()
            in_block = fractional_mask(dose_grid, pp.block).ravel() > 0.5
            peak = a_csr.max(axis=0).toarray().ravel()
            shut = a_csr[in_block].max(axis=0).toarray().ravel() >= 0.5 * peak
            fields.append(dose_engine.beam_doses_gy(p_res, len(p_beams), (~shut).astype(float)))
            weights += list(pp.blocked_weights)
        per_beam = np.concatenate(fields, axis=0)
        if pp.weights_are_shares:
            per_beam /= ((per_beam @ ptv_d) / ptv_d.sum())[:, None]
        dose = np.tensordot(np.asarray(weights, dtype=float), per_beam, axes=1)
        mean_ptv = float((dose * ptv_d).sum() / ptv_d.sum())
        dose_gy = (dose * (pp.dose_gy / mean_ptv)).reshape(dose_grid.shape_zyx)
        dose_gy = dose_gy[: prior_grid.shape_zyx[0]].astype(np.float32)
        out.append(PriorCourseSpec(pp.name, np.ascontiguousarray(dose_gy), prior_grid, pp.fractions, pp.date))
    return out
