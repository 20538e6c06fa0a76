"""The sub-voxel DVH of ``reirrad dvh`` (constraints.dvh_subvoxel): values by hand, and D_V
against a brute-force inversion of V(D) on random elements."""
import numpy as np
import pytest

from constraints import compute_subvoxel_dvh
from constraints.subvoxel_sampling import DoseField, subvoxel_elements
from constraints.errors import InputError, NotEvaluableError


def test_uniform_spread_by_hand():
    """10 ± 1 Gy over 1 cc and a 5 Gy step of 1 cc: V(D) = 1 + (11 − D)/2 on (9, 11),
    1 on (5, 9], 2 at 5 and below."""
    h = compute_subvoxel_dvh("s", np.array([10.0, 5.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    assert h.total_volume_cc == pytest.approx(2.0)
    assert (h.dmax, h.dmin) == (11.0, 5.0)
    assert h.mean == pytest.approx(7.5)
    assert h.d_cc(0.5) == pytest.approx(10.0)          # half of the spread element
    assert h.d_cc(0.25) == pytest.approx(10.5)
    assert h.d_cc(1.5) == pytest.approx(5.0)           # inside the step
    assert h.d_percent(100) == pytest.approx(5.0)
    assert h.volume_above(9.5) == pytest.approx(0.75)
    with pytest.raises(NotEvaluableError, match="not evaluable"):
        h.d_cc(2.5)
    with pytest.raises(InputError):
        h.d_cc(-1.0)


def test_linear_dose_along_an_axis_is_exact():
    """A whole 2 mm voxel in a 1 Gy/mm gradient along x: its dose is uniform on d ± 1 Gy,
    so the DVH of a 3-voxel row is the straight line of the true dose."""
    dose = np.zeros((3, 3, 5), dtype=np.float32) + (10.0 + 2.0 * np.arange(5))[None, None, :]
    field = DoseField.from_grid(dose, (2.0, 2.0, 2.0))
    cov = np.zeros((1, 1, 3))
    cov[0, 0, :] = 1.0                                 # voxels (1, 1, 1..3), doses 12, 14, 16
    d, hw, w = subvoxel_elements(cov, field, (1, 1, 1), (1, 1, 1))
    h = compute_subvoxel_dvh("row", d, hw, w)
    assert (h.dmin, h.dmax) == pytest.approx((11.0, 17.0))
    for v_frac, expect in ((0.5, 14.0), (0.25, 15.5), (0.95, 11.3)):
        assert h.d_cc(v_frac * h.total_volume_cc) == pytest.approx(expect, abs=1e-4)


@pytest.mark.parametrize("seed", range(20))
def test_d_v_inverts_the_dvh(seed):
    """D_V from the fast inversion equals the bisection of V(D) = V (random elements, steps
    and spreads mixed, lumps of equal doses)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 400))
    d = rng.uniform(0, 30, m)
    if seed % 2:
        d = np.round(d)                                # lumps: many elements at one dose
    hw = np.where(rng.random(m) < 0.3, 0.0, rng.uniform(0, 2, m))
    w = rng.uniform(0.001, 0.05, m)
    h = compute_subvoxel_dvh("r", d, hw, w)
    for v in rng.uniform(0.01, 0.99, 5) * h.total_volume_cc:
        lo, hi = h.dmin, h.dmax
        for _ in range(80):                            # V(D) is non-increasing: largest D with V(D) >= v
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if h.volume_above(mid) >= v else (lo, mid)
        assert h.d_cc(v) == pytest.approx(lo, abs=2e-4 * max(1.0, h.dmax)), v


@pytest.mark.parametrize("factors", [(1, 1, 1), (2, 3, 2), (3, 1, 4)])
def test_coverage_as_bytes_gives_the_elements_of_its_floats(factors):
    """``GetRoiGeometryAsVoxels`` bytes k (coverage k / 255) give the same elements, bit for bit,
    as the float coverage k / 255: whole voxels (all 255), partial ones and empty ones mixed."""
    rng = np.random.default_rng(sum(factors))
    dose = rng.uniform(0.0, 30.0, (7, 8, 9)).astype(np.float32)
    field = DoseField.from_grid(dose, (2.5, 2.0, 3.0))
    fz, fy, fx = factors
    box = (4, 5, 6)
    counts = rng.integers(0, 256, (box[0] * fz, box[1] * fy, box[2] * fx)).astype(np.uint8)
    counts[counts < 60] = 0
    counts[counts > 180] = 255
    counts[:fz, :fy, :] = 255                          # whole voxels along a row
    floats = np.arange(256, dtype=np.float64)[counts] / 255.0
    from_bytes = subvoxel_elements(counts, field, (1, 2, 1), factors)
    from_floats = subvoxel_elements(floats, field, (1, 2, 1), factors)
    for a, b in zip(from_bytes, from_floats):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert from_bytes[0].size > 0


def test_byte_coverage_table_is_the_adapters():
    from constraints.subvoxel_sampling import COVERAGE_OF_BYTE
    from tps_scripts.tps_read import _COVERAGE_OF_BYTE
    assert COVERAGE_OF_BYTE.tobytes() == _COVERAGE_OF_BYTE.tobytes()
    assert COVERAGE_OF_BYTE[255] == 1.0 and COVERAGE_OF_BYTE[254] < 1.0
