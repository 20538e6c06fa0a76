"""Every strict ("<") and inclusive ("<=") limit of koide2024, evaluated with the metric
landing exactly on the limit: at the limit a "<" fails and a "<=" passes; one ulp
beyond, both fail; one ulp inside, both pass.

The doses are found by stepping the closed-form dose ``D(X; n)`` one ulp at a time
until the evaluation's own float arithmetic (``prior BED + D (1 + D/(n a/b))``) gives
the limit exactly; each test then checks through :func:`evaluate_protocol` that the
metric equals the limit to the last bit, so the boundary is really exercised.
"""
import numpy as np
import pytest

from constraints import DoseCourse, Grid, Structure, load_protocol
from constraints.evaluation import PlanCase, evaluate_protocol
from constraints.lq import _bed, _dose_from_bed
from constraints.reirradiation_rule import rule_dose_gy

P = load_protocol("koide2024")
G = Grid((0, 0, 0), (10, 10, 10), (1, 3, 4))       # twelve 1 cc voxels: D0.035cc = D1cc = Dmax = hottest voxel


def mask(*cells):
    m = np.zeros(G.shape_zyx)
    for iy, ix in cells:
        m[0, iy, ix] = 1.0
    return m


STRUCTURES = {
    "esophagus": Structure("Esophagus", "oar", mask((0, 0), (0, 1), (0, 2), (0, 3)), G),
    "spinal_cord_prv": Structure("SpinalCord_PRV", "oar", mask((1, 0), (1, 1)), G),
    "ptv_eval": Structure("PTVeval", "target", mask((2, 0), (2, 1), (2, 2), (2, 3)), G),
}


def case(esoph_hot=10.0, cord_hot=5.0, ptv_hot=24.0, esoph_prior=None, cord_prior=None, cord_prior_fx=30,
         cord_other=1.0):
    """SBRT (2 fx): esophagus hottest voxel ``esoph_hot`` (others 5 Gy), cord PRV ``cord_hot``
    (other voxel ``cord_other``), PTVeval 24 Gy with one voxel ``ptv_hot``.  Priors: 60 Gy/30 fx in the
    esophagus (``esoph_prior``), ``cord_prior`` Gy / ``cord_prior_fx`` in the cord PRV."""
    sbrt = np.zeros(G.shape_zyx)
    sbrt[0, 0, :] = [esoph_hot, 5.0, 5.0, 5.0]
    sbrt[0, 1, :2] = [cord_hot, cord_other]
    sbrt[0, 2, :] = [ptv_hot, 24.0, 24.0, 24.0]
    priors = []
    if esoph_prior is not None:
        d = np.zeros(G.shape_zyx)
        d[0, 0, :] = esoph_prior
        priors.append(DoseCourse(d, G, 30, "Prior esophagus"))
    if cord_prior is not None:
        d = np.zeros(G.shape_zyx)
        d[0, 1, :2] = cord_prior
        priors.append(DoseCourse(d, G, cord_prior_fx, "Prior cord"))
    return PlanCase(G, STRUCTURES, DoseCourse(sbrt, G, 2, "SBRT"), tuple(priors))


def result(c, cid):
    return {r.constraint_id: r for r in evaluate_protocol(c, P).results}[cid]


def dose_landing_on(limit_bed, prior_bed, n=2, ab=3.0, span=2000):
    """A float dose D with fl(prior_bed + fl(D (1 + D/(n ab)))) == limit_bed exactly."""
    d0 = float(_dose_from_bed(limit_bed - prior_bed, n, ab))
    up = dn = d0
    for _ in range(span):
        for d in (up, dn):
            if prior_bed + float(_bed(np.float64(d), n, ab)) == limit_bed:
                return d
        up, dn = np.nextafter(up, np.inf), np.nextafter(dn, 0.0)
    raise AssertionError(f"no float dose lands on {limit_bed}")


# 60 Gy/30 fx at a/b 3: BED3 = 60 (1 + 60/90) = 100 (99.99999999999999 in float)
PRIOR_60_30 = float(_bed(np.float64(60.0), 30, 3.0))


@pytest.mark.parametrize("cid, limit", [("esophagus_cum_dmax", 203.0), ("esophagus_cum_d0035cc", 187.0),
                                        ("esophagus_cum_d1cc", 167.0)])
def test_strict_esophageal_cumulative_limits(cid, limit):
    d = dose_landing_on(limit, PRIOR_60_30)          # e.g. 203: D ~ 22.04 Gy in 2 fx on top of 60/30
    at = result(case(esoph_hot=d, esoph_prior=60.0), cid)
    assert at.comparison == "<" and at.limit == limit
    assert at.value == limit and not at.passed       # exactly at a strict limit: FAIL
    # the nearest doses whose cumulative BED leaves the limit (a few ulps of D can share one BED)
    lo = d
    while PRIOR_60_30 + float(_bed(np.float64(lo), 2, 3.0)) >= limit:
        lo = float(np.nextafter(lo, 0.0))
    hi = d
    while PRIOR_60_30 + float(_bed(np.float64(hi), 2, 3.0)) <= limit:
        hi = float(np.nextafter(hi, np.inf))
    below = result(case(esoph_hot=lo, esoph_prior=60.0), cid)
    assert below.value < limit and below.passed
    above = result(case(esoph_hot=hi, esoph_prior=60.0), cid)
    assert above.value > limit and not above.passed


def test_inclusive_cord_table_limit_without_prior():
    # no prior: table 12.2 Gy binds (Sahgal SBRT alone 12.28 Gy; ratio not applicable)
    at = result(case(cord_hot=12.2), "cord_prv_sbrt_d0035cc")
    assert at.comparison == "<=" and at.limit == 12.2 and at.value == 12.2 and at.passed and at.limit_rule == "table"
    above = result(case(cord_hot=float(np.nextafter(12.2, np.inf))), "cord_prv_sbrt_d0035cc")
    assert not above.passed


def test_inclusive_cord_limit_where_sahgal_binds():
    # prior 57 Gy/30 fx at a/b 2: BED2 = 57 (1 + 57/60) = 111.15 -> Sahgal-cumulative D(28.85) = 8.927 Gy
    limit = rule_dose_gy(140.0 - float(_bed(np.float64(57.0), 30, 2.0)), 2, 2.0)
    assert limit == pytest.approx(8.92703, abs=1e-5)
    at = result(case(cord_hot=limit, cord_prior=57.0), "cord_prv_sbrt_d0035cc")
    assert at.limit == limit and at.value == limit and at.passed and at.limit_rule == "Sahgal-cumulative"
    above = result(case(cord_hot=float(np.nextafter(limit, np.inf)), cord_prior=57.0), "cord_prv_sbrt_d0035cc")
    assert not above.passed


def test_inclusive_20gy_caps():
    at = result(case(esoph_hot=20.0), "other_oars_sbrt_d0035cc:esophagus")
    assert at.comparison == "<=" and at.value == 20.0 and at.limit == 20.0 and at.passed
    assert not result(case(esoph_hot=float(np.nextafter(20.0, np.inf))), "other_oars_sbrt_d0035cc:esophagus").passed


def test_inclusive_cumulative_cord_70gy_eqd2():
    # prior 70 Gy/35 fx at a/b 2: BED2 = 70 (1 + 70/70) = 140 exactly; no SBRT dose on that voxel
    # -> cumulative EQD2 = 140 / 2 = 70 Gy exactly: passes "<= 70"; the table input 140 exhausts the cord
    c = case(cord_hot=0.0, cord_prior=70.0, cord_prior_fx=35, cord_other=0.0)
    at = result(c, "cord_prv_cum_dmax_generalized")
    assert at.comparison == "<=" and at.value == 70.0 and at.passed
    cord = result(c, "cord_prv_sbrt_d0035cc")
    assert cord.limit == 0.0 and "exhausted" in cord.note
    # any SBRT dose on that voxel fails both
    c = case(cord_hot=1e-6, cord_prior=70.0, cord_prior_fx=35, cord_other=0.0)
    assert not result(c, "cord_prv_cum_dmax_generalized").passed and not result(c, "cord_prv_sbrt_d0035cc").passed


def test_inclusive_sbrt_cord_25gy_eqd2_brackets():
    # EQD2 = D (1 + D/4) / 2 in 2 fx: no float D gives exactly 50 Gy2 (checked: the nearest floats
    # straddle it), so this limit is tested by its two neighbours: the largest dose under and the
    # smallest over 25 Gy EQD2
    d = float(_dose_from_bed(50.0, 2, 2.0))
    while float(_bed(np.float64(d), 2, 2.0)) > 50.0:
        d = float(np.nextafter(d, 0.0))
    while float(_bed(np.float64(np.nextafter(d, np.inf)), 2, 2.0)) <= 50.0:
        d = float(np.nextafter(d, np.inf))
    under = result(case(cord_hot=d), "cord_prv_sbrt_dmax_generalized")
    over = result(case(cord_hot=float(np.nextafter(d, np.inf))), "cord_prv_sbrt_dmax_generalized")
    assert under.value <= 25.0 and under.passed and over.value > 25.0 and not over.passed


def test_inclusive_ptv_hotspot_goal():
    goals = {g.goal_id: g for g in evaluate_protocol(case(ptv_hot=31.2), P).goals}
    assert goals["ptv_eval_hotspot"].value == 31.2 and goals["ptv_eval_hotspot"].met
    goals = {g.goal_id: g for g in evaluate_protocol(case(ptv_hot=float(np.nextafter(31.2, np.inf))), P).goals}
    assert not goals["ptv_eval_hotspot"].met


def test_table_and_rule_boundaries():
    c = [c for c in P.constraints if c.limit_table][0]
    t = P.tables[c.limit_table]
    assert t.lookup(90.0) == 12.2 and t.lookup(float(np.nextafter(90.0, np.inf))) == 12.1   # "<= 90 Gy2"
    assert t.lookup(100.0) == 10.8 and t.lookup(float(np.nextafter(100.0, np.inf))) == 10.8
    from constraints.reirradiation_rule import binding_limit
    # cumulative <= 140 Gy2: a prior of exactly 140 leaves 0 (exhausted); one ulp less leaves a little
    assert binding_limit(P, c, 140.0, 2).exhausted and binding_limit(P, c, 140.0, 2).limit_gy == 0.0
    just = binding_limit(P, c, float(np.nextafter(140.0, 0.0)), 2)
    assert not just.exhausted and just.limit_gy > 0.0
