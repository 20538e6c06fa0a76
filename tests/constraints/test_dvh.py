"""DVH metrics on hand-built voxel sets (partial voxels weighted exactly)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from constraints import Grid, InputError, NotEvaluableError, Structure, compute_dvh, bed
from constraints.metric import parse_metric


def line(values, weights, spacing_mm=10.0):
    """A 1 x 1 x n grid of 1 cc voxels (10 mm cubes) holding ``values`` with ``weights``."""
    n = len(values)
    g = Grid((0, 0, 0), (spacing_mm,) * 3, (1, 1, n))
    s = Structure("s", "oar", np.array(weights, dtype=float).reshape(1, 1, n), g)
    return compute_dvh(np.array(values, dtype=float).reshape(1, 1, n), s)


class TestByHand:
    # five 1 cc voxels: 50, 40, 30 (half covered), 20, 10 Gy; the last voxel is outside
    h = line([50, 40, 30, 20, 10, 99], [1, 1, 0.5, 1, 1, 0])

    def test_volume_max_min_mean(self):
        assert self.h.total_volume_cc == pytest.approx(4.5)
        assert self.h.dmax == 50 and self.h.dmin == 10           # the 99 Gy voxel has coverage 0
        assert self.h.mean == pytest.approx((50 + 40 + 15 + 20 + 10) / 4.5)

    @pytest.mark.parametrize("v_cc, expected", [
        (0.035, 50), (1.0, 50),          # inside the hottest voxel
        (1.0001, 40), (2.0, 40),         # completes with the 2nd voxel
        (2.3, 30), (2.5, 30),            # the half voxel holds 0.5 cc: cumulative 2.5
        (2.51, 20), (3.5, 20), (4.5, 10),
    ])
    def test_d_cc_rule(self, v_cc, expected):
        assert self.h.d_cc(v_cc) == expected

    def test_d_percent(self):
        # D50% = D(2.25 cc) = 30 Gy; D100% = Dmin
        assert self.h.d_percent(50) == 30
        assert self.h.d_percent(100) == 10

    @pytest.mark.parametrize("dose, cc", [(50, 1.0), (45, 1.0), (40, 2.0), (30, 2.5), (10, 4.5), (0, 4.5), (51, 0.0)])
    def test_v_dose(self, dose, cc):
        assert self.h.v_cc(dose) == pytest.approx(cc)
        assert self.h.v_percent(dose) == pytest.approx(100 * cc / 4.5)

    def test_curve(self):
        assert self.h.curve([0, 30, 35, 60]) == pytest.approx([4.5, 2.5, 2.0, 0.0])

    def test_metrics_dict_flags_not_evaluable(self):
        m = self.h.metrics(d_percent=[95], d_cc=[0.035, 10])
        assert m["d_cc"]["0.035"] == 50 and m["d_cc"]["10"] is None
        assert "only 4.5 cc" in m["not_evaluable"]["d_cc 10"]

    def test_errors(self):
        with pytest.raises(NotEvaluableError, match=r"D5cc of 's' is not evaluable: the structure holds only 4.5 cc"):
            self.h.d_cc(5.0)
        with pytest.raises(InputError, match="volume_cc must be a finite number > 0"):
            self.h.d_cc(0.0)
        with pytest.raises(InputError, match=r"percent must be in \(0, 100\]"):
            self.h.d_percent(120)
        with pytest.raises(InputError, match="dose must be a finite number >= 0"):
            self.h.v_cc(-1)


def test_d0035cc_on_2_5mm_grid_is_third_hottest_voxel():
    # 0.035 cc / 0.015625 cc = 2.24 voxels -> the 3rd hottest full voxel
    g = Grid((0, 0, 0), (2.5, 2.5, 2.5), (1, 1, 10))
    s = Structure("s", "oar", np.ones((1, 1, 10)), g)
    h = compute_dvh(np.arange(10, dtype=float).reshape(1, 1, 10), s)
    assert h.d_cc(0.035) == 7.0 and h.dmax == 9.0


def test_same_functions_on_bed():
    g = Grid((0, 0, 0), (10, 10, 10), (1, 1, 2))
    s = Structure("s", "oar", np.ones((1, 1, 2)), g)
    h = compute_dvh(bed(np.array([[[24.77, 0.0]]]), 2, 3.0), s)
    assert round(h.dmax) == 127


def test_empty_nan_and_shape_errors():
    g = Grid((0, 0, 0), (1, 1, 1), (1, 1, 3))
    empty = Structure("empty", "oar", np.zeros((1, 1, 3)), g)
    with pytest.raises(NotEvaluableError, match="structure 'empty' is empty"):
        compute_dvh(np.zeros((1, 1, 3)), empty)
    full = Structure("cord", "oar", np.ones((1, 1, 3)), g)
    with pytest.raises(NotEvaluableError, match=r"'cord': the dose is unknown \(NaN\) in 1 of its voxels"):
        compute_dvh(np.array([[[1.0, np.nan, 2.0]]]), full)
    with pytest.raises(InputError, match="values must be >= 0"):
        compute_dvh(np.array([[[1.0, -1.0, 2.0]]]), full)
    with pytest.raises(InputError, match="shape"):
        compute_dvh(np.zeros((1, 1, 4)), full)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 60))
def test_matches_brute_force(data, n):
    values = np.array(data.draw(st.lists(st.floats(0, 80), min_size=n, max_size=n)))
    weights = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.0, 1.0]), min_size=n, max_size=n)))
    if weights.sum() == 0:
        weights[0] = 1.0
    h = line(values, weights)
    inside = weights > 0
    assert h.total_volume_cc == pytest.approx(weights.sum())
    assert h.dmax == values[inside].max() and h.dmin == values[inside].min()
    v = data.draw(st.floats(1e-3, float(weights.sum())))
    # brute force: highest voxel value d with V(d) >= v
    cands = sorted(set(values[inside]), reverse=True)
    expected = next(d for d in cands if weights[values >= d].sum() >= v * (1 - 1e-9))
    assert h.d_cc(v) == expected


def test_metric_parsing_and_evaluation():
    h = line([50, 40, 30], [1, 1, 1])
    assert parse_metric("D0.035cc").evaluate(h) == 50
    assert parse_metric("D2cc").evaluate(h) == 40
    assert parse_metric("V35Gy").evaluate(h) == pytest.approx(200 / 3)
    assert parse_metric("V35Gy").evaluate(h, volume_unit="cc") == pytest.approx(2.0)
    assert parse_metric("Dmean").evaluate(h) == pytest.approx(40)
    assert parse_metric("D100%").evaluate(h) == 30
    for bad, match in [("Dfoo", "not a known metric"), ("D0cc", "volume must be > 0"), ("D150%", "percentage"),
                       (3, "must be a string")]:
        with pytest.raises(InputError, match=match):
            parse_metric(bad)
