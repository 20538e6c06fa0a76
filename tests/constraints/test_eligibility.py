"""The seed's Fig. 1 algorithm."""
import pytest

from constraints import CaseFacts, InputError, assess_eligibility, load_protocol

P = load_protocol("koide2024")


@pytest.mark.parametrize("facts, eligible, recommendation", [
    (CaseFacts(60, 7.8, 6, "1b", 5), True, "SBRT alone"),                     # the seed's TRD patient
    (CaseFacts(45, 12, 6, "0", 3), False, "not eligible"),                    # prior < 50 Gy2
    (CaseFacts(60, 5.9, 6, "0", 3), False, "not eligible"),                   # interval < 6 months
    (CaseFacts(60, 12, 2, "0", 3), False, "not eligible"),                    # survival < 3 months
    (CaseFacts(50, 6, 3, "0", 8), True, "SBRT alone"),                        # thresholds are inclusive
    (CaseFacts(60, 12, 6, "1c", 5), True, "decompression/separation then SBRT"),
    (CaseFacts(60, 12, 6, "1a", 9), True, "stabilization then SBRT"),
    (CaseFacts(60, 12, 6, "3", 13), True, "decompression/separation and stabilization then SBRT"),
    (CaseFacts(60, 12, 6, "2", 5, surgery_possible=False), True, "SBRT alone (surgery indicated but not possible)"),
])
def test_algorithm(facts, eligible, recommendation):
    r = assess_eligibility(facts, P)
    assert (r.eligible, r.recommendation) == (eligible, recommendation)
    assert r.reasons


def test_not_possible_surgery_is_flagged():
    r = assess_eligibility(CaseFacts(60, 12, 6, "2", 5, surgery_possible=False), P)
    assert "early local failure" in r.warnings[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(prior_eqd2_gy=-1), "prior_eqd2_gy must be a finite number >= 0"),
    (dict(interval_months=float("nan")), "interval_months must be a finite number"),
    (dict(bilsky_grade="4"), "bilsky_grade must be one of"),
    (dict(sins=19), "sins must be an integer 0-18"),
    (dict(surgery_possible="yes"), "surgery_possible must be true or false"),
])
def test_bad_facts(kwargs, match):
    args = dict(prior_eqd2_gy=60, interval_months=12, expected_survival_months=6, bilsky_grade="0", sins=3)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        CaseFacts(**args)
