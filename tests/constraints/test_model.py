"""Grid, Structure and DoseCourse: geometry numbers and boundary checks."""
import datetime

import numpy as np
import pytest

from constraints import DoseCourse, Grid, GridMismatchError, InputError, Structure
from constraints.accumulate import cumulative_bed, cumulative_eqd2


def grid():
    return Grid((-10.0, -20.0, 5.0), (2.5, 2.0, 3.0), (4, 5, 6))


class TestGrid:
    def test_geometry(self):
        g = grid()
        assert g.voxel_volume_cc == pytest.approx(2.5 * 2.0 * 3.0 / 1000)  # 0.015 cc
        assert g.origin_mm == (-8.75, -19.0, 6.5)
        assert g.n_voxels == 120
        x, y, z = g.axes_mm()
        assert x[-1] == pytest.approx(-8.75 + 5 * 2.5) and y.size == 5 and z.size == 4

    def test_centres_are_zyx_with_xyz_last_axis(self):
        c = grid().centres_mm()
        assert c.shape == (4, 5, 6, 3)
        assert tuple(c[3, 1, 2]) == pytest.approx((-8.75 + 2 * 2.5, -19.0 + 1 * 2.0, 6.5 + 3 * 3.0))

    def test_from_first_centre(self):
        g = Grid.from_first_centre((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (1, 1, 1))
        assert g.corner_mm == (-1.0, -1.0, -1.0)

    def test_same_and_mismatch_message(self):
        a, b = grid(), Grid((-10.0, -20.0, 5.0), (2.5, 2.0, 3.0), (4, 5, 7))
        assert a.same_as(grid()) and not a.same_as(b)
        with pytest.raises(GridMismatchError, match=r"prior dose is on a different grid.*shape \(4, 5, 7\)"):
            a.require_same(b, "prior dose")

    @pytest.mark.parametrize("args, match", [
        (((0, 0), (1, 1, 1), (1, 1, 1)), "corner_mm must have 3 entries"),
        (((0, 0, 0), (1, 0, 1), (1, 1, 1)), "spacing_xyz_mm must be finite and > 0"),
        (((0, 0, 0), (1, 1, 1), (1, 0, 1)), r"shape_zyx \(nz, ny, nx\) must be >= 1"),
        (((0, 0, 0), (1, 1, 1), (1, 1.5, 1)), "shape_zyx must hold 3 integers"),
        (((0, float("nan"), 0), (1, 1, 1), (1, 1, 1)), "corner_mm must be finite"),
        ((None, (1, 1, 1), (1, 1, 1)), "corner_mm must be a sequence of 3 numbers"),
    ])
    def test_bad_grid(self, args, match):
        with pytest.raises(InputError, match=match):
            Grid(*args)


class TestStructure:
    def test_volume_weights_partial_voxels(self):
        g = grid()
        m = np.zeros(g.shape_zyx)
        m[0, 0, 0] = 1.0
        m[0, 0, 1] = 0.5
        s = Structure("cord", "oar", m, g)
        assert s.volume_cc == pytest.approx(1.5 * 0.015)
        assert not s.is_empty

    def test_mask_is_frozen_copy(self):
        g = grid()
        m = np.zeros(g.shape_zyx)
        s = Structure("x", "oar", m, g)
        m[0, 0, 0] = 1
        assert s.mask[0, 0, 0] == 0
        with pytest.raises(ValueError):
            s.mask[0, 0, 0] = 1

    @pytest.mark.parametrize("kwargs, match", [
        (dict(name=""), "name must be a non-empty string"),
        (dict(kind="organ"), "kind must be one of"),
        (dict(mask=np.full((4, 5, 6), 1.5)), r"mask values must be fractions in \[0, 1\]"),
        (dict(mask=np.zeros((4, 5, 5))), r"mask has shape \(4, 5, 5\)"),
        (dict(mask=np.full((4, 5, 6), np.nan)), "non-finite"),
        (dict(grid="g"), "grid must be a constraints.Grid"),
    ])
    def test_bad_structure(self, kwargs, match):
        args = dict(name="s", kind="oar", mask=np.zeros((4, 5, 6)), grid=grid())
        args.update(kwargs)
        with pytest.raises(InputError, match=match):
            Structure(**args)


class TestDoseCourse:
    def test_valid_with_nan_unknown(self):
        d = np.full(grid().shape_zyx, 2.0)
        d[0, 0, 0] = np.nan
        c = DoseCourse(d, grid(), 30, "Prior EBRT", datetime.date(2025, 3, 1), 0.25)
        assert c.has_unknown and c.fractions == 30 and c.recovery == 0.25

    @pytest.mark.parametrize("kwargs, match", [
        (dict(dose_gy=-np.ones((4, 5, 6))), "dose_gy must be >= 0"),
        (dict(dose_gy=np.full((4, 5, 6), np.inf)), "infinite"),
        (dict(dose_gy=np.ones((4, 5, 5))), "dose_gy has shape"),
        (dict(fractions=0), "fractions must be an integer >= 1"),
        (dict(recovery=1.0), r"recovery must be in \[0, 1\)"),
        (dict(recovery=-0.1), r"recovery must be in \[0, 1\)"),
        (dict(label=""), "label must be a non-empty string"),
        (dict(date="2025-01-01"), "date must be a datetime.date"),
    ])
    def test_bad_course(self, kwargs, match):
        args = dict(dose_gy=np.ones((4, 5, 6)), grid=grid(), fractions=2, label="c")
        args.update(kwargs)
        with pytest.raises(InputError, match=match):
            DoseCourse(**args)


class TestAccumulate:
    def test_two_courses_with_recovery(self):
        g = grid()
        c1 = DoseCourse(np.full(g.shape_zyx, 60.0), g, 30, "c1")                  # BED3 100
        c2 = DoseCourse(np.full(g.shape_zyx, 20.0), g, 5, "c2", recovery=0.25)    # BED3 20(1+4/3)=46.67 -> 35
        assert cumulative_bed([c1, c2], 3.0)[0, 0, 0] == pytest.approx(135.0)
        assert cumulative_eqd2([c1, c2], 3.0)[0, 0, 0] == pytest.approx(135.0 / (1 + 2 / 3))

    def test_grid_mismatch(self):
        g = grid()
        g2 = Grid((0, 0, 0), (2.5, 2.0, 3.0), (4, 5, 6))
        with pytest.raises(GridMismatchError, match="course 'c2'"):
            cumulative_bed([DoseCourse(np.ones(g.shape_zyx), g, 1, "c1"), DoseCourse(np.ones(g.shape_zyx), g2, 1, "c2")], 3)

    def test_empty(self):
        with pytest.raises(InputError, match="at least one course"):
            cumulative_bed([], 3.0)
