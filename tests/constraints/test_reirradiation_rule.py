"""The binding cord limit (table vs Sahgal 2012) and its input from ALL prior courses."""
import numpy as np
import pytest

from constraints import DoseCourse, Grid, InputError, ProtocolError, Structure, load_protocol
from constraints.evaluation import PlanCase, evaluate_protocol, table_limit
from constraints.reirradiation_rule import binding_limit

P = load_protocol("koide2024")
CORD = [c for c in P.constraints if c.limit_table][0]
G = Grid((0, 0, 0), (10, 10, 10), (1, 2, 2))       # four 1 cc voxels


def two_course_case(sbrt_cord=5.0):
    """Cord PRV = voxels A (0,0) and B (0,1); PTVeval = (1,0), (1,1).

    Course 1, 10 fx: A 30 Gy, B 25 Gy.   Course 2, 5 fx: A 10 Gy, B 20 Gy.
    BED2 (a/b 2, D (1 + D/(2n))):
      A: 30 (1 + 30/20) = 75    + 10 (1 + 10/10) = 20  ->  95
      B: 25 (1 + 25/20) = 56.25 + 20 (1 + 20/10) = 60  -> 116.25   <- the voxel-wise maximum
    First course only: 75 (table 12.2 Gy); sum of each course's maximum: 135 (wrong, too high).
    """
    c1 = np.zeros(G.shape_zyx)
    c2 = np.zeros(G.shape_zyx)
    c1[0, 0, :] = [30.0, 25.0]
    c2[0, 0, :] = [10.0, 20.0]
    sbrt = np.zeros(G.shape_zyx)
    sbrt[0, 0, :] = sbrt_cord
    sbrt[0, 1, :] = 24.0
    cord = np.zeros(G.shape_zyx)
    cord[0, 0, :] = 1.0
    ptv = np.zeros(G.shape_zyx)
    ptv[0, 1, :] = 1.0
    structures = {"spinal_cord_prv": Structure("Cord_PRV", "oar", cord, G),
                  "ptv_eval": Structure("PTVeval", "target", ptv, G)}
    priors = (DoseCourse(c1, G, 10, "Prior 30Gy/10fx"), DoseCourse(c2, G, 5, "Prior 20Gy/5fx"))
    return PlanCase(G, structures, DoseCourse(sbrt, G, 2, "SBRT"), priors)


def test_cord_table_input_sums_all_prior_courses_voxel_by_voxel():
    b, note = table_limit(two_course_case(), P, CORD)
    assert b.prior_bed_gy == pytest.approx(116.25)
    assert "116.2 Gy2 BED (2 prior course(s))" in note
    # 140 - 116.25 = 23.75 Gy2 left: D = 2 (sqrt(1 + 23.75) - 1) = 2 (4.97494 - 1) = 7.9499 Gy (table: 10.8)
    assert b.limit_gy == pytest.approx(7.94987, abs=1e-5) and b.rule == "Sahgal-cumulative"
    r = {x.constraint_id: x for x in evaluate_protocol(two_course_case(sbrt_cord=7.9), P).results}
    assert r["cord_prv_sbrt_d0035cc"].passed and r["cord_prv_sbrt_d0035cc"].limit == pytest.approx(7.94987, abs=1e-5)
    # 8.5 Gy passes the table and a first-course-only input (12.2 Gy) but not the true limit
    r = {x.constraint_id: x for x in evaluate_protocol(two_course_case(sbrt_cord=8.5), P).results}
    assert not r["cord_prv_sbrt_d0035cc"].passed


@pytest.mark.parametrize("prior_bed, limit, rule, exhausted", [
    (0.0, 12.2, "table", False),
    (90.0, 12.2, "table", False),            # Sahgal cumulative D(50) = SBRT alone D(50) = 12.283 Gy
    (95.5, 11.4, "table", False),            # Sahgal D(44.5) = 11.49 Gy
    (100.0, 10.8, "table", False),           # Sahgal D(40) = 2 (sqrt(41) - 1) = 10.806 Gy
    (120.0, 7.16515, "Sahgal-cumulative", False),   # D(20) = 2 (sqrt(21) - 1)
    (140.0, 0.0, "Sahgal-cumulative", True),
    (152.2, 0.0, "Sahgal-cumulative", True),
])
def test_binding_limit_hand_values(prior_bed, limit, rule, exhausted):
    b = binding_limit(P, CORD, prior_bed, 2, has_prior=prior_bed > 0)
    assert b.limit_gy == pytest.approx(limit, abs=1e-5) and b.rule == rule and b.exhausted == exhausted
    assert b.candidates["table"] == P.tables["cord_prv_d0035cc"].lookup(prior_bed)


def test_ratio_binds_for_a_small_prior():
    # prior 20 Gy2 BED (10 Gy EQD2): SBRT EQD2 <= prior EQD2 -> SBRT BED <= 20 -> D(20) = 7.165 Gy
    b = binding_limit(P, CORD, 20.0, 2)
    assert b.rule == "Sahgal-ratio" and b.limit_gy == pytest.approx(7.16515, abs=1e-5)
    # no prior course: the ratio does not apply
    assert binding_limit(P, CORD, 0.0, 2, has_prior=False).candidates["Sahgal-ratio"] is None


def test_interval_condition():
    assert binding_limit(P, CORD, 100.0, 2, interval_months=4.99).conditions_failed == ("interval",)
    assert binding_limit(P, CORD, 100.0, 2, interval_months=5.0).conditions_failed == ()
    assert binding_limit(P, CORD, 100.0, 2).conditions["interval"].startswith("unknown")


def test_limit_at_the_rule_never_exceeds_it():
    # the dose returned reaches at most the remaining BED in float arithmetic
    from constraints.lq import _bed
    for b in np.linspace(90.0, 139.99, 97):
        lim = binding_limit(P, CORD, float(b), 2).candidates["Sahgal-cumulative"]
        assert b + float(_bed(np.float64(lim), 2, 2.0)) <= 140.0


def test_bad_input():
    with pytest.raises(InputError, match="input must be a finite number >= 0"):
        binding_limit(P, CORD, float("nan"), 2)
    with pytest.raises(InputError, match="fractions must be an integer >= 1"):
        binding_limit(P, CORD, 100.0, 0)


@pytest.mark.parametrize("edit, match", [
    (('applies_to = "cord_prv_sbrt_d0035cc"', 'applies_to = "esophagus_cum_dmax"'), "table-based sbrt_physical"),
    (("max_sbrt_to_cumulative_ratio = 0.5", "max_sbrt_to_cumulative_ratio = 1.5"), "must be < 1"),
    (("label = \"Sahgal\"\n", "label = \"Sahgal\"\nfoo = 1\n"), r"unknown field\(s\) \['foo'\]"),
    (("allowed_fractions = [2]", "allowed_fractions = [1]"), "must include 'fractions'"),
    (("limit = 203.0\nunit = \"Gy BED\"\npriority = 2\nrecovery_allowed = false",
      "limit = 203.0\nunit = \"Gy BED\"\npriority = 2\nrecovery_allowed = 1"), "must be true or false"),
])
def test_protocol_format_is_validated(tmp_path, edit, match):
    text = open(P.path, encoding="utf-8").read()
    assert edit[0] in text
    f = tmp_path / "p.toml"
    f.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ProtocolError, match=match):
        load_protocol(str(f))
