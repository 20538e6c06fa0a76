"""The seed's entry criteria and Fig. 1 algorithm: unknown facts stay unknown, the
interval is strict, prior SBRT and an exhausted cord exclude."""
import datetime as dt

import numpy as np
import pytest

from constraints import CaseFacts, DoseCourse, Grid, InputError, Structure, assess_eligibility, load_protocol
from constraints.eligibility import PlanEvidence, PriorCourseEvidence, plan_evidence
from constraints.evaluation import PlanCase

P = load_protocol("koide2024")
#: every gate known and met except those a test changes
KNOWN = dict(chemotherapy=False, active_esophageal_or_mediastinal_tumor=False, esophageal_instrumentation=False,
             prior_sbrt_same_level=False, surgery_possible=True)
G = Grid((0, 0, 0), (10, 10, 10), (1, 2, 2))


def cord_evidence(prior_cord_bed2=80.0, priors=(), interval=None):
    from constraints.reirradiation_rule import binding_limit
    c = [c for c in P.constraints if c.limit_table][0]
    return PlanEvidence(interval, None, tuple(priors), binding_limit(P, c, prior_cord_bed2, 2))


def facts(*args, **kw):
    merged = dict(KNOWN)
    merged.update(kw)
    return CaseFacts(*args, **merged)


@pytest.mark.parametrize("f, eligible, recommendation", [
    (facts(60, 7.8, 6, "1b", 5), True, "SBRT alone"),                       # the seed's TRD patient
    (facts(45, 12, 6, "0", 3), False, "not eligible"),                      # prior < 50 Gy2
    (facts(60, 5.9, 6, "0", 3), False, "not eligible"),                     # interval < 6 months
    (facts(60, 6, 6, "0", 3), False, "not eligible"),                       # "more than 6 months": 6 fails
    (facts(60, 6.01, 6, "0", 3), True, "SBRT alone"),
    (facts(60, 12, 2, "0", 3), False, "not eligible"),                      # survival < 3 months
    (facts(50, 12, 3, "0", 8), True, "SBRT alone"),                         # 50 Gy2 and 3 months inclusive
    (facts(60, 12, 6, "1c", 5), True, "decompression/separation then SBRT"),
    (facts(60, 12, 6, "1a", 9), True, "stabilization then SBRT"),
    (facts(60, 12, 6, "3", 13), True, "decompression/separation and stabilization then SBRT"),
    (facts(60, 12, 6, "2", 5, surgery_possible=False), True, "SBRT alone (surgery indicated but not possible)"),
])
def test_algorithm(f, eligible, recommendation):
    r = assess_eligibility(f, P, cord_evidence())
    assert (r.eligible, r.recommendation) == (eligible, recommendation)
    assert r.status == ("eligible" if eligible else "not eligible")
    assert r.reasons


def test_not_possible_surgery_is_flagged():
    r = assess_eligibility(facts(60, 12, 6, "2", 5, surgery_possible=False), P, cord_evidence())
    assert "early local failure" in r.warnings[0]


def test_nothing_given_is_unknown_never_assumed():
    r = assess_eligibility(None, P)
    assert r.status == "undetermined" and not r.eligible and r.recommendation == "undetermined"
    for name in ("prior_eqd2_gy", "interval_months", "expected_survival_months", "bilsky_grade", "sins",
                 "chemotherapy", "active_esophageal_or_mediastinal_tumor", "esophageal_instrumentation",
                 "prior_sbrt_same_level", "cord_tolerance"):
        assert name in r.unknown
    # the TRD patient's facts without a plan: the cord check is unknown -> undetermined, route still given
    r = assess_eligibility(facts(60, 7.8, 6, "1b", 5), P)
    assert r.status == "undetermined" and r.route == "SBRT alone" and r.unknown == ("cord_tolerance",)


def test_risk_factors_warn():
    r = assess_eligibility(facts(60, 7.8, 6, "1b", 5, chemotherapy=True, esophageal_instrumentation=True), P,
                           cord_evidence())
    assert r.eligible
    text = " ".join(r.warnings)
    assert "chemotherapy" in text and "instrumentation" in text and "mediastinal" not in text


def test_exhausted_cord_is_not_eligible_with_the_numbers():
    # prior cord PRV 152.2 Gy2 >= 140 Gy2 (70 Gy EQD2): nothing left
    r = assess_eligibility(facts(60, 12, 6, "0", 3), P, cord_evidence(152.2))
    assert r.status == "not eligible" and not r.eligible
    line = [x for x in r.reasons if "cord PRV prior" in x][0]
    assert "152.2 Gy2 BED" in line and "Sahgal-cumulative 0.00 Gy" in line and "not eligible" in line


def test_prior_sbrt_detected_from_dose_per_fraction():
    # 24 Gy in 2 fx at its maximum in the target: 12 Gy/fx >= 5 -> prior SBRT at this level
    hot = PriorCourseEvidence("SBRT 2022 24Gy/2fx", 2, 24.0)
    r = assess_eligibility(CaseFacts(60, 12, 6, "0", 3, surgery_possible=True), P,
                           cord_evidence(priors=[hot]))
    assert r.status == "not eligible" and any("prior SBRT at the current target spine detected" in x
                                              for x in r.reasons)
    # exactly 5.0 Gy/fx (25 Gy/5 fx) is at the threshold (>=): detected; 4.99 is not
    r = assess_eligibility(CaseFacts(60, 12, 6, "0", 3), P, cord_evidence(priors=[PriorCourseEvidence("a", 5, 25.0)]))
    assert r.status == "not eligible"
    r = assess_eligibility(CaseFacts(60, 12, 6, "0", 3), P, cord_evidence(priors=[PriorCourseEvidence("a", 5, 24.95)]))
    assert "prior_sbrt_same_level" in r.unknown and r.status == "undetermined"
    # the user's explicit "no" wins, with a warning
    r = assess_eligibility(facts(60, 12, 6, "0", 3), P, cord_evidence(priors=[hot]))
    assert r.eligible and "looks like SBRT" in r.warnings[0]
    # and an explicit "yes" excludes
    r = assess_eligibility(facts(60, 12, 6, "0", 3, prior_sbrt_same_level=True), P, cord_evidence())
    assert r.status == "not eligible"


def test_interval_from_dates_is_strict_and_the_shorter_wins():
    # 2025-01-01 -> 2025-07-02: 182 days = 182 / 30.4375 = 5.98 months: not more than 6
    prior = np.zeros(G.shape_zyx)
    prior[0, 0, 0] = 50.0
    cord = Structure("Cord_PRV", "oar", np.array([[[0, 0], [1, 0]]], float), G)
    ptv = Structure("PTVeval", "target", np.array([[[1, 0], [0, 0]]], float), G)
    courses = (DoseCourse(prior, G, 25, "Prior 50Gy/25fx", date=dt.date(2025, 1, 1)),)
    case = PlanCase(G, {"spinal_cord_prv": cord, "ptv_eval": ptv},
                    DoseCourse(np.full(G.shape_zyx, 1.0), G, 2, "SBRT", date=dt.date(2025, 7, 2)), courses)
    ev = plan_evidence(case, P)
    assert ev.interval_months == pytest.approx(182 / 30.4375)
    # median prior EQD2 in the target: 50 Gy/25 fx at a/b 2 = 50 Gy EQD2
    assert ev.prior_target_eqd2_gy == pytest.approx(50.0)
    assert ev.priors[0].max_gy_per_fraction == pytest.approx(2.0)
    r = assess_eligibility(facts(None, 12, 6, "0", 3), P, ev)
    assert r.status == "not eligible" and "5.98" in " ".join(r.reasons) and r.warnings
    # without the SBRT date: the interval from dates is unknown, the given 12 months is used
    case2 = PlanCase(G, case.structures, DoseCourse(np.full(G.shape_zyx, 1.0), G, 2, "SBRT"), courses)
    ev2 = plan_evidence(case2, P)
    assert ev2.interval_months is None
    assert assess_eligibility(facts(None, 12, 6, "0", 3), P, ev2).eligible


@pytest.mark.parametrize("kwargs, match", [
    (dict(prior_eqd2_gy=-1), "prior_eqd2_gy must be a finite number >= 0"),
    (dict(interval_months=float("nan")), "interval_months must be a finite number"),
    (dict(bilsky_grade="4"), "bilsky_grade must be one of"),
    (dict(sins=19), "sins must be an integer 0-18"),
    (dict(surgery_possible="yes"), "surgery_possible must be true or false"),
    (dict(chemotherapy=1), "chemotherapy must be true or false"),
])
def test_bad_facts(kwargs, match):
    args = dict(prior_eqd2_gy=60, interval_months=12, expected_survival_months=6, bilsky_grade="0", sins=3)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        CaseFacts(**args)
