"""LQ biology against numbers recomputable by hand and the seed's Table 3."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from constraints import InputError
from constraints.lq import bed, bed_from_eqd2, dose_from_bed, dose_from_eqd2, eqd2, eqd2_from_bed


def test_nieder_50gy_in_25_fractions():
    # 50 Gy/25 fx: BED2 = 50 (1 + 2/2) = 100 Gy2; BED4 = 50 (1 + 2/4) = 75 Gy4 (Nieder 2006)
    assert bed(50.0, 25, 2.0) == pytest.approx(100.0)
    assert bed(50.0, 25, 4.0) == pytest.approx(75.0)


def test_60gy_in_30_fractions_is_bed3_100():
    # 60 (1 + 2/3) = 100 Gy3
    assert bed(60.0, 30, 3.0) == pytest.approx(100.0)


class TestSeedTable3:
    """Koide 2024 Table 3, SBRT row of the fatal case: Dmax BED3 127 Gy3 in 2 fx."""

    def test_bed3_127_is_24_77_gy(self):
        # D = 3 (sqrt(1 + 4*127/6) - 1) = 24.767
        assert dose_from_bed(127.0, 2, 3.0) == pytest.approx(24.767, abs=1e-3)

    @pytest.mark.parametrize("ab, bed_table, eqd2_table", [(2.0, 178, 89), (3.0, 127, 76), (10.0, 55, 46)])
    def test_dmax_row(self, ab, bed_table, eqd2_table):
        d = float(dose_from_bed(127.0, 2, 3.0))
        assert round(float(bed(d, 2, ab))) == bed_table
        assert round(float(eqd2(d, 2, ab))) == eqd2_table

    # Every SBRT cell of Table 3 (TRD patient and the maxima of the others) follows from one
    # physical dose in 2 fx: rounding BED and EQD2 at a/b 2, 3, 10 gives the printed integers.
    @pytest.mark.parametrize("dose_gy, beds, eqd2s", [
        (24.77, (178, 127, 55), (89, 76, 46)),   # TRD Dmax
        (23.34, (160, 114, 51), (80, 68, 42)),   # TRD D0.035cc
        (19.47, (114, 83, 38), (57, 50, 32)),    # TRD D1cc
        (23.68, (164, 117, 52), (82, 70, 43)),   # others Dmax
        (22.43, (148, 106, 48), (74, 64, 40)),   # others D0.035cc
        (19.42, (114, 82, 38), (57, 49, 32)),    # others D1cc
    ])
    def test_every_sbrt_cell(self, dose_gy, beds, eqd2s):
        for ab, b, e in zip((2.0, 3.0, 10.0), beds, eqd2s):
            assert round(float(bed(dose_gy, 2, ab))) == b
            assert round(float(eqd2(dose_gy, 2, ab))) == e


def test_remaining_tolerance_of_60_in_30_voxel():
    # BED3 100 already; Dmax < 203 Gy3 leaves 103 Gy3 -> 3 (sqrt(1 + 4*103/6) - 1) = 22.04 Gy in 2 fx
    assert dose_from_bed(203.0 - 100.0, 2, 3.0) == pytest.approx(22.04, abs=5e-3)


def test_eqd2_bed_conversions():
    assert bed_from_eqd2(70.0, 2.0) == pytest.approx(140.0)       # 70 (1 + 2/2)
    assert eqd2_from_bed(100.0, 3.0) == pytest.approx(60.0)       # 100 / (1 + 2/3)
    assert dose_from_eqd2(25.0, 2, 2.0) == pytest.approx(12.2829, abs=1e-4)  # Sahgal nBED 25 Gy2/2 -> 12.28 Gy


def test_eqd2_of_2gy_fractions_is_physical_dose():
    assert eqd2(60.0, 30, 3.0) == pytest.approx(60.0)


def test_vectorized_shape_preserved():
    d = np.array([[0.0, 10.0], [20.0, 30.0]])
    out = bed(d, 5, 3.0)
    assert out.shape == (2, 2)
    assert out[1, 0] == pytest.approx(20 * (1 + 4 / 3))


def test_zero_dose_zero_bed_and_inverse():
    assert bed(0.0, 1, 2.0) == 0.0
    assert dose_from_bed(0.0, 1, 2.0) == 0.0


@given(d=st.floats(0, 200), n=st.integers(1, 40), ab=st.floats(0.5, 20))
def test_inverse_round_trip(d, n, ab):
    assert float(dose_from_bed(bed(d, n, ab), n, ab)) == pytest.approx(d, rel=1e-9, abs=1e-9)


@given(d1=st.floats(0, 100), d2=st.floats(0, 100), n=st.integers(1, 40), ab=st.floats(0.5, 20))
def test_bed_monotone(d1, d2, n, ab):
    lo, hi = sorted((d1, d2))
    assert bed(lo, n, ab) <= bed(hi, n, ab)


@pytest.mark.parametrize("call, match", [
    (lambda: bed(-1.0, 2, 3.0), "dose_gy must be >= 0"),
    (lambda: bed(float("nan"), 2, 3.0), "dose_gy contains 1 non-finite"),
    (lambda: bed(np.array([1.0, np.inf]), 2, 3.0), "dose_gy contains 1 non-finite"),
    (lambda: bed(10.0, 0, 3.0), "fractions must be an integer >= 1, got 0"),
    (lambda: bed(10.0, 2.5, 3.0), "fractions must be an integer >= 1, got 2.5"),
    (lambda: bed(10.0, True, 3.0), "fractions must be an integer"),
    (lambda: bed(10.0, 2, 0.0), "alpha_beta_gy must be a finite number > 0"),
    (lambda: bed(10.0, 2, -3.0), "alpha_beta_gy must be a finite number > 0"),
    (lambda: eqd2(10.0, 2, float("inf")), "alpha_beta_gy must be a finite number > 0"),
    (lambda: dose_from_bed(-5.0, 2, 3.0), "bed_gy must be >= 0"),
    (lambda: dose_from_bed("x", 2, 3.0), "bed_gy must be numeric"),
    (lambda: eqd2_from_bed(10.0, 0), "alpha_beta_gy"),
    (lambda: bed_from_eqd2(-1.0, 2.0), "eqd2_gy must be >= 0"),
    (lambda: dose_from_eqd2(10.0, -1, 2.0), "fractions must be an integer >= 1"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_input_error_is_value_error():
    with pytest.raises(ValueError):
        bed(-1.0, 1, 2.0)


def test_integral_float_fractions_accepted():
    assert bed(10.0, 2.0, 2.0) == bed(10.0, 2, 2.0)
    assert math.isclose(bed(10.0, np.int64(2), 2.0), 35.0)


def test_unchecked_formulas_match_the_checked_ones():
    """The public unchecked forms (for callers that validated once): 50 Gy / 25 fx at α/β 2 is
    50 · (1 + 2/2) = 100 Gy₂ (Nieder 2006), and back; arrays broadcast."""
    import numpy as np

    from constraints.lq import bed_unchecked, dose_from_bed_unchecked

    assert float(bed_unchecked(50.0, 25, 2.0)) == pytest.approx(100.0)
    assert float(dose_from_bed_unchecked(100.0, 25, 2.0)) == pytest.approx(50.0)
    d = np.array([0.0, 12.0, 24.0])
    np.testing.assert_allclose(bed_unchecked(d, 2, 3.0), bed(d, 2, 3.0))
    np.testing.assert_allclose(dose_from_bed_unchecked(bed(d, 2, 3.0), 2, 3.0), d)
