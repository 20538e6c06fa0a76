"""The knobs of the closed loop (:func:`tps_scripts.optimize.run_optimization`): one frozen
dataclass, passed as an argument, so that no test or bench changes a module global."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TuningSettings"]


@dataclass(frozen=True)
class TuningSettings:
    """Knobs of the loop; defaults chosen on the mock phantoms, what was measured for each in
    ``docs/decisions/closed-loop-settings.md``. Doses in Gy, distances in mm, volumes in %.

    ``target_design`` says how PTVeval's coverage is asked for:

    * ``'single'``: MinDose at Rx + ``target_headroom_gy`` on the whole PTVeval;
    * ``'split_distance'``: PTVeval cut into ``rr_PTVeval_core`` (farther from every organ
      whose lowest zone level is below Rx than ``(Rx − level) / split_gradient_gy_per_mm``)
      with that MinDose, and ``rr_PTVeval_edge`` (the rest) with a MinDose at Rx of weight
      ``edge_weight``;
    * ``'split_dose'``: as ``'single'`` for the first run, then the cut is the first passing
      run's ``Rx − split_dose_margin_gy`` isodose (``CreateRoiGeometryFromDose``);
    * ``'min_dvh'`` (default): MinDvh at Rx + ``target_headroom_gy`` to ``target_dvh_percent``
      % of PTVeval (weight ``target_min_dose_weight``) and MinDose at Rx (weight
      ``edge_weight``): the DVH function penalizes only the hottest voxels short of the
      level, so the voxels the limits hold down cost nothing.

    ``adapt_dvh_percent`` (``'min_dvh'``): after the first passing run whose V(Rx) is below
    ``adapt_ratio`` × its V(Rx − ``adapt_dvh_below_gy``), the MinDvh volume becomes that
    V(Rx − ``adapt_dvh_below_gy``) (at least ``min_dvh_percent``): a DVH penalty on more
    volume than the limits let reach Rx spreads the dose just below Rx.

    ``subvoxel_tighten_factor``: a zone whose organ fails only by the sub-voxel rule is lowered
    by this times the excess (+ ``tighten_extra_gy``): the re-optimized dose moves, so the
    excess alone is not enough.

    ``adapt_raise_within_percent`` (``'min_dvh'``, > 0): after the first passing run whose V(Rx)
    is within this of the MinDvh volume and whose V(Rx − ``adapt_dvh_below_gy``) is above it,
    the MinDvh volume becomes that V(Rx − ``adapt_dvh_below_gy``): a met DVH penalty pushes no
    further.

    ``anticipate_subvoxel``: after every run each zone's margin is at least the gap by which
    the sub-voxel rule read its organ's SBRT-only metric above the voxel rule (+
    ``tighten_extra_gy``), since the zone's voxel level cannot see that part of the dose;
    before the first run the near-maximum (MaxDvh) zones take that gap from the plan as
    loaded (same beams, so much the same gradients at those organs' hottest voxels).

    ``reset_each_run``: whether every run starts from ``ResetOptimization`` (uniform weights,
    a run then depends on its levels only) instead of the previous run's plan; off, as a warm
    run converges in about a third of the iterations at the same coverage
    (docs/decisions/closed-loop-settings.md).

    ``reference_doses``: on a version with reference-dose functions (2025), hold each organ
    without a volume budget under its exact limit map as a MaxRefDose constraint
    (:mod:`tps_scripts.reference_limits`) instead of zones; off, as zones covered PTVeval as
    well or better on three of four phantoms at the default size (their MaxDvh spends the
    near-maximum metrics' 0.035 cc, a MaxRefDose holds every voxel) and a plan is then the
    same on every version (docs/decisions/closed-loop-settings.md).

    ``relax_margins``: whether a passing run is followed by one with the binding zones'
    margins halved (down to ``min_margin_gy``); off, as the relaxed run's level change moves
    the whole dose and may cover less.

    ``external_zone_weight``: when > 0, the unspecified tissue's zone (External − (PTV + 5 mm),
    a D0.035cc limit) is a MaxDose *objective* of this weight instead of a constraint, lowered
    only when that organ fails; off, as the objective lets the tissue's D0.035cc far above its
    limit.

    ``near_max_as_dvh``: an organ whose every binding limit is a volume metric (D0.035cc, D1cc,
    Dx%; no Dmax) and that has a single zone gets a MaxDvh *constraint* at the zone's level,
    exempting ``near_max_volume_factor`` × the metric's smallest volume, as a planner asks for
    a near-maximum (a MaxDose binds every partial voxel that touches the ROI). Such a zone is
    lowered only when its organ fails, by ``near_max_tighten_factor`` × the higher DVH rule's
    excess (+ ``tighten_extra_gy``); the assessment (both rules) still decides. The cord's
    limits (Dmax, and a D0.035cc read from a table at the prior dose) stay MaxDose constraints.

    ``exempt_volume``: an organ whose largest-volume cumulative limit (the esophagus' D1cc)
    has no hot region near the target gets, on each band zone, a MaxDvh at the strict level
    exempting a share of ``exempt_fraction`` × that volume (shares from the plan as loaded's
    band volume above the strict level − ``exempt_near_gy``) and a MaxDose at the relaxed
    limit (:mod:`tps_scripts.volume_exemption`), as a planner spends a D1cc; when that limit
    fails, the shares shrink by ``exempt_shrink_factor``.

    ``replace_target_objectives``: the copy's own objectives on PTVeval and its dose
    fall-offs are deleted (listed in the record), as they ask for 24 Gy everywhere.
    """

    margin_gy: float = 0.3
    max_iterations: int = 100
    reset_each_run: bool = False
    reference_doses: bool = False
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
    edge_weight: float = 7.0
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
    adapt_raise_within_percent: float = 1.0
    relax_margins: bool = False
    external_zone_weight: float = 0.0
    near_max_as_dvh: bool = True
    near_max_volume_factor: float = 1.0
    near_max_tighten_factor: float = 1.0
    exempt_volume: bool = True
    exempt_fraction: float = 0.9
    exempt_near_gy: float = 2.0
    exempt_shrink_factor: float = 0.5
