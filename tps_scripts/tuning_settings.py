"""The knobs of the closed loop (:func:`tps_scripts.optimize.run_optimization`): one frozen
dataclass, passed as an argument, so that no test or bench changes a module global."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TuningSettings"]


@dataclass(frozen=True)
class TuningSettings:
    """Knobs of the loop (defaults chosen on the mock phantoms; see the README).

    ``target_design`` says how PTVeval's coverage is asked for:

    * ``'single'``: MinDose at Rx + ``target_headroom_gy`` on the whole PTVeval;
    * ``'split_distance'``: PTVeval cut into ``rr_PTVeval_core`` (farther from every organ
      whose lowest zone level is below Rx than ``(Rx − level) / split_gradient_gy_per_mm``)
      with that MinDose, and ``rr_PTVeval_edge`` (the rest) with a MinDose at Rx of weight
      ``edge_weight``: the quadratic penalty stops spending the optimizer on voxels the
      limits hold below Rx;
    * ``'split_dose'``: as ``'single'`` for the first run, then the cut is the first passing
      run's ``Rx − split_dose_margin_gy`` isodose (``CreateRoiGeometryFromDose``);
    * ``'min_dvh'``: MinDvh at Rx + ``target_headroom_gy`` to ``target_dvh_percent`` % of
      PTVeval (weight ``target_min_dose_weight``) and MinDose at Rx (weight ``edge_weight``):
      the DVH function penalizes only the hottest voxels short of the level, so the voxels
      the limits hold down cost nothing and the rest are pushed past Rx.

    ``adapt_dvh_percent`` (``'min_dvh'``): after the first passing run whose V(Rx) is below
    ``adapt_ratio`` × its V(Rx − ``adapt_dvh_below_gy``) (0.6: with MaxDvh zones coarse C7-T1's
    first run reads V24Gy 18.0 % against V22Gy 35.1 %, and asking for 35.1 % gives 30.7 %), the MinDvh volume becomes that
    V(Rx − ``adapt_dvh_below_gy``) (at least ``min_dvh_percent``): a quadratic DVH penalty on
    more volume than the limits let reach Rx spreads the dose just below Rx over the voxels
    that cannot reach it (coarse C7-T1: V24Gy 1.8 % asking for 80 %, 24.4 % asking for
    V22Gy = 26.2 %).  Where V(Rx) is already most of V(Rx − 2 Gy) the smaller volume covered
    less (coarse T4-T5 42.2 -> 40.9 %, T8 46.1 -> 42.5 %), so it is not asked.

    ``subvoxel_tighten_factor``: a zone whose organ fails only by the sub-voxel rule is lowered
    by this times the excess (+ ``tighten_extra_gy``): the re-optimized dose moves, and lowering
    by the excess alone failed again on coarse T4-T5 in three runs out of four.

    ``anticipate_subvoxel``: after every run each zone's margin is at least the gap by which
    the sub-voxel rule read its organ's SBRT-only metric above the voxel rule (+
    ``tighten_extra_gy``): the zone's voxel level cannot see that part of the dose. Before the
    first run the near-maximum (MaxDvh) zones take that gap from the plan as loaded: same
    beams, so much the same gradients at those organs' hottest voxels. T4-T5 default:
    1 call, 79.7 % / 16.7 Gy, instead of 3 calls, 79.5 % / 16.6 Gy (the first run failed
    the lungs' and aorta's D0.035cc by the sub-voxel rule); coarse: the same calls, V24Gy
    within 1 point. All zones seeded so: coarse C7-T1 24.4 % instead of 29.9 %.

    ``relax_margins``: whether a passing run is followed by one with the binding zones'
    margins halved (down to ``min_margin_gy``); each costs a run, and on the coarse phantoms
    the relaxed run covered 1-4 points *less* in two of four (its level change moves the
    whole dose), so that a fourth run had to restore the third's levels.

    ``external_zone_weight``: when > 0, the unspecified tissue's zone (External − (PTV + 5 mm),
    a D0.035cc limit) is a MaxDose *objective* of this weight instead of a constraint, lowered
    (by twice the failing metric's excess) only when that organ fails.  As a constraint it binds
    every dose voxel the zone touches, down to partial voxels 2-3 mm from the PTV on a 5 mm
    grid.  Measured (coarse, weight 50): first runs reach 47.5 / 21.5 / 22.7 / 64.9 %
    (T4-T5, C7-T1, C3, T8) instead of 39-54 / 4.9 / 0.0 / 53.8 %, but the objective lets the
    tissue's D0.035cc far above 20 Gy on C3 and C7-T1 and the lowering ends at 0-3 Gy
    (final 47.6 / 11.7 / 11.2 %, T8 failing after 4 runs): off by default.

    ``near_max_as_dvh``: an organ whose every binding limit is a volume metric (D0.035cc, D1cc,
    Dx%; no Dmax) and that has a single zone gets a MaxDvh *constraint* at the zone's level,
    exempting the metric's smallest volume as a percentage of the zone's in-grid volume, as a
    planner asks for a near-maximum: a MaxDose binds every dose voxel that touches the ROI,
    down to partial voxels next to the PTV that hold a few thousandths of a cc.  Such a zone
    is lowered only when its organ fails, by ``near_max_tighten_factor`` × the higher DVH
    rule's excess (+ ``tighten_extra_gy``); the assessment (both rules) still decides.  The
    cord's limits (Dmax, and a D0.035cc read from a table at the prior dose) stay MaxDose
    constraints.  Coarse V24Gy % (calls), T4-T5 / C7-T1 / C3 / T8: MaxDose zones 46.3 (2) /
    23.5 (3) / 1.7 (3) / 51.1 (2); MaxDvh zones 45.7 (2) / 30.7 (2) / 18.3 (3) / 55.0 (2).
    Tightening by 2 × the excess: 44.0 / 30.7 / 18.3 / 56.7; half the metric's volume
    (``near_max_volume_factor`` 0.5, tightening 2 ×, ``adapt_ratio`` 0.5): 46.0 / 30.4 / 16.1 /
    40.2 (T8's first run then failed the cord's sub-voxel reading by 2.5 Gy).

    ``replace_target_objectives``: the copy's own objectives on PTVeval and its dose
    fall-offs are deleted (listed in the record), as they ask for 24 Gy everywhere.
    """

    margin_gy: float = 0.3
    max_iterations: int = 100
    reset_each_run: bool = True
    min_margin_gy: float = 0.1
    tighten_extra_gy: float = 0.1
    min_gain_percent: float = 0.5
    target_min_dose_weight: float = 100.0
    target_max_dose_weight: float = 20.0
    target_max_dose_factor: float = 1.25
    falloff_weight: float = 5.0
    falloff_low_factor: float = 0.5
    falloff_distance_mm: float = 10.0
    falloff_high_factor: float = 1.0
    target_design: str = "min_dvh"
    replace_target_objectives: bool = True
    target_headroom_gy: float = 0.5
    edge_weight: float = 5.0
    edge_level_factor: float = 1.0
    split_gradient_gy_per_mm: float = 2.0
    split_dose_margin_gy: float = 1.0
    target_dvh_percent: float = 80.0
    adapt_dvh_percent: bool = True
    adapt_dvh_below_gy: float = 2.0
    min_dvh_percent: float = 5.0
    subvoxel_tighten_factor: float = 2.0
    anticipate_subvoxel: bool = True
    adapt_ratio: float = 0.6
    relax_margins: bool = False
    external_zone_weight: float = 0.0
    near_max_as_dvh: bool = True
    near_max_volume_factor: float = 1.0
    near_max_tighten_factor: float = 1.0
