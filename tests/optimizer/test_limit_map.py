"""Per-voxel SBRT limits: hand numbers, soundness, monotonicity (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from constraints import DoseCourse, Grid, InputError, NotEvaluableError, GridMismatchError
from constraints.accumulate import cumulative_bed
from constraints.lq import bed
from optimizer import limit_from_prior_bed, sbrt_limit_map

G = Grid((0, 0, 0), (2.5, 2.5, 2.5), (1, 1, 4))


def course(values, fx, label="c", recovery=0.0, grid=G):
    return DoseCourse(np.asarray(values, float).reshape(grid.shape_zyx), grid, fx, label, recovery=recovery)


def test_hand_numbers():
    # 60/30 (BED3 100) -> 22.04 Gy; no prior -> D(203) = 3(sqrt(1+4*203/6)-1) = 32.03 Gy;
    # 122/61 (BED3 203.33) -> exhausted; 30/10 -> BED3 60 -> D(143) = 3(sqrt(1+4*143/6)-1)=26.44
    m = sbrt_limit_map([course([60, 0, 122, 30 * 3], 30)], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)
    assert m.limit_gy[0, 0, 0] == pytest.approx(22.04, abs=5e-3)
    assert m.limit_gy[0, 0, 1] == pytest.approx(3 * (np.sqrt(1 + 4 * 203 / 6) - 1))
    assert m.limit_gy[0, 0, 2] == 0 and m.exhausted[0, 0, 2] and m.n_exhausted == 1
    assert m.remaining_bed_gy[0, 0, 0] == pytest.approx(103.0)


def test_cord_generalized_rule_numbers():
    # Research anchors (alpha/beta 2, 2 fx, X = 140 Gy2): prior 30/10 (b = 75) -> 14.25 Gy; 50/25 (b = 100) -> 10.81 Gy
    L, _, _ = limit_from_prior_bed(np.array([75.0, 100.0]), alpha_beta_gy=2, cumulative_limit_bed_gy=140, fractions=2)
    assert L == pytest.approx([14.25, 10.81], abs=5e-3)


def test_two_courses_recovery_and_cap():
    # 60/30 (BED3 100) + 20/5 @ 0.25 (46.67 * 0.75 = 35) -> remaining 68 -> 3(sqrt(1+4*68/6)-1) = 17.42 Gy
    c1 = course([60] * 4, 30, "c1")
    c2 = course([20] * 4, 5, "c2", recovery=0.25)
    m = sbrt_limit_map([c1, c2], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)
    assert m.limit_gy[0, 0, 0] == pytest.approx(17.42, abs=5e-3)
    capped = sbrt_limit_map([c1], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2, cap_gy=20)
    assert capped.limit_gy[0, 0, 0] == 20 and capped.capped.all()


def test_unknown_prior_refused_or_organ_max():
    c = course([60, np.nan, 30, 0], 30)
    with pytest.raises(NotEvaluableError, match=r"unknown \(outside the prior dose grid\) in 1 voxel"):
        sbrt_limit_map([c], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)
    m = sbrt_limit_map([c], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2, unknown_prior="organ_max",
                       mask=np.ones(G.shape_zyx))
    assert m.limit_gy[0, 0, 1] == m.limit_gy[0, 0, 0]         # assumed the organ's 60 Gy, never 0
    # outside the organ an unknown voxel does not matter
    mask = np.array([1, 0, 1, 1.0]).reshape(G.shape_zyx)
    sbrt_limit_map([c], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2, mask=mask)


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha_beta_gy=0), "alpha_beta_gy must be a finite number > 0"),
    (dict(cumulative_limit_bed_gy=-1), "cumulative_limit_bed_gy must be a finite number > 0"),
    (dict(fractions=0), "fractions must be an integer >= 1"),
    (dict(cap_gy=0), "cap_gy must be a finite number > 0"),
    (dict(unknown_prior="zero"), "unknown_prior must be one of"),
])
def test_bad_arguments(kwargs, match):
    args = dict(alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        sbrt_limit_map([course([1] * 4, 1)], **args)


def test_grid_mismatch_and_no_input():
    other = Grid((1, 0, 0), (2.5, 2.5, 2.5), (1, 1, 4))
    with pytest.raises(GridMismatchError):
        sbrt_limit_map([course([1] * 4, 1), course([1] * 4, 1, "d", grid=other)], alpha_beta_gy=3,
                       cumulative_limit_bed_gy=203, fractions=2)
    with pytest.raises(InputError, match="needs prior courses or a mask"):
        sbrt_limit_map([], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)
    with pytest.raises(InputError, match="prior_bed_gy must be >= 0"):
        limit_from_prior_bed(np.array([-1.0]), alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2)


doses = hnp.arrays(np.float64, 16, elements=st.floats(0, 150, allow_subnormal=False))
priors = st.lists(st.tuples(doses, st.integers(1, 40), st.sampled_from([0.0, 0.1, 0.25, 0.5])), min_size=1, max_size=3)
GRID16 = Grid((0, 0, 0), (2, 2, 2), (1, 4, 4))


def make_courses(specs):
    return [DoseCourse(d.reshape(GRID16.shape_zyx), GRID16, fx, f"c{i}", recovery=r) for i, (d, fx, r) in enumerate(specs)]


@settings(max_examples=150, deadline=None)
@given(specs=priors, ab=st.floats(0.5, 15), x=st.floats(1, 400), n=st.integers(1, 8),
       frac=hnp.arrays(np.float64, 16, elements=st.floats(0, 1)), cap=st.one_of(st.none(), st.floats(0.5, 40)))
def test_soundness_any_dose_at_or_below_the_map_keeps_cumulative_within_limit(specs, ab, x, n, frac, cap):
    courses = make_courses(specs)
    m = sbrt_limit_map(courses, alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=n, cap_gy=cap)
    ok = ~m.exhausted
    for new in (m.limit_gy, m.limit_gy * frac.reshape(GRID16.shape_zyx)):
        cum = cumulative_bed(courses, ab) + bed(new, n, ab)
        assert (cum[ok] <= x).all()
    # exhausted voxels are exactly those whose prior alone reaches the limit; they get 0
    assert np.array_equal(m.exhausted, cumulative_bed(courses, ab) >= x)
    assert (m.limit_gy[m.exhausted] == 0).all()
    if cap is not None:
        assert (m.limit_gy <= cap).all()


@settings(max_examples=100, deadline=None)
@given(specs=priors, ab=st.floats(0.5, 15), x=st.floats(1, 400), n=st.integers(1, 8),
       extra=hnp.arrays(np.float64, 16, elements=st.floats(0, 20)), dx=st.floats(0, 50))
def test_monotone_in_prior_dose_and_in_limit(specs, ab, x, n, extra, dx):
    courses = make_courses(specs)
    base = sbrt_limit_map(courses, alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=n)
    more = make_courses([(d + extra, fx, r) for d, fx, r in specs[:1]] + list(specs[1:]))
    hotter = sbrt_limit_map(more, alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=n)
    round_off = 1e-12 * (1.0 + np.abs(base.limit_gy))     # a tiny extra or dx may move the limit by an ulp
    assert (hotter.limit_gy <= base.limit_gy + round_off).all()
    looser = sbrt_limit_map(courses, alpha_beta_gy=ab, cumulative_limit_bed_gy=x + dx, fractions=n)
    assert (looser.limit_gy >= base.limit_gy - round_off).all()


@settings(max_examples=100, deadline=None)
@given(b=st.floats(0, 300), ab=st.floats(0.5, 15), x=st.floats(1, 400), n=st.integers(1, 8))
def test_limit_is_tight(b, ab, x, n):
    # not only sound but tight: the limit uses the remaining BED to within round-off
    L, ex, _ = limit_from_prior_bed(np.array(b), alpha_beta_gy=ab, cumulative_limit_bed_gy=x, fractions=n)
    if not ex:
        assert b + float(bed(L, n, ab)) == pytest.approx(x, rel=1e-9, abs=1e-9)
