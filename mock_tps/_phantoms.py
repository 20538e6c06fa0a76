"""Synthetic re-irradiation spine phantoms for the mock TPS.

Four builders, each returning a :class:`mock_tps._phantom_data.PhantomData`:

``t4t5_esophageal``
    T4–T5 after esophageal chemoradiotherapy 60 Gy / 30 fx (AP/PA 40 Gy, then
    laterals with the cord blocked, to a mediastinal PTV around esophagus and
    vertebral body); esophagus abutting the
    vertebral body by default (``esophagus_gap_mm=0``) – the seed study's fatal case.
``c7t1_head_neck``
    C7–T1 after head-and-neck radiotherapy 70 Gy / 35 fx (opposed laterals plus an
    anterior field to 42 Gy, then off-cord laterals, to a prevertebral/pharyngo-esophageal
    PTV).
``c3_cervical``
    C3 after 50 Gy / 25 fx (opposed laterals to the C2–C4 spine).  The tube in front
    of C3 is anatomically the pharynx; it is named ``Esophagus`` so every phantom
    has the same ROI set.
``t8_two_courses``
    T8 after two palliative courses, 30 Gy / 10 fx (AP/PA, T7–T9) and 20 Gy / 5 fx
    (posterior obliques, T8), each its own :class:`PriorCourseSpec`.  No trachea
    (T8 is below the carina).

Geometry
--------
DICOM patient coordinates of a head-first-supine patient, mm: +x = patient left,
+y = posterior, +z = superior; arrays ``(nz, ny, nx)``.  The treated segment is
centred at z = 0, the body ellipse at x = y = 0.  Every organ is an analytic shape
(elliptic/circular cylinders, boxes, a sphere; the vertebral body is a circular
cylinder with a flat posterior wall against the canal); masks are fractional
coverages from ``ss**3`` sub-points per voxel, sub-point spacing <= 0.7 mm
(``ss`` = 3 at 2 mm, 6 at 4 mm).  Margins (PTV = CTV +
2 mm) are done on the sub-point grid with a Euclidean distance transform;
SpinalCord_PRV = cord + 1.5 mm is analytic (a cylinder of radius r + 1.5 mm).
These analytic masks make the CT numbers, the dose grid and the beamlets.  The
ROIs the mock TPS holds are contours, as in RayStation: each shape's cross-section
at every CT slice centre, sampled at <= 0.35 mm and contoured
(:func:`shape_planes`), voxelized by the RTSTRUCT rule
(:mod:`mock_tps._dicom_voxelize`).  An exported RTSTRUCT therefore re-imports to
the same coverage.  Measured ROI volume against the analytic masks: within
±1.5 % at 2 mm (T4–T5, C7–T1); at 4 mm up to −6 % for the 2.4 cc GTV and −4 %
for the lung apices, whose cross-sections change within a slice.

Anatomy (published dimensions): the cord is a stadium of 9 × 7 mm (thoracic;
C7–T1 10 × 7.5, C3 10 × 8 mm) centred in the canal, the PRV every point within
1.5 mm of it (again a stadium, exactly).  The GTV is a sphere in the vertebral
body; on T4–T5 and T8 it has an epidural component (Bilsky 1b): it breaches the
posterior wall and fills the ventral canal to 1.5 mm in front of the cord, over
80 % of the level's height.  The CTV (consensus contouring) is the treated
vertebral bodies – with the disc between two treated levels – their pedicles and
the GTV.  The lungs reach back into the paravertebral gutters, 3 mm from the
vertebral body and the pedicles (the costovertebral region), 1 mm outside the PTV.

Beams
-----
Coplanar static 6 MV beams sampling a posterior arc (default 17 beams over 240°,
gantry 60° to 300° every 15°; no beam enters through the anterior sector of the
esophagus and heart), square beamlets of 5 mm at isocentre, a 2 mm dose grid in a
box of the PTV + (20, 20, 15) mm; see :func:`gantry_angles_deg` and
:mod:`mock_tps.dose_engine`.

ROI names: ``Body, Vertebra, SpinalCord, SpinalCord_PRV, Esophagus, Trachea,
Lungs, Aorta, GTV, CTV, PTV, PTVeval`` (``Vertebra`` is the bone of the treated
level(s): body + posterior elements; Trachea, Lungs and Aorta only where the
anatomy has them – see :data:`ROI_NAMES_BY_PHANTOM`).

HU: air −1000, soft tissue 30, fat-free organs 40, lung −800, bone 700, disc 80.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from constraints.errors import InputError
from mock_tps._contours import Planes, stack_planes
from mock_tps._dicom_voxelize import voxelize_planes
from mock_tps._phantom_data import BeamSpec, GridSpec, PhantomData, PriorCourseSpec, RoiSpec

__all__ = [
    "PHANTOM_BUILDERS",
    "ROI_NAMES_BY_PHANTOM",
    "build_phantom",
    "build_anatomy",
    "Anatomy",
    "build_t4t5_esophageal",
    "build_c7t1_head_neck",
    "build_c3_cervical",
    "build_t8_two_courses",
    "fractional_mask",
    "subsample_for",
    "gantry_angles_deg",
    "Shape",
]

#: Largest sub-point spacing for fractional masks, mm (sub-points per voxel and
#: axis: ``ss = max(2, ceil(grid_mm / SUBPOINT_MM))``, i.e. 3 at 2 mm, 6 at 4 mm).
SUBPOINT_MM = 0.7
#: Largest in-plane sample spacing when contouring analytic shapes, mm.
CONTOUR_SAMPLE_MM = 0.35
#: Most samples along the longer in-plane side of an ROI's box when contouring it.
CONTOUR_MAX_SAMPLES = 400


def subsample_for(grid_mm: float) -> int:
    """Sub-points per voxel along each axis for a CT voxel size ``grid_mm``."""
    return max(2, int(math.ceil(grid_mm / SUBPOINT_MM - 1e-9)))
#: PTV = CTV + this margin, mm.
PTV_MARGIN_MM = 2.0
#: SpinalCord_PRV = SpinalCord + this margin, mm.
PRV_MARGIN_MM = 1.5
#: Default dose-grid box margin around the PTV, (x, y, z) mm: covers the cord,
#: the esophagus and the nearby unspecified tissue.
DOSE_BOX_MARGIN_MM = (20.0, 20.0, 15.0)

#: Default SBRT beam model: static beams sampling a posterior arc (see :func:`gantry_angles_deg`).
DEFAULT_N_BEAMS = 17
DEFAULT_ARC_DEG = 240.0
DEFAULT_BIXEL_MM = 5.0
DEFAULT_DOSE_GRID_MM = 2.0

HU_AIR, HU_SOFT, HU_ORGAN, HU_LUNG, HU_BONE, HU_DISC = -1000.0, 30.0, 40.0, -800.0, 700.0, 80.0

_INF = math.inf


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Shape:
    """An analytic solid: a vectorised membership test plus a bounding box.

    Attributes
    ----------
    fn : callable
        ``fn(X, Y, Z) -> bool array``; X, Y, Z are broadcastable coordinate
        arrays in mm, shaped ``(1, 1, nx)``, ``(1, ny, 1)``, ``(nz, 1, 1)``.
    bbox : tuple of float
        ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in mm (may be infinite).
    """

    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    bbox: Tuple[float, float, float, float, float, float]

    def __or__(self, other: "Shape") -> "Shape":
        a, b = self.bbox, other.bbox
        bb = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]), min(a[4], b[4]), max(a[5], b[5]))
        return Shape(lambda X, Y, Z, f=self.fn, g=other.fn: f(X, Y, Z) | g(X, Y, Z), bb)

    def __and__(self, other: "Shape") -> "Shape":
        a, b = self.bbox, other.bbox
        bb = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]), max(a[4], b[4]), min(a[5], b[5]))
        return Shape(lambda X, Y, Z, f=self.fn, g=other.fn: f(X, Y, Z) & g(X, Y, Z), bb)

    def __sub__(self, other: "Shape") -> "Shape":
        return Shape(lambda X, Y, Z, f=self.fn, g=other.fn: f(X, Y, Z) & ~g(X, Y, Z), self.bbox)


def _ecyl(cx: float, cy: float, ax: float, ay: float, z0: float = -_INF, z1: float = _INF) -> Shape:
    """Elliptic cylinder along z, semi-axes ``ax``, ``ay`` (mm), z in [z0, z1]."""

    def fn(X, Y, Z):
        return ((((X - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2) <= 1.0) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (cx - ax, cx + ax, cy - ay, cy + ay, z0, z1))


def _cyl(cx: float, cy: float, r: float, z0: float = -_INF, z1: float = _INF) -> Shape:
    return _ecyl(cx, cy, r, r, z0, z1)


def _box(x0: float, x1: float, y0: float, y1: float, z0: float = -_INF, z1: float = _INF) -> Shape:
    def fn(X, Y, Z):
        return (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (x0, x1, y0, y1, z0, z1))


def _sphere(cx: float, cy: float, cz: float, r: float) -> Shape:
    def fn(X, Y, Z):
        return ((X - cx) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2) <= r * r

    return Shape(fn, (cx - r, cx + r, cy - r, cy + r, cz - r, cz + r))


def _capsule(p: Tuple[float, float], q: Tuple[float, float], r: float, z0: float, z1: float) -> Shape:
    """Axial 'stadium': points within ``r`` of segment p–q, extruded over [z0, z1]."""
    px, py = p
    dx, dy = q[0] - p[0], q[1] - p[1]
    L2 = dx * dx + dy * dy

    def fn(X, Y, Z):
        t = np.clip(((X - px) * dx + (Y - py) * dy) / L2, 0.0, 1.0) if L2 > 0 else 0.0
        return (((X - px - t * dx) ** 2 + (Y - py - t * dy) ** 2) <= r * r) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (min(p[0], q[0]) - r, max(p[0], q[0]) + r, min(p[1], q[1]) - r, max(p[1], q[1]) + r, z0, z1))


def _union(shapes: Sequence[Shape]) -> Shape:
    out = shapes[0]
    for s in shapes[1:]:
        out = out | s
    return out


# --------------------------------------------------------------------------- masks


def _index_range(lo_mm: float, hi_mm: float, corner: float, spacing: float, n: int) -> Tuple[int, int]:
    """Voxel index range [i0, i1) whose voxels overlap [lo, hi] (mm)."""
    if not math.isfinite(lo_mm):
        i0 = 0
    else:
        i0 = max(0, int(math.floor((lo_mm - corner) / spacing)))
    if not math.isfinite(hi_mm):
        i1 = n
    else:
        i1 = min(n, int(math.floor((hi_mm - corner) / spacing)) + 1)
    return i0, max(i0, i1)


def _box_indices(grid: GridSpec, bbox: Sequence[float], pad_mm: float = 0.0) -> Tuple[slice, slice, slice]:
    nz, ny, nx = grid.shape_zyx
    cx, cy, cz = grid.corner_mm
    sx, sy, sz = grid.spacing_xyz_mm
    x0, x1 = _index_range(bbox[0] - pad_mm, bbox[1] + pad_mm, cx, sx, nx)
    y0, y1 = _index_range(bbox[2] - pad_mm, bbox[3] + pad_mm, cy, sy, ny)
    z0, z1 = _index_range(bbox[4] - pad_mm, bbox[5] + pad_mm, cz, sz, nz)
    return slice(z0, z1), slice(y0, y1), slice(x0, x1)


def _sub_coords(corner: float, spacing: float, sl: slice, ss: int) -> np.ndarray:
    """Sub-point coordinates (mm) of voxels ``sl`` along one axis, ``ss`` per voxel."""
    i = np.arange(sl.start, sl.stop)
    off = (np.arange(ss) + 0.5) / ss
    return corner + (i[:, None] + off[None, :]).ravel() * spacing


def _fine_bool(grid: GridSpec, shape: Shape, box: Tuple[slice, slice, slice], ss: int) -> np.ndarray:
    """Membership of ``shape`` on the sub-point grid of voxel box ``box``."""
    zs, ys, xs = box
    X = _sub_coords(grid.corner_mm[0], grid.spacing_xyz_mm[0], xs, ss)[None, None, :]
    Y = _sub_coords(grid.corner_mm[1], grid.spacing_xyz_mm[1], ys, ss)[None, :, None]
    Z = _sub_coords(grid.corner_mm[2], grid.spacing_xyz_mm[2], zs, ss)[:, None, None]
    out = shape.fn(X, Y, Z)
    return np.broadcast_to(out, (Z.shape[0], Y.shape[1], X.shape[2]))


def _block_mean(fine: np.ndarray, ss: int) -> np.ndarray:
    nz, ny, nx = (n // ss for n in fine.shape)
    return fine.reshape(nz, ss, ny, ss, nx, ss).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def fractional_mask(grid: GridSpec, shape: Shape, ss: Optional[int] = None) -> np.ndarray:
    """Fractional coverage (float32 in [0, 1]) of ``shape`` on ``grid``.

    Parameters
    ----------
    grid : GridSpec
    shape : Shape
    ss : int, optional
        Sub-points per voxel along each axis (``ss**3`` per voxel); default
        :func:`subsample_for` of the largest voxel side.

    Returns
    -------
    ndarray, shape ``grid.shape_zyx``, float32
    """
    if ss is None:
        ss = subsample_for(max(grid.spacing_xyz_mm))
    out = np.zeros(grid.shape_zyx, dtype=np.float32)
    box = _box_indices(grid, shape.bbox, pad_mm=0.0)
    if any(s.stop <= s.start for s in box):
        return out
    # chunk along z to bound memory (a Python loop over slabs, not voxels)
    zs = box[0]
    n_sub_per_slice = (box[1].stop - box[1].start) * (box[2].stop - box[2].start) * ss ** 3
    step = max(1, int(4e6 // max(n_sub_per_slice, 1)))
    for z0 in range(zs.start, zs.stop, step):
        sl = (slice(z0, min(z0 + step, zs.stop)), box[1], box[2])
        out[sl] = _block_mean(_fine_bool(grid, shape, sl, ss), ss)
    return out


def _dilated_fractions(
    grid: GridSpec,
    base: Shape,
    margin_mm: float,
    minus: Optional[Shape],
    ss: int,
) -> Tuple[np.ndarray, np.ndarray, Planes, Planes]:
    """Fractions of ``base ⊕ margin`` and of ``(base ⊕ margin) − minus``, and their contours.

    The dilation is done on the sub-point grid with an exact Euclidean distance
    transform (sub-point spacing = voxel spacing / ss).
    """
    from scipy.ndimage import distance_transform_edt

    pad = margin_mm + 2.0 * max(grid.spacing_xyz_mm)
    box = _box_indices(grid, base.bbox, pad_mm=pad)
    fine = _fine_bool(grid, base, box, ss)
    sampling = (grid.spacing_xyz_mm[2] / ss, grid.spacing_xyz_mm[1] / ss, grid.spacing_xyz_mm[0] / ss)
    dist = distance_transform_edt(~fine, sampling=sampling)
    dil = dist <= margin_mm + 1e-9
    full = np.zeros(grid.shape_zyx, dtype=np.float32)
    full[box] = _block_mean(dil, ss)
    # contours from continuous fields (> 0 inside): margin − distance, and its minimum
    # with the signed distance to the outside of ``minus``.  The EDT gives an outside
    # sub-point's distance to the nearest *inside sub-point*, which exceeds its distance
    # to the surface by 0 … h (h = sub-point spacing); h/4 is subtracted (measured on a
    # 10 mm sphere + 2 mm at 2 mm: per-slice areas within −1 … +4 % of π(12² − z²),
    # against −3 … −37 % uncorrected).
    level = margin_mm + 0.25 * min(sampling) - dist
    planes = _fine_planes(grid, level, box, ss, min(sampling))
    full_minus = np.zeros(grid.shape_zyx, dtype=np.float32)
    if minus is not None:
        inside = _fine_bool(grid, minus, box, ss)
        dil = dil & ~inside
        level = np.minimum(level, distance_transform_edt(~inside, sampling=sampling)
                           - distance_transform_edt(inside, sampling=sampling))
    full_minus[box] = _block_mean(dil, ss)
    return full, full_minus, planes, _fine_planes(grid, level, box, ss, min(sampling))


# --------------------------------------------------------------------------- contours


def _fine_planes(grid: GridSpec, field_mm: np.ndarray, box: Tuple[slice, slice, slice], ss: int,
                 step_mm: float) -> Planes:
    """Contours, per CT slice, of the zero level of a sub-point field (``ss`` per voxel).

    ``field_mm`` is a (signed) distance, > 0 inside; it is mapped to a coverage-like
    ``clip(0.5 + field / (4 step), 0, 1)`` (linear within two samples of the
    boundary) and contoured at 0.5.  The sub-plane ``ss // 2`` of each slice is
    used: the slice centre for odd ``ss``, ``dz / (2 ss)`` above it for even ``ss``.
    """
    fine = np.clip(0.5 + field_mm / (4.0 * step_mm), 0.0, 1.0)
    zs, ys, xs = box
    x = _sub_coords(grid.corner_mm[0], grid.spacing_xyz_mm[0], xs, ss)
    y = _sub_coords(grid.corner_mm[1], grid.spacing_xyz_mm[1], ys, ss)
    zc = grid.centres_mm()[2]
    return stack_planes(((zc[k], fine[i * ss + ss // 2]) for i, k in enumerate(range(zs.start, zs.stop))), x, y)


def shape_planes(grid: GridSpec, shape: Shape, sample_mm: float = CONTOUR_SAMPLE_MM) -> Planes:
    """Contours of an analytic shape on every CT slice it crosses.

    On each slice the shape's cross-section at the slice centre is sampled on an
    in-plane grid of ``ceil(voxel / sample_mm)`` points per voxel (fewer for ROIs
    longer than :data:`CONTOUR_MAX_SAMPLES` samples) and contoured at 0.5 by
    marching squares (:func:`mock_tps._contours.slice_contours`): every
    contour vertex lies within half a sample of the true boundary.

    Parameters
    ----------
    grid : GridSpec
        The CT grid; one contour plane per slice centre.
    shape : Shape
    sample_mm : float
        Largest in-plane sample spacing, mm.

    Returns
    -------
    Planes
    """
    zs, ys, xs = _box_indices(grid, shape.bbox, pad_mm=0.0)
    if any(sl.stop <= sl.start for sl in (zs, ys, xs)):
        return ()
    f = max(2, int(math.ceil(max(grid.spacing_xyz_mm[:2]) / sample_mm)))
    # large ROIs (body, lungs) are sampled more coarsely so that no contour exceeds
    # what one DICOM ContourData element holds (64 kB, about 2 000 points)
    f = max(1, min(f, CONTOUR_MAX_SAMPLES // max(xs.stop - xs.start, ys.stop - ys.start)))
    x = _sub_coords(grid.corner_mm[0], grid.spacing_xyz_mm[0], xs, f)
    y = _sub_coords(grid.corner_mm[1], grid.spacing_xyz_mm[1], ys, f)
    zc = grid.centres_mm()[2]

    def cross_section(z_mm: float) -> np.ndarray:
        inside = shape.fn(x[None, None, :], y[None, :, None], np.full((1, 1, 1), z_mm))[0]
        return np.broadcast_to(inside, (y.size, x.size)).astype(np.float64)

    return stack_planes(((zc[k], cross_section(zc[k])) for k in range(zs.start, zs.stop)), x, y)


# --------------------------------------------------------------------------- anatomy


@dataclass(frozen=True)
class _Anatomy:
    """Dimensions (mm) of one synthetic spinal level region."""

    level: str                       # e.g. "T4-T5"
    body_ax: float                   # body ellipse semi-axes
    body_ay: float
    z_half: float                    # CT half-length in z
    vb_y: float                      # vertebral-body centre y (x = 0)
    vb_r: float                      # vertebral-body radius (circular cylinder)
    level_h: float                   # vertebral-body height
    disc_h: float                    # intervertebral disc height
    n_treated: int                   # treated levels (1 or 2), centred at z = 0
    canal_r: float
    cord_ax: float                   # cord half-width (x) and half-depth (y): a stadium
    cord_ay: float
    pedicle_w: float                 # pedicle width (x)
    lamina_t: float                  # lamina thickness
    spinous_len: float
    transverse_len: float
    esoph_r: float
    esoph_angle_deg: float           # from anterior (−y) toward patient left (+x)
    trachea_r: Optional[float]       # outer radius (lumen = r − 2.5 mm)
    trachea_offset: Tuple[float, float]  # (dx, extra dy) anterior of esophagus
    lungs: Optional[Tuple[float, float, float, float, float]]  # (|cx|, cy, rx, ry, z_top)
    aorta: Optional[Tuple[float, float, float]]  # (cx, cy, r)
    #: Epidural GTV component in the anterior canal of the first treated level, or None:
    #: (Bilsky grade, x0, x1 (mm, canal-centred), clearance to the cord surface (mm)).
    epidural: Optional[Tuple[str, float, float, float]] = None

    @property
    def pitch(self) -> float:
        return self.level_h + self.disc_h

    def level_centres(self) -> np.ndarray:
        """z centres of all vertebral bodies in the CT (treated ones first n_treated)."""
        k = np.arange(-6, 7)
        c = (k - (self.n_treated - 1) / 2.0) * self.pitch
        return c[np.abs(c) <= self.z_half + self.level_h]

    def treated_centres(self) -> np.ndarray:
        return (np.arange(self.n_treated) - (self.n_treated - 1) / 2.0) * self.pitch

    @property
    def vb_post_y(self) -> float:
        """y of the flat posterior wall of the vertebral body (at 0.8 r)."""
        return self.vb_y + 0.8 * self.vb_r

    @property
    def canal_y(self) -> float:
        return self.vb_post_y + self.canal_r

    def vb_shape(self, z0: float, z1: float) -> Shape:
        """Vertebral body: circular cylinder with a flat posterior wall."""
        return _cyl(0.0, self.vb_y, self.vb_r, z0, z1) & _box(-_INF, _INF, -_INF, self.vb_post_y, z0, z1)

    def esophagus_centre(self, gap_mm: float) -> Tuple[float, float]:
        th = math.radians(self.esoph_angle_deg)
        d = self.vb_r + gap_mm + self.esoph_r
        return (d * math.sin(th), self.vb_y - d * math.cos(th))


_ANATOMY: Dict[str, _Anatomy] = {
    "t4t5_esophageal": _Anatomy(
        level="T4-T5", body_ax=160.0, body_ay=110.0, z_half=60.0, vb_y=35.0, vb_r=15.0,
        level_h=20.0, disc_h=5.0, n_treated=2, canal_r=8.0, cord_ax=4.5, cord_ay=3.5, pedicle_w=7.0,
        lamina_t=5.0, spinous_len=27.0, transverse_len=20.0, esoph_r=8.5, esoph_angle_deg=25.0,
        trachea_r=9.0, trachea_offset=(-10.0, 1.0), lungs=(85.0, 10.0, 55.0, 85.0, _INF),
        aorta=(30.0, 30.0, 12.0), epidural=("1b", -3.0, 6.0, 1.5),
    ),
    "c7t1_head_neck": _Anatomy(
        level="C7-T1", body_ax=90.0, body_ay=70.0, z_half=50.0, vb_y=12.0, vb_r=11.0,
        level_h=16.0, disc_h=4.0, n_treated=2, canal_r=7.5, cord_ax=5.0, cord_ay=3.75, pedicle_w=5.0,
        lamina_t=4.0, spinous_len=18.0, transverse_len=14.0, esoph_r=7.5, esoph_angle_deg=10.0,
        trachea_r=8.0, trachea_offset=(-2.0, 1.0), lungs=(52.0, 18.0, 24.0, 35.0, 0.0),
        aorta=None,
    ),
    "c3_cervical": _Anatomy(
        level="C3", body_ax=58.0, body_ay=55.0, z_half=45.0, vb_y=8.0, vb_r=8.0,
        level_h=13.0, disc_h=4.0, n_treated=1, canal_r=7.0, cord_ax=5.0, cord_ay=4.0, pedicle_w=4.0,
        lamina_t=3.5, spinous_len=15.0, transverse_len=10.0, esoph_r=7.0, esoph_angle_deg=0.0,
        trachea_r=8.0, trachea_offset=(0.0, 1.0), lungs=None, aorta=None,
    ),
    "t8_two_courses": _Anatomy(
        level="T8", body_ax=150.0, body_ay=105.0, z_half=60.0, vb_y=35.0, vb_r=16.0,
        level_h=22.0, disc_h=5.0, n_treated=1, canal_r=8.0, cord_ax=4.5, cord_ay=3.5, pedicle_w=7.0,
        lamina_t=5.0, spinous_len=27.0, transverse_len=20.0, esoph_r=8.5, esoph_angle_deg=10.0,
        trachea_r=None, trachea_offset=(0.0, 0.0), lungs=(80.0, 10.0, 52.0, 80.0, _INF),
        aorta=(26.0, 20.0, 12.0), epidural=("1b", -5.0, 4.0, 1.5),
    ),
}

#: ROI names each phantom carries (in painting/listing order).
ROI_NAMES_BY_PHANTOM: Dict[str, Tuple[str, ...]] = {
    k: tuple(
        n
        for n in (
            "Body", "Vertebra", "SpinalCord", "SpinalCord_PRV", "Esophagus", "Trachea",
            "Lungs", "Aorta", "GTV", "CTV", "PTV", "PTVeval",
        )
        if not (n == "Trachea" and a.trachea_r is None)
        and not (n == "Lungs" and a.lungs is None)
        and not (n == "Aorta" and a.aorta is None)
    )
    for k, a in _ANATOMY.items()
}


class _Shapes:
    """All analytic shapes of one phantom (pure geometry, no grid)."""

    def __init__(self, a: _Anatomy, gap_mm: float):
        self.a = a
        zb = a.z_half + 50.0  # organs run through the whole CT
        self.body = _ecyl(0.0, 0.0, a.body_ax, a.body_ay, -zb, zb)
        # --- bone: vertebral bodies + posterior elements, level by level
        levels = []
        treated = []
        for zc in a.level_centres():
            z0, z1 = zc - a.level_h / 2.0, zc + a.level_h / 2.0
            lvl = self._vertebra(zc, z0, z1)
            levels.append(lvl)
            if np.any(np.isclose(zc, a.treated_centres())):
                treated.append(lvl)
        self.bone = _union(levels)
        self.vertebra = _union(treated)
        self.discs = a.vb_shape(-zb, zb) - self.bone
        self.canal = _cyl(0.0, a.canal_y, a.canal_r, -zb, zb)
        # cord: a stadium (points within cord_ay of a transverse segment), so that the
        # PRV (every point within 1.5 mm of the cord) is again a stadium, exactly
        seg = ((-(a.cord_ax - a.cord_ay), a.canal_y), (a.cord_ax - a.cord_ay, a.canal_y))
        self.cord = _capsule(seg[0], seg[1], a.cord_ay, -zb, zb)
        self.prv = _capsule(seg[0], seg[1], a.cord_ay + PRV_MARGIN_MM, -zb, zb)
        ex, ey = a.esophagus_centre(gap_mm)
        self.esophagus_centre = (ex, ey)
        self.esophagus = _cyl(ex, ey, a.esoph_r, -zb, zb)
        self.trachea = self.trachea_lumen = None
        if a.trachea_r is not None:
            tx = ex + a.trachea_offset[0]
            ty = ey - (a.esoph_r + a.trachea_r + a.trachea_offset[1])
            self.trachea = _cyl(tx, ty, a.trachea_r, -zb, zb)
            self.trachea_lumen = _cyl(tx, ty, a.trachea_r - 2.5, -zb, zb)
        self.aorta = None
        if a.aorta is not None:
            self.aorta = _cyl(a.aorta[0], a.aorta[1], a.aorta[2], -zb, zb)
        self.lungs = None
        if a.lungs is not None:
            cx, cy, rx, ry, ztop = a.lungs
            ztop = min(ztop, zb)
            lungs = _ecyl(-cx, cy, rx, ry, -zb, ztop) | _ecyl(cx, cy, rx, ry, -zb, ztop)
            # the paravertebral gutters: the lungs reach back beside the vertebral body to
            # the costovertebral region (3 mm from the body, 3 mm from the pedicles)
            gx, gy, grx, gry = a.vb_r + 16.0, a.vb_y + 6.0, 14.0, 16.0
            lungs = lungs | _ecyl(-gx, gy, grx, gry, -zb, ztop) | _ecyl(gx, gy, grx, gry, -zb, ztop)
            lungs = lungs & _ecyl(0.0, 0.0, a.body_ax - 12.0, a.body_ay - 12.0, -zb, zb)
            # keep the mediastinal organs (+3 mm) and the bone out of the lungs
            for s in (self.esophagus_grown(gap_mm, 3.0), self._grow_cyl(self.aorta, 3.0), self._grow_cyl(self.trachea, 3.0)):
                if s is not None:
                    lungs = lungs - s
            xp = a.canal_r + a.pedicle_w + 3.0
            lungs = (lungs - _cyl(0.0, a.vb_y, a.vb_r + 3.0, -zb, zb) - self.bone
                     - _box(-xp, xp, a.vb_post_y - 8.0, _INF, -zb, zb))
            self.lungs = lungs
        # --- targets: GTV in the (first) treated vertebral body, toward the esophagus
        zt = a.treated_centres()
        r_g = 0.55 * a.vb_r
        ux, uy = ex - 0.0, ey - a.vb_y
        un = math.hypot(ux, uy) or 1.0
        self.gtv = _sphere(0.3 * a.vb_r * ux / un, a.vb_y + 0.3 * a.vb_r * uy / un, float(zt[0]), r_g)
        self.epidural = None
        if a.epidural is not None:
            self.epidural = self._epidural(float(zt[0]))
            self.gtv = self.gtv | self.epidural
        # CTV (consensus contouring): the treated vertebral bodies, with the disc between
        # two treated levels, their pedicles, and the GTV (its epidural component)
        ctv_parts = [a.vb_shape(float(zt[0]) - a.level_h / 2.0, float(zt[-1]) + a.level_h / 2.0), self.gtv]
        for zc in zt:
            ctv_parts.append(self._pedicles(zc - a.level_h / 2.0, zc + a.level_h / 2.0))
        self.ctv = _union(ctv_parts)

    # helpers -----------------------------------------------------------------
    def esophagus_grown(self, gap_mm: float, by_mm: float) -> Shape:
        ex, ey = self.a.esophagus_centre(gap_mm)
        return _cyl(ex, ey, self.a.esoph_r + by_mm)

    @staticmethod
    def _grow_cyl(s: Optional[Shape], by_mm: float) -> Optional[Shape]:
        if s is None:
            return None
        x0, x1, y0, y1, z0, z1 = s.bbox
        return _cyl((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + by_mm, z0, z1)

    def _epidural(self, zc: float) -> Shape:
        """Epidural tumour (Bilsky 1b–1c): the ventral canal between ``x0`` and ``x1``.

        It fills the canal from the posterior wall of the vertebral body back to
        ``clearance`` mm in front of the cord (1b: the thecal sac deformed, CSF
        left around the cord; 0 = abutting, 1c), over the middle 80 % of the
        level's height, joined to the body by a breach of its posterior wall.
        """
        a = self.a
        _, x0, x1, clearance = a.epidural
        z0, z1 = zc - 0.4 * a.level_h, zc + 0.4 * a.level_h
        y_back = a.canal_y - a.cord_ay - clearance
        canal = _cyl(0.0, a.canal_y, a.canal_r, z0, z1)
        ventral = canal & _box(x0, x1, a.vb_post_y - 1.0, y_back, z0, z1)
        breach = _box(x0, x1, a.vb_y, a.vb_post_y, z0, z1) & a.vb_shape(z0, z1)
        return ventral | breach

    def _pedicles(self, z0: float, z1: float) -> Shape:
        a = self.a
        y0 = a.vb_post_y - 5.0
        y1 = a.canal_y + 2.0
        xin, xout = a.canal_r, a.canal_r + a.pedicle_w
        return _box(-xout, -xin, y0, y1, z0, z1) | _box(xin, xout, y0, y1, z0, z1)

    def _vertebra(self, zc: float, z0: float, z1: float) -> Shape:
        a = self.a
        body = a.vb_shape(z0, z1)
        ring_outer = _cyl(0.0, a.canal_y, a.canal_r + a.lamina_t, z0, z1)
        lamina = (ring_outer - _cyl(0.0, a.canal_y, a.canal_r, z0, z1)) & _box(-_INF, _INF, a.canal_y, _INF, z0, z1)
        y_sp0 = a.canal_y + a.canal_r + a.lamina_t - 1.0
        spinous = _box(-3.0, 3.0, y_sp0, y_sp0 + a.spinous_len, z0, z1)
        xo = a.canal_r + a.pedicle_w
        transverse = _box(-(xo + a.transverse_len), -xo + 1.0, a.canal_y - 4.0, a.canal_y + 4.0, z0, z1) | _box(
            xo - 1.0, xo + a.transverse_len, a.canal_y - 4.0, a.canal_y + 4.0, z0, z1
        )
        return body | self._pedicles(z0, z1) | lamina | spinous | transverse


def gantry_angles_deg(n_beams: int, arc_deg: float) -> Tuple[float, ...]:
    """Gantry angles (IEC 61217, deg) of ``n_beams`` static beams sampling an arc.

    ``arc_deg`` = 360: equi-spaced over the full circle from 0° (``360 k / n``).
    Below 360: a posterior arc centred on 180° from ``180 − arc/2`` to
    ``180 + arc/2`` inclusive, ``arc / (n − 1)`` apart (a VMAT arc sampled as
    static beams; the anterior sector, where the esophagus and heart lie, is left out).

    Examples
    --------
    >>> gantry_angles_deg(4, 360.0)
    (0.0, 90.0, 180.0, 270.0)
    >>> gantry_angles_deg(5, 240.0)
    (60.0, 120.0, 180.0, 240.0, 300.0)
    """
    n = int(n_beams)
    if arc_deg >= 360.0:
        return tuple(float(360.0 * k / n) for k in range(n))
    start = 180.0 - arc_deg / 2.0
    return tuple(float(round(start + arc_deg * k / (n - 1), 6)) for k in range(n))


# --------------------------------------------------------------------------- validation


def _num(name: str, value: Any, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- builder core


@dataclass(frozen=True)
class _PriorPlan:
    """A prior course: 3D-conformal fields to an analytic prior PTV.

    ``field_weights`` weight the open fields; ``blocked_weights`` (same gantries)
    weight the same fields with an MLC block over ``block`` (the off-cord phase of a
    conventional plan): a beamlet is shut when the block region gets at least half
    its peak dose, i.e. when its central ray crosses the region.  With
    ``weights_are_shares`` each field is first normalised to unit prior-PTV mean
    dose, so a weight is that field's share of the prescription.
    """

    name: str
    dose_gy: float
    fractions: int
    date: str
    ptv: Shape
    gantries_deg: Tuple[float, ...]
    field_weights: Tuple[float, ...]
    blocked_weights: Tuple[float, ...] = ()
    block: Optional[Shape] = None
    weights_are_shares: bool = False


def _ct_grid(a: _Anatomy, grid_mm: float) -> GridSpec:
    nx = int(math.ceil(2 * (a.body_ax + 6.0) / grid_mm))
    ny = int(math.ceil(2 * (a.body_ay + 6.0) / grid_mm))
    nz = int(math.ceil(2 * a.z_half / grid_mm))
    # a CT grid is not aligned with the anatomy: an odd sub-voxel shift avoids
    # sub-points falling exactly on analytic surfaces (biased volumes)
    shift = np.array([0.137, 0.291, 0.073]) * grid_mm
    return GridSpec(
        corner_mm=(
            -nx * grid_mm / 2.0 + float(shift[0]),
            -ny * grid_mm / 2.0 + float(shift[1]),
            -nz * grid_mm / 2.0 + float(shift[2]),
        ),
        spacing_xyz_mm=(grid_mm, grid_mm, grid_mm),
        shape_zyx=(nz, ny, nx),
    )


def _paint(hu: np.ndarray, frac: np.ndarray, value: float) -> None:
    """Partial-volume paint: hu ← hu·(1 − f) + value·f (in place)."""
    hu *= 1.0 - frac
    hu += value * frac


def _mask_centroid_mm(grid: GridSpec, mask: np.ndarray) -> Tuple[float, float, float]:
    x, y, z = grid.centres_mm()
    w = mask.astype(np.float64)
    s = w.sum()
    return (
        float((w.sum(axis=(0, 1)) * x).sum() / s),
        float((w.sum(axis=(0, 2)) * y).sum() / s),
        float((w.sum(axis=(1, 2)) * z).sum() / s),
    )


@dataclass(frozen=True)
class Anatomy:
    """CT and fractional ROI masks of a phantom, without any dose.

    Attributes
    ----------
    name : str
    ct_grid : GridSpec
    ct_hu : ndarray, shape ``ct_grid.shape_zyx``, float32, HU
    masks : dict of str to ndarray (float32 in [0, 1], shape ``ct_grid.shape_zyx``)
        Analytic coverages (they make the CT numbers, dose grid and beamlets).
    shapes : object
        The analytic shapes (internal; exposes e.g. ``esophagus_centre``).
    planes : dict of str to Planes
        Each ROI's contours on the CT slices (:func:`shape_planes`); the mock TPS's
        ROI coverage is voxelized from these (:func:`roi_coverage`).
    """

    name: str
    ct_grid: GridSpec
    ct_hu: np.ndarray
    masks: Dict[str, np.ndarray]
    shapes: Any
    planes: Dict[str, Planes] = field(default_factory=dict)

    def roi_coverage(self, name: str) -> np.ndarray:
        """Coverage of ROI ``name`` voxelized from its contours (the RTSTRUCT rule)."""
        return voxelize_planes(self.planes[name], self.ct_grid, nominal_spacing_mm=self.ct_grid.spacing_xyz_mm[2])


def build_anatomy(name: str, *, grid_mm: float = 2.0, esophagus_gap_mm: float = 0.0, seed: int = 0) -> Anatomy:
    """CT numbers and ROI masks of phantom ``name`` (no dose engine; fast).

    Parameters
    ----------
    name : str
        A key of :data:`PHANTOM_BUILDERS`.
    grid_mm : float, default 2.0
        Isotropic CT voxel size, mm, in [1, 4].
    esophagus_gap_mm : float, default 0.0
        Gap between esophagus and vertebral-body surfaces, mm, in [0, 20].
    seed : int, default 0
        Seed of the CT noise (Gaussian, sigma 5 HU, inside the body).

    Returns
    -------
    Anatomy
    """
    if name not in _ANATOMY:
        raise InputError(f"unknown phantom name {name!r}; expected one of {sorted(_ANATOMY)}")
    grid_mm = _num("grid_mm", grid_mm, 1.0, 4.0)
    esophagus_gap_mm = _num("esophagus_gap_mm", esophagus_gap_mm, 0.0, 20.0)
    seed = _int("seed", seed, 0, 2**32 - 1)
    a = _ANATOMY[name]
    ss = subsample_for(grid_mm)
    shp = _Shapes(a, esophagus_gap_mm)
    ct_grid = _ct_grid(a, grid_mm)

    # --- masks on the CT grid
    fm = lambda s: fractional_mask(ct_grid, s, ss)  # noqa: E731
    analytic = {"Body": shp.body, "Vertebra": shp.vertebra, "SpinalCord": shp.cord, "SpinalCord_PRV": shp.prv,
                "Esophagus": shp.esophagus, "Trachea": shp.trachea, "Lungs": shp.lungs, "Aorta": shp.aorta,
                "GTV": shp.gtv, "CTV": shp.ctv}
    masks: Dict[str, np.ndarray] = {}
    planes: Dict[str, Planes] = {}
    for roi, shape in analytic.items():
        if shape is not None:
            masks[roi] = fm(shape)
            planes[roi] = shape_planes(ct_grid, shape)
    masks["PTV"], masks["PTVeval"], planes["PTV"], planes["PTVeval"] = _dilated_fractions(
        ct_grid, shp.ctv, PTV_MARGIN_MM, shp.prv, ss)

    # --- CT numbers (partial-volume painting, back to front)
    hu = np.full(ct_grid.shape_zyx, HU_AIR, dtype=np.float32)
    _paint(hu, masks["Body"], HU_SOFT)
    if "Lungs" in masks:
        _paint(hu, masks["Lungs"], HU_LUNG)
    _paint(hu, fm(shp.discs), HU_DISC)
    _paint(hu, fm(shp.bone), HU_BONE)
    _paint(hu, fm(shp.canal), HU_SOFT)
    _paint(hu, masks["Esophagus"], HU_ORGAN)
    if "Aorta" in masks:
        _paint(hu, masks["Aorta"], HU_ORGAN)
    if shp.trachea is not None:
        _paint(hu, masks["Trachea"], HU_ORGAN)
        _paint(hu, fm(shp.trachea_lumen), HU_AIR)
    rng = np.random.default_rng(seed)
    hu += (rng.standard_normal(hu.shape).astype(np.float32) * 5.0) * masks["Body"]
    hu = np.round(hu).astype(np.float32)

    return Anatomy(name, ct_grid, hu, masks, shp, planes)


def _build(
    key: str,
    priors_fn: Callable[[_Shapes, _Anatomy], List[_PriorPlan]],
    *,
    grid_mm: float,
    esophagus_gap_mm: float,
    dose_grid_mm: float,
    dose_margin_mm: Tuple[float, float, float],
    n_beams: int,
    arc_deg: float,
    bixel_mm: float,
    prior_covers_oars: bool,
    seed: int,
    use_cache: bool,
    params: Dict[str, Any],
    notes: str,
) -> PhantomData:
    from mock_tps import dose_engine

    a = _ANATOMY[key]
    anat = build_anatomy(key, grid_mm=grid_mm, esophagus_gap_mm=esophagus_gap_mm, seed=seed)
    ct_grid, hu, masks, shp = anat.ct_grid, anat.ct_hu, anat.masks, anat.shapes
    fm = lambda s: fractional_mask(ct_grid, s)  # noqa: E731

    # --- SBRT beams and influence matrix
    ptv = masks["PTV"]
    iso = tuple(round(c, 1) for c in _mask_centroid_mm(ct_grid, ptv))
    beams = tuple(
        BeamSpec(name=f"B{k + 1}_G{g:05.1f}", gantry_deg=g, couch_deg=0.0, collimator_deg=0.0, isocenter_mm=iso)
        for k, g in enumerate(gantry_angles_deg(n_beams, arc_deg))
    )
    dose_grid = dose_engine.dose_box_grid(ct_grid, ptv >= 0.5, dose_grid_mm, dose_margin_mm)
    res = dose_engine.influence_matrix(
        hu, ct_grid, ptv, dose_grid, beams, bixel_mm,
        dose_region_mask=masks["Body"], use_cache=use_cache,
    )

    # --- prior courses: open 3D-conformal fields, normalised to the prior PTV mean
    priors = []
    nz_d = dose_grid.shape_zyx[0]
    if prior_covers_oars:
        prior_grid = dose_grid
    else:  # the superior third of the SBRT dose grid lies outside the prior dose grid
        prior_grid = GridSpec(dose_grid.corner_mm, dose_grid.spacing_xyz_mm, (nz_d - max(1, nz_d // 3),) + tuple(dose_grid.shape_zyx[1:]))
    for pp in priors_fn(shp, a):
        p_beams = tuple(
            BeamSpec(f"P{k + 1}", float(g), 0.0, 0.0, iso) for k, g in enumerate(pp.gantries_deg)
        )
        p_res = dose_engine.influence_matrix(
            hu, ct_grid, fm(pp.ptv), dose_grid, p_beams, bixel_mm,
            dose_region_mask=masks["Body"], use_cache=use_cache,
        )
        ptv_d = fractional_mask(dose_grid, pp.ptv).ravel().astype(np.float64)
        fields = [dose_engine.beam_doses_gy(p_res, len(p_beams))]
        weights = list(pp.field_weights)
        if pp.blocked_weights:  # the same fields with an MLC block over pp.block
            a_csr = p_res.matrix_gy.tocsr()
            in_block = fractional_mask(dose_grid, pp.block).ravel() > 0.5
            peak = a_csr.max(axis=0).toarray().ravel()
            shut = a_csr[in_block].max(axis=0).toarray().ravel() >= 0.5 * peak
            fields.append(dose_engine.beam_doses_gy(p_res, len(p_beams), (~shut).astype(float)))
            weights += list(pp.blocked_weights)
        per_beam = np.concatenate(fields, axis=0)
        if pp.weights_are_shares:
            per_beam /= ((per_beam @ ptv_d) / ptv_d.sum())[:, None]
        dose = np.tensordot(np.asarray(weights, dtype=float), per_beam, axes=1)
        mean_ptv = float((dose * ptv_d).sum() / ptv_d.sum())
        dose_gy = (dose * (pp.dose_gy / mean_ptv)).reshape(dose_grid.shape_zyx)
        dose_gy = dose_gy[: prior_grid.shape_zyx[0]].astype(np.float32)
        priors.append(PriorCourseSpec(pp.name, np.ascontiguousarray(dose_gy), prior_grid, pp.fractions, pp.date))

    colors = {
        "Body": "Green", "Vertebra": "White", "SpinalCord": "Yellow", "SpinalCord_PRV": "Orange",
        "Esophagus": "Brown", "Trachea": "SkyBlue", "Lungs": "Blue", "Aorta": "Red", "GTV": "Magenta",
        "CTV": "Purple", "PTV": "Cyan", "PTVeval": "DarkCyan",
    }
    types = {
        "Body": ("External", "Other"), "GTV": ("Gtv", "Target"), "CTV": ("Ctv", "Target"),
        "PTV": ("Ptv", "Target"), "PTVeval": ("Ptv", "Target"), "Vertebra": ("Organ", "Other"),
    }
    # the TPS's ROIs are contours (one stack per CT slice) and their coverage is voxelized
    # from them, as for an imported RTSTRUCT; the analytic masks above only build the
    # CT numbers, the dose grid and the beamlets.
    rois = tuple(RoiSpec(n, *types.get(n, ("Organ", "OrganAtRisk")), mask=anat.roi_coverage(n), color=colors[n],
                         planes=anat.planes[n], plane_spacing_mm=ct_grid.spacing_xyz_mm[2])
                 for n in ROI_NAMES_BY_PHANTOM[key])
    params = dict(params)
    params.update(
        level=a.level, esophagus_centre_mm=shp.esophagus_centre, vertebral_body_centre_mm=(0.0, a.vb_y),
        vertebral_body_radius_mm=a.vb_r, cord_centre_mm=(0.0, a.canal_y), cord_size_mm=(2 * a.cord_ax, 2 * a.cord_ay),
        bilsky=a.epidural[0] if a.epidural else "0",
        isocenter_mm=iso, engine=f"pyRadPlan {dose_engine.pyradplan_version()} SVDPB photons Generic",
    )
    return PhantomData(
        name=key,
        params=params,
        ct_grid=ct_grid,
        ct_hu=hu,
        rois=rois,
        dose_grid=dose_grid,
        beams=beams,
        influence_gy=res.matrix_gy,
        beamlet_beam_index=res.beamlet_beam_index,
        prior_courses=tuple(priors),
        prescription_gy=24.0,
        fractions=2,
        target_roi="PTVeval",
        patient_name=f"Phantom^{key}",
        patient_id=f"PHANTOM-{key.upper()}",
        notes=notes,
    )


def _common(grid_mm, esophagus_gap_mm, dose_grid_mm, dose_margin_mm, n_beams, arc_deg, bixel_mm, prior_covers_oars,
            seed) -> Dict[str, Any]:
    try:
        margin = tuple(dose_margin_mm)
    except TypeError:
        raise InputError(f"dose_margin_mm must be three numbers (x, y, z) in mm, got {dose_margin_mm!r}") from None
    if len(margin) != 3:
        raise InputError(f"dose_margin_mm must be three numbers (x, y, z) in mm, got {dose_margin_mm!r}")
    p = dict(
        dose_margin_mm=tuple(_num(f"dose_margin_mm[{i}]", v, 5.0, 100.0) for i, v in enumerate(margin)),
        grid_mm=_num("grid_mm", grid_mm, 1.0, 4.0),
        esophagus_gap_mm=_num("esophagus_gap_mm", esophagus_gap_mm, 0.0, 20.0),
        dose_grid_mm=_num("dose_grid_mm", dose_grid_mm, 1.0, 6.0),
        n_beams=_int("n_beams", n_beams, 9, 72),
        arc_deg=_num("arc_deg", arc_deg, 90.0, 360.0),
        bixel_mm=_num("bixel_mm", bixel_mm, 2.0, 10.0),
        seed=_int("seed", seed, 0, 2**32 - 1),
    )
    if not isinstance(prior_covers_oars, (bool, np.bool_)):
        raise InputError(f"prior_covers_oars must be True or False, got {prior_covers_oars!r}")
    p["prior_covers_oars"] = bool(prior_covers_oars)
    return p


#: Margin of the prior courses' MLC cord block around the cord PRV, mm.
CORD_BLOCK_MARGIN_MM = 3.0


def _cord_block(a: _Anatomy) -> Shape:
    """The region a conventional plan's cord block shields: the cord PRV + 3 mm, all slices."""
    half = a.cord_ax - a.cord_ay   # the cord stadium's transverse segment, as in _Shapes
    return _capsule((-half, a.canal_y), (half, a.canal_y), a.cord_ay + PRV_MARGIN_MM + CORD_BLOCK_MARGIN_MM,
                    -a.z_half, a.z_half)


def _course_name(dose_gy: float, fractions: int, label: str = "Prior EBRT") -> str:
    return f"{label} {dose_gy:g}Gy/{fractions}fx"


# --------------------------------------------------------------------------- builders


#: The builder parameters every phantom passes on to ``_build``.
_BUILD_KEYS = ("grid_mm", "esophagus_gap_mm", "dose_grid_mm", "dose_margin_mm", "n_beams", "arc_deg", "bixel_mm",
               "prior_covers_oars", "seed")


def build_t4t5_esophageal(
    *,
    grid_mm: float = 2.0,
    esophagus_gap_mm: float = 0.0,
    prior_dose_gy: float = 60.0,
    prior_fractions: int = 30,
    dose_grid_mm: float = DEFAULT_DOSE_GRID_MM,
    dose_margin_mm: Sequence[float] = DOSE_BOX_MARGIN_MM,
    n_beams: int = DEFAULT_N_BEAMS,
    arc_deg: float = DEFAULT_ARC_DEG,
    bixel_mm: float = DEFAULT_BIXEL_MM,
    prior_covers_oars: bool = True,
    seed: int = 0,
    use_cache: bool = True,
) -> PhantomData:
    """T4–T5 metastasis after esophageal chemoradiotherapy (the seed's fatal case).

    Parameters
    ----------
    grid_mm : float, default 2.0
        Isotropic CT voxel size, mm (1–2.5 realistic; up to 4 for coarse tests).
    esophagus_gap_mm : float, default 0.0
        Gap between esophagus and vertebral body surfaces, mm (0 = abutting).
    prior_dose_gy : float, default 60.0
        Prior course total dose, Gy, delivered as the mean dose of the prior PTV.
    prior_fractions : int, default 30
    dose_grid_mm : float, default 2.0
        Isotropic SBRT dose-grid voxel size, mm (1–6; spine SBRT practice: <= 2).
    dose_margin_mm : three floats, default (20, 20, 15)
        Margin (x, y, z), mm, of the dose-grid box around the PTV; also the
        prior-dose grid.
    n_beams : int, default 17
        Coplanar static SBRT beams sampling the arc (a VMAT arc; 17 over 240° =
        every 15°), 9–72.
    arc_deg : float, default 240
        Span of the posterior arc centred on gantry 180°, deg (90–360; 360 = the
        full circle, equi-spaced from 0°); see :func:`gantry_angles_deg`.
    bixel_mm : float, default 5.0
        Beamlet width at isocentre, mm (square beamlets: pyRadPlan has one
        width for both directions); the prior courses' open fields too.
    prior_covers_oars : bool, default True
        False crops the superior third of the dose grid out of the prior-dose grid,
        so part of the esophagus and cord has no prior dose.
    seed : int, default 0
        Seed of the ±5 HU CT noise.
    use_cache : bool, default True
        Use the dose engine's on-disk matrix cache.

    Returns
    -------
    PhantomData
    """
    p = _common(grid_mm, esophagus_gap_mm, dose_grid_mm, dose_margin_mm, n_beams, arc_deg, bixel_mm, prior_covers_oars,
                seed)
    d = _num("prior_dose_gy", prior_dose_gy, 1.0, 100.0)
    n = _int("prior_fractions", prior_fractions, 1, 60)
    p.update(prior_dose_gy=d, prior_fractions=n)

    def priors(s: _Shapes, a: _Anatomy) -> List[_PriorPlan]:
        # mediastinal esophageal PTV: esophagus + 14 mm joined to the anterior
        # vertebral body (posterior edge ~5 mm anterior of the cord)
        ptv = _capsule(s.esophagus_centre, (0.0, a.vb_y - 0.3 * a.vb_r), 14.0, -a.z_half + 10.0, a.z_half - 10.0)
        # the classic esophageal CRT: AP/PA to 40 Gy (cord in the field), then opposed
        # laterals with the cord blocked to 60 Gy (weights in Gy of a 60 Gy course)
        s_ = d / 60.0
        return [_PriorPlan(_course_name(d, n), d, n, "2024-09-20", ptv, (0.0, 90.0, 180.0, 270.0),
                           (20.0 * s_, 0.0, 20.0 * s_, 0.0), (0.0, 10.0 * s_, 0.0, 10.0 * s_),
                           _cord_block(a), weights_are_shares=True)]

    return _build(
        "t4t5_esophageal", priors, use_cache=use_cache, params=p,
        notes=f"T4-T5 after esophageal CRT {d:g} Gy/{n} fx (AP/PA 40 Gy + off-cord laterals); esophagus gap {p['esophagus_gap_mm']:g} mm",
        **{k: p[k] for k in _BUILD_KEYS},
    )


def build_c7t1_head_neck(
    *,
    grid_mm: float = 2.0,
    esophagus_gap_mm: float = 0.0,
    prior_dose_gy: float = 70.0,
    prior_fractions: int = 35,
    dose_grid_mm: float = DEFAULT_DOSE_GRID_MM,
    dose_margin_mm: Sequence[float] = DOSE_BOX_MARGIN_MM,
    n_beams: int = DEFAULT_N_BEAMS,
    arc_deg: float = DEFAULT_ARC_DEG,
    bixel_mm: float = DEFAULT_BIXEL_MM,
    prior_covers_oars: bool = True,
    seed: int = 0,
    use_cache: bool = True,
) -> PhantomData:
    """C7–T1 metastasis after head-and-neck radiotherapy (default 70 Gy / 35 fx).

    Parameters are those of :func:`build_t4t5_esophageal`.  The prior course is
    opposed laterals plus an anterior field to 42 Gy, then off-cord laterals (cord
    PRV + 3 mm blocked) to the prescription, to a prevertebral PTV joining the
    esophagus and the anterior vertebral body.
    """
    p = _common(grid_mm, esophagus_gap_mm, dose_grid_mm, dose_margin_mm, n_beams, arc_deg, bixel_mm, prior_covers_oars,
                seed)
    d = _num("prior_dose_gy", prior_dose_gy, 1.0, 100.0)
    n = _int("prior_fractions", prior_fractions, 1, 60)
    p.update(prior_dose_gy=d, prior_fractions=n)

    def priors(s: _Shapes, a: _Anatomy) -> List[_PriorPlan]:
        # prevertebral/pharyngo-esophageal PTV kept anterior of the cord (off-cord laterals)
        ptv = _capsule(s.esophagus_centre, (0.0, a.vb_y - 0.5 * a.vb_r), 0.8 * a.vb_r, -a.z_half + 10.0, a.z_half - 10.0)
        # laterals + AP to 42 Gy (cord in the AP field), then off-cord laterals
        # (cord blocked) to 70 Gy (weights in Gy of a 70 Gy course)
        s_ = d / 70.0
        return [_PriorPlan(_course_name(d, n), d, n, "2023-11-02", ptv, (90.0, 270.0, 0.0),
                           (14.0 * s_, 14.0 * s_, 14.0 * s_), (14.0 * s_, 14.0 * s_, 0.0),
                           _cord_block(a), weights_are_shares=True)]

    return _build(
        "c7t1_head_neck", priors, use_cache=use_cache, params=p,
        notes=f"C7-T1 after head-and-neck RT {d:g} Gy/{n} fx (laterals + AP 42 Gy, off-cord laterals)",
        **{k: p[k] for k in _BUILD_KEYS},
    )


def build_c3_cervical(
    *,
    grid_mm: float = 2.0,
    esophagus_gap_mm: float = 2.0,
    prior_dose_gy: float = 50.0,
    prior_fractions: int = 25,
    dose_grid_mm: float = DEFAULT_DOSE_GRID_MM,
    dose_margin_mm: Sequence[float] = DOSE_BOX_MARGIN_MM,
    n_beams: int = DEFAULT_N_BEAMS,
    arc_deg: float = DEFAULT_ARC_DEG,
    bixel_mm: float = DEFAULT_BIXEL_MM,
    prior_covers_oars: bool = True,
    seed: int = 0,
    use_cache: bool = True,
) -> PhantomData:
    """C3 metastasis after 50 Gy / 25 fx opposed laterals to the C2–C4 spine.

    Parameters are those of :func:`build_t4t5_esophageal` (default
    ``esophagus_gap_mm`` = 2 mm: the prevertebral soft tissue).  ``Esophagus`` is
    the pharynx at this level.
    """
    p = _common(grid_mm, esophagus_gap_mm, dose_grid_mm, dose_margin_mm, n_beams, arc_deg, bixel_mm, prior_covers_oars,
                seed)
    d = _num("prior_dose_gy", prior_dose_gy, 1.0, 100.0)
    n = _int("prior_fractions", prior_fractions, 1, 60)
    p.update(prior_dose_gy=d, prior_fractions=n)

    def priors(s: _Shapes, a: _Anatomy) -> List[_PriorPlan]:
        zr = 1.5 * a.pitch
        ptv = _capsule((0.0, a.vb_y - 3.0), (0.0, a.canal_y), a.vb_r + 5.0, -zr, zr)
        # opposed laterals, cord in the field: 50 Gy/25 fx is the era's cord tolerance
        # itself, and a cord block would take the abutting vertebral body below the
        # seed's 50 Gy EQD2 prior (docs/decisions/phantom-prior-cord-sparing.md)
        return [_PriorPlan(_course_name(d, n), d, n, "2024-02-15", ptv, (90.0, 270.0), (1.0, 1.0))]

    return _build(
        "c3_cervical", priors, use_cache=use_cache, params=p,
        notes=f"C3 after {d:g} Gy/{n} fx opposed laterals to C2-C4",
        **{k: p[k] for k in _BUILD_KEYS},
    )


def build_t8_two_courses(
    *,
    grid_mm: float = 2.0,
    esophagus_gap_mm: float = 3.0,
    prior_dose_gy: Sequence[float] = (20.0, 20.0),
    prior_fractions: Sequence[int] = (5, 10),
    dose_grid_mm: float = DEFAULT_DOSE_GRID_MM,
    dose_margin_mm: Sequence[float] = DOSE_BOX_MARGIN_MM,
    n_beams: int = DEFAULT_N_BEAMS,
    arc_deg: float = DEFAULT_ARC_DEG,
    bixel_mm: float = DEFAULT_BIXEL_MM,
    prior_covers_oars: bool = True,
    seed: int = 0,
    use_cache: bool = True,
) -> PhantomData:
    """T8 metastasis after two palliative courses of different fractionation.

    Parameters are those of :func:`build_t4t5_esophageal` except:

    prior_dose_gy : pair of float, default (20.0, 20.0)
        Course 1 (AP/PA to T7–T9) and course 2 (posterior obliques 160°/200° to
        T8) total doses, Gy.  The default history, 5 × 4 Gy then a 10 × 2 Gy
        re-irradiation (both common palliative regimens), leaves the cord PRV near
        111 Gy2 BED: under the 140 Gy2 cumulative cord limit (Sahgal 2012), so
        some cord tolerance remains (about 8.9 Gy in 2 fx).  (30, 20) Gy in
        (10, 5) fx puts it near 152 Gy2: exhausted.
    prior_fractions : pair of int, default (5, 10)
    """
    p = _common(grid_mm, esophagus_gap_mm, dose_grid_mm, dose_margin_mm, n_beams, arc_deg, bixel_mm, prior_covers_oars,
                seed)
    try:
        doses = tuple(prior_dose_gy)
        fxs = tuple(prior_fractions)
    except TypeError:
        raise InputError(
            f"prior_dose_gy and prior_fractions must be pairs for t8_two_courses, got {prior_dose_gy!r}, {prior_fractions!r}"
        ) from None
    if len(doses) != 2 or len(fxs) != 2:
        raise InputError(f"prior_dose_gy and prior_fractions must have 2 entries, got {doses!r}, {fxs!r}")
    doses = tuple(_num(f"prior_dose_gy[{i}]", v, 1.0, 100.0) for i, v in enumerate(doses))
    fxs = tuple(_int(f"prior_fractions[{i}]", v, 1, 60) for i, v in enumerate(fxs))
    p.update(prior_dose_gy=doses, prior_fractions=fxs)

    def priors(s: _Shapes, a: _Anatomy) -> List[_PriorPlan]:
        z1 = 1.5 * a.pitch
        ptv1 = _capsule((0.0, a.vb_y - 3.0), (0.0, a.canal_y + 4.0), a.vb_r + 6.0, -z1, z1)
        z2 = 0.5 * a.level_h + 8.0
        ptv2 = _capsule((0.0, a.vb_y), (0.0, a.canal_y), a.vb_r + 4.0, -z2, z2)
        return [
            _PriorPlan(_course_name(doses[0], fxs[0], "Prior EBRT 1"), doses[0], fxs[0], "2023-05-10", ptv1, (0.0, 180.0), (1.0, 1.0)),
            _PriorPlan(_course_name(doses[1], fxs[1], "Prior EBRT 2"), doses[1], fxs[1], "2024-08-22", ptv2, (160.0, 200.0), (1.0, 1.0)),
        ]

    return _build(
        "t8_two_courses", priors, use_cache=use_cache, params=p,
        notes=f"T8 after {doses[0]:g} Gy/{fxs[0]} fx (AP/PA T7-T9) and {doses[1]:g} Gy/{fxs[1]} fx (posterior obliques T8)",
        **{k: p[k] for k in _BUILD_KEYS},
    )


#: name → builder (keyword-only parameters, see each builder).
PHANTOM_BUILDERS: Dict[str, Callable[..., PhantomData]] = {
    "t4t5_esophageal": build_t4t5_esophageal,
    "c7t1_head_neck": build_c7t1_head_neck,
    "c3_cervical": build_c3_cervical,
    "t8_two_courses": build_t8_two_courses,
}


def build_phantom(name: str, **kwargs: Any) -> PhantomData:
    """Build phantom ``name`` (a key of :data:`PHANTOM_BUILDERS`) with ``kwargs``."""
    try:
        builder = PHANTOM_BUILDERS[name]
    except KeyError:
        raise InputError(f"unknown phantom name {name!r}; expected one of {sorted(PHANTOM_BUILDERS)}") from None
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise InputError(f"bad parameters for phantom {name!r}: {exc}") from None
