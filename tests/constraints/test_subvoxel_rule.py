"""Two DVH rules, one verdict: a Dmax/D_V passes only when the voxel rule and the sub-voxel rule both pass."""
import numpy as np
import pytest

from constraints import DoseCourse, Grid, Structure
from constraints.evaluation import PlanCase, evaluate_protocol
from constraints.protocol import load_protocol
from constraints.subvoxel_rule import FineCoverage

GRID = Grid((0.0, 0.0, 0.0), (2.5, 2.5, 2.5), (5, 5, 9))


def _case(centre_gy, step_gy, fine=True):
    """SBRT dose linear in x (``step_gy`` per voxel), ``centre_gy`` at x index 4; the esophagus is the single
    whole voxel (2, 2, 4); no prior course (cumulative = SBRT)."""
    x = np.arange(9)
    dose = np.broadcast_to(centre_gy + step_gy * (x - 4.0), GRID.shape_zyx).copy()
    mask = np.zeros(GRID.shape_zyx)
    mask[2, 2, 4] = 1.0
    eso = Structure("Esophagus", "oar", mask, GRID)
    fc = {"esophagus": FineCoverage.on_dose_grid(eso)} if fine else {}
    return PlanCase(GRID, {"esophagus": eso}, DoseCourse(dose, GRID, 2, "SBRT"), (), fc)


def test_voxel_rule_passes_sub_voxel_rule_fails_so_the_constraint_fails():
    # Esophagus cumulative Dmax < 203 Gy3 BED (koide2024), 2 fractions, BED3 = D (1 + D/6):
    #   voxel rule: the voxel's centre dose 31.5 Gy -> 31.5 x 6.25 = 196.875 Gy3 (passes)
    #   sub-voxel rule: a whole voxel spreads over +/- 1/4 |B(x+1) - B(x-1)| of the BED map:
    #   B(33.5) = 33.5 x (1 + 33.5/6) = 220.542, B(29.5) = 29.5 x (1 + 29.5/6) = 174.542,
    #   h = (220.542 - 174.542) / 4 = 11.5 -> Dmax 208.375 Gy3 (fails)
    ev = evaluate_protocol(_case(31.5, 2.0), load_protocol("koide2024"))
    r = {x.constraint_id: x for x in ev.results}["esophagus_cum_dmax"]
    assert r.value == pytest.approx(196.875)
    assert r.value_subvoxel == pytest.approx(208.375, abs=1e-3)
    assert not r.passed and not ev.all_pass
    assert r.margin == pytest.approx(203.0 - 208.375, abs=1e-3)        # the smaller margin
    # without fine coverage (e.g. the optimizer's internal checks) only the voxel rule is read
    r0 = {x.constraint_id: x for x in evaluate_protocol(_case(31.5, 2.0, fine=False),
                                                        load_protocol("koide2024")).results}["esophagus_cum_dmax"]
    assert r0.value_subvoxel is None and r0.passed and r0.margin == pytest.approx(203.0 - 196.875)


def test_both_rules_pass_in_a_flat_dose():
    # uniform 30 Gy: both rules read BED3 30 x 6 = 180 Gy3 (no spread without a gradient)
    ev = evaluate_protocol(_case(30.0, 0.0), load_protocol("koide2024"))
    r = {x.constraint_id: x for x in ev.results}["esophagus_cum_dmax"]
    assert r.value == pytest.approx(180.0) and r.value_subvoxel == pytest.approx(180.0, rel=1e-6) and r.passed


def test_coverage_goals_met_is_its_own_verdict():
    from constraints.evaluation import Evaluation, GoalResult
    met = GoalResult("v", "ptv_eval", "V24Gy", ">=", 90.0, "%", 95.0, True)
    unmet = GoalResult("d", "ptv_eval", "D95%", ">=", 21.6, "Gy", 14.7, False)
    assert Evaluation("p", "1", (), (met, unmet), ()).coverage_goals_met is False
    assert Evaluation("p", "1", (), (met, unmet), ()).all_pass is True       # all_pass keeps its meaning
    assert Evaluation("p", "1", (), (met,), ()).coverage_goals_met is True
    # a goal of an organ the case lacks is not evaluable, hence not met
    ev = evaluate_protocol(_case(10.0, 0.0), load_protocol("koide2024"))
    assert ev.goals and not any(g.met for g in ev.goals) and ev.coverage_goals_met is False
