"""Geometry findings: target-PRV overlap, OARs inside the target, the cord PRV margin; and the grey dilation."""
import numpy as np
import pytest

from constraints import Grid
from constraints.geometry_checks import overlap_cc, overlap_findings, prv_margin_findings
from constraints.morphology import max_over_sphere


def test_overlap_bounds_by_hand():
    # voxel 1 cc: a = 0.6, b = 0.7 -> at least 0.3 - 1/255, at most 0.6; a = b = 0.5 (split) -> at least 0
    a = np.array([0.6, 0.5])
    b = np.array([0.7, 0.5])
    lo, hi = overlap_cc(a, b, 1.0)
    assert lo == pytest.approx(0.3 - 1 / 255) and hi == pytest.approx(1.1)


def test_overlap_findings_name_the_rois_and_volumes():
    t = np.array([1.0, 1.0, 0.0, 0.0])
    eso = np.array([0.0, 0.5, 1.0, 0.0])      # 0.5 voxel inside the target (sure: 1 + 0.5 - 1 - 1/255)
    prv = np.array([0.0, 0.0, 0.0, 1.0])      # no overlap
    f = overlap_findings("PTVeval", t, "SpinalCord_PRV", prv, {"Esophagus": eso}, 0.1)
    assert [x.check for x in f] == ["oar_in_target"]
    assert f[0].volume_cc == pytest.approx(0.1 * (0.5 - 1 / 255))
    assert "cc of Esophagus lies inside PTVeval" in f[0].message and f[0].severity == "warning"
    f = overlap_findings("PTVeval", t, "SpinalCord_PRV", np.array([0.0, 1.0, 0.0, 0.0]), {}, 0.1)
    assert [x.check for x in f] == ["target_prv_overlap"] and "PTVeval and SpinalCord_PRV overlap" in f[0].message


FINE = Grid((-10.0, -10.0, 0.0), (0.5, 0.5, 0.5), (4, 40, 40))


def _cyl(r):
    x = FINE.corner_mm[0] + 0.5 * (np.arange(40) + 0.5)
    inside = (x[None, :] ** 2 + x[:, None] ** 2) <= r * r
    return np.broadcast_to(inside, FINE.shape_zyx).astype(float)


@pytest.mark.parametrize("prv_r, checks", [(6.5, []), (6.0, []), (7.0, []),
                                           (5.0, ["prv_margin_narrow"]), (8.0, ["prv_margin_wide"])])
def test_prv_margin(prv_r, checks):
    # cord r = 5 mm; the PRV should be r = 6.5 mm (cord + 1.5 mm); tolerance = the 0.5 mm sub-voxel's
    # diagonal, sqrt(3) x 0.5 = 0.87 mm: margins 1.0 and 2.0 mm pass; a PRV equal to the cord (margin 0) is
    # narrow, a 3 mm margin wide (sure detection needs a deviation beyond the tolerance + one sub-voxel)
    f = prv_margin_findings("SpinalCord", _cyl(5.0), "SpinalCord_PRV", _cyl(prv_r), FINE)
    assert [x.check for x in f] == checks


def test_max_over_sphere_moves_a_step_edge_by_the_radius():
    # grid 2 x 3 x 4 mm (x, y, z); a step along x: 10 Gy for x index <= 3, 0 beyond.  Radius 4 mm reaches
    # 2 voxels in x (4 / 2), 1 in y (3 <= 4), 1 in z (4 <= 4): the edge moves to x index 5, nothing in y, z
    g = Grid((0.0, 0.0, 0.0), (2.0, 3.0, 4.0), (3, 3, 10))
    v = np.zeros(g.shape_zyx)
    v[:, :, :4] = 10.0
    out = max_over_sphere(v, g, 4.0)
    assert (out[:, :, :6] == 10.0).all() and (out[:, :, 6:] == 0.0).all()
    # 3.9 mm reaches only 1 voxel in x
    assert (max_over_sphere(v, g, 3.9)[:, :, 4] == 10.0).all() and (max_over_sphere(v, g, 3.9)[:, :, 5] == 0.0).all()
    # a single hot voxel becomes the sphere: offsets (kx, ky, kz) with (2kx)^2 + (3ky)^2 + (4kz)^2 <= 16
    p = np.zeros(g.shape_zyx)
    p[1, 1, 5] = 7.0
    hot = max_over_sphere(p, g, 4.0) == 7.0
    # offsets within 4 mm: (0,0,0); x +-1 (2 mm), +-2 (4 mm); y +-1 (3 mm); z +-1 (4 mm); (x +-1, y +-1):
    # sqrt(4 + 9) = 3.6 mm -> 4 more; (x +-2, y +-1) = 5 mm, (x +-1, z +-1) = 4.5 mm: out.  1 + 4 + 2 + 2 + 4 = 13
    assert int(hot.sum()) == 13
