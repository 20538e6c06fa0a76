"""Protocol evaluation on hand-built cases whose numbers follow from the LQ model."""
import numpy as np
import pytest

from constraints import DoseCourse, Grid, GridMismatchError, InputError, Structure, load_protocol
from constraints.evaluation import PlanCase, dose_table, evaluate_protocol

P = load_protocol("koide2024")
G = Grid((0, 0, 0), (10, 10, 10), (1, 3, 4))       # twelve 1 cc voxels


def mask(*cells):
    m = np.zeros(G.shape_zyx)
    for iy, ix in cells:
        m[0, iy, ix] = 1.0
    return m


def build(sbrt_esoph=24.77, prior_esoph=60.0, cord_prior=45.0, cord_sbrt=10.0, with_prior=True):
    sbrt = np.zeros(G.shape_zyx)
    prior = np.zeros(G.shape_zyx)
    sbrt[0, 0, :] = [sbrt_esoph, 18.0, 15.0, 10.0]        # esophagus row: 4 voxels
    prior[0, 0, :] = [prior_esoph, 60.0, 60.0, 60.0]
    sbrt[0, 1, :2] = cord_sbrt                             # cord PRV: 2 voxels
    prior[0, 1, :2] = cord_prior
    sbrt[0, 2, :] = 24.0                                   # PTVeval: 4 voxels
    structures = {
        "esophagus": Structure("Esophagus", "oar", mask((0, 0), (0, 1), (0, 2), (0, 3)), G),
        "spinal_cord_prv": Structure("SpinalCord_PRV", "oar", mask((1, 0), (1, 1)), G),
        "ptv_eval": Structure("PTVeval", "target", mask((2, 0), (2, 1), (2, 2), (2, 3)), G),
    }
    priors = (DoseCourse(prior, G, 30, "Prior 60Gy/30fx"),) if with_prior else ()
    return PlanCase(G, structures, DoseCourse(sbrt, G, 2, "SBRT"), priors)


def results(ev):
    return {r.constraint_id: r for r in ev.results}


def test_seed_fatal_case_fails_cumulative_dmax_while_sbrt_only_passes_except_20gy():
    # esophagus hottest voxel: 60 Gy/30 fx (BED3 100) + 24.77 Gy/2 fx (BED3 127) = 227 Gy3, as the seed's TRD patient
    ev = evaluate_protocol(build(), P)
    r = results(ev)
    dmax = r["esophagus_cum_dmax"]
    assert dmax.value == pytest.approx(227.0, abs=0.1) and not dmax.passed
    assert dmax.margin == pytest.approx(203 - 227.0, abs=0.1)
    # D1cc = the hottest 1 cc voxel (1 cc voxels) -> also 227 > 167
    assert not r["esophagus_cum_d1cc"].passed
    assert not ev.all_pass
    assert ev.sorted_failures_first()[0].passed is False


def test_cumulative_pass_when_sbrt_respects_the_voxel_limit():
    # 22.04 Gy is the limit for a 60/30 voxel under 203 Gy3; D0.035cc<187 and D1cc<167 need less:
    # D1cc: 167 - 100 = 67 -> 3(sqrt(1+4*67/6)-1) = 17.27 Gy. Put 17 Gy in the hottest voxel.
    case = build(sbrt_esoph=17.0)
    case.sbrt.dose_gy  # read-only
    sb = case.sbrt.dose_gy.copy()
    sb[0, 0, 1:] = [16.0, 15.0, 10.0]
    case = PlanCase(G, case.structures, DoseCourse(sb, G, 2, "SBRT"), case.priors)
    r = results(evaluate_protocol(case, P))
    assert r["esophagus_cum_dmax"].passed and r["esophagus_cum_d1cc"].passed
    assert r["esophagus_cum_d1cc"].value == pytest.approx(100 + 17 * (1 + 17 / 6))


def test_cord_table_uses_prior_cord_bed():
    # cord prior 45 Gy/30 fx: BED2 = 45 (1 + 1.5/2) = 78.75 <= 90 -> 12.2 Gy; SBRT 10 Gy passes (margin 2.2)
    r = results(evaluate_protocol(build(), P))["cord_prv_sbrt_d0035cc"]
    assert r.limit == 12.2 and r.value == 10.0 and r.passed and r.margin == pytest.approx(2.2)
    assert "78.8 Gy2 BED" in r.note
    assert r.limit_rule == "table"
    # prior 57 Gy/30: BED2 = 57 (1 + 1.9/2) = 111.15 > 100 -> table 10.8 Gy, but Sahgal's cumulative
    # 140 Gy2 leaves 28.85 Gy2: D = 2 (sqrt(1 + 28.85) - 1) = 8.927 Gy binds; 8.95 Gy fails
    r = results(evaluate_protocol(build(cord_prior=57.0, cord_sbrt=8.95), P))["cord_prv_sbrt_d0035cc"]
    assert r.limit == pytest.approx(8.92703, abs=1e-5) and not r.passed
    assert r.limit_rule == "Sahgal-cumulative" and "binding rule: Sahgal-cumulative" in r.note
    r = results(evaluate_protocol(build(cord_prior=57.0, cord_sbrt=8.9), P))["cord_prv_sbrt_d0035cc"]
    assert r.passed


def test_sbrt_only_20gy_and_advisory_cord_rules():
    r = results(evaluate_protocol(build(), P))
    assert not r["other_oars_sbrt_d0035cc:esophagus"].passed          # 24.77 > 20
    adv = r["cord_prv_sbrt_dmax_generalized"]
    assert adv.advisory and adv.value == pytest.approx(10 * (1 + 5 / 2) / 2)   # EQD2 of 10 Gy/2fx at a/b 2 = 17.5


def test_absent_organs_not_applicable_and_goals():
    ev = evaluate_protocol(build(), P)
    assert "other_oars_sbrt_d0035cc:aorta" in ev.not_applicable
    goals = {g.goal_id: g for g in ev.goals}
    assert goals["ptv_eval_v24"].value == pytest.approx(100.0) and goals["ptv_eval_v24"].met


def test_unknown_prior_in_organ_is_a_failure_not_a_pass():
    case = build()
    prior = case.priors[0].dose_gy.copy()
    prior[0, 0, 3] = np.nan
    case = PlanCase(G, case.structures, case.sbrt, (DoseCourse(prior, G, 30, "Prior"),))
    r = results(evaluate_protocol(case, P))["esophagus_cum_dmax"]
    assert not r.passed and r.value is None and "unknown (NaN)" in r.note


def test_without_prior_cumulative_equals_sbrt():
    r = results(evaluate_protocol(build(with_prior=False), P))
    assert r["esophagus_cum_dmax"].value == pytest.approx(127.0, abs=0.1)
    assert r["cord_prv_sbrt_d0035cc"].limit == 12.2


def test_dose_table_layout_reproduces_table3_cells():
    t = dose_table(build(with_prior=False), build().structures["esophagus"])
    assert round(t["sbrt"]["bed"]["2"]["Dmax"]) == 178 and round(t["sbrt"]["eqd2"]["10"]["Dmax"]) == 46
    assert t["sbrt"]["physical"]["-"]["Dmax"] == 24.77
    t = dose_table(build(), build().structures["esophagus"])
    assert round(t["cumulative"]["bed"]["3"]["Dmax"]) == 227


def test_plan_case_checks_grids():
    other = Grid((0, 0, 0), (10, 10, 10), (1, 3, 5))
    with pytest.raises(GridMismatchError, match="SBRT dose"):
        PlanCase(G, {}, DoseCourse(np.zeros(other.shape_zyx), other, 2, "SBRT"))
    with pytest.raises(InputError, match="unknown"):
        PlanCase(G, {}, DoseCourse(np.full(G.shape_zyx, np.nan), G, 2, "SBRT"))
