"""The spinal regions of the phantoms: dimensions and organs as analytic solids.

DICOM patient coordinates of a head-first-supine patient, mm: +x = patient left,
+y = posterior, +z = superior.  The treated segment is centred at z = 0, the body
ellipse at x = y = 0.  Every organ is an analytic solid (elliptic/circular cylinders,
boxes, a sphere; the vertebral body is a circular cylinder with a flat posterior wall
against the canal); SpinalCord_PRV = cord + 1.5 mm is analytic too.

Anatomy (published dimensions): the cord is a stadium of 9 × 7 mm (thoracic;
C7–T1 10 × 7.5, C3 10 × 8 mm) centred in the canal, the PRV every point within
1.5 mm of it (again a stadium, exactly).  The GTV is a sphere in the vertebral
body; on T4–T5 and T8 it has an epidural component (Bilsky 1b): it breaches the
posterior wall and fills the ventral canal to 1.5 mm in front of the cord, over
80 % of the level's height.  The CTV (consensus contouring) is the treated
vertebral bodies – with the disc between two treated levels – their pedicles and
the GTV.  The lungs reach back into the paravertebral gutters, 3 mm from the
vertebral body and the pedicles (the costovertebral region), 1 mm outside the PTV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from mock_tps._phantom_shapes import INF, Shape, box, capsule, cyl, ecyl, sphere, union

__all__ = ["PRV_MARGIN_MM", "SpineRegion", "REGIONS", "ROI_NAMES_BY_PHANTOM", "Shapes"]

#: SpinalCord_PRV = SpinalCord + this margin, mm.
PRV_MARGIN_MM = 1.5


@dataclass(frozen=True)
class SpineRegion:
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
        return cyl(0.0, self.vb_y, self.vb_r, z0, z1) & box(-INF, INF, -INF, self.vb_post_y, z0, z1)

    def esophagus_centre(self, gap_mm: float) -> Tuple[float, float]:
        th = math.radians(self.esoph_angle_deg)
        d = self.vb_r + gap_mm + self.esoph_r
        return (d * math.sin(th), self.vb_y - d * math.cos(th))


REGIONS: Dict[str, SpineRegion] = {
    "t4t5_esophageal": SpineRegion(
        level="T4-T5", body_ax=160.0, body_ay=110.0, z_half=60.0, vb_y=35.0, vb_r=15.0,
        level_h=20.0, disc_h=5.0, n_treated=2, canal_r=8.0, cord_ax=4.5, cord_ay=3.5, pedicle_w=7.0,
        lamina_t=5.0, spinous_len=27.0, transverse_len=20.0, esoph_r=8.5, esoph_angle_deg=25.0,
        trachea_r=9.0, trachea_offset=(-10.0, 1.0), lungs=(85.0, 10.0, 55.0, 85.0, INF),
        aorta=(30.0, 30.0, 12.0), epidural=("1b", -3.0, 6.0, 1.5),
    ),
    "c7t1_head_neck": SpineRegion(
        level="C7-T1", body_ax=90.0, body_ay=70.0, z_half=50.0, vb_y=12.0, vb_r=11.0,
        level_h=16.0, disc_h=4.0, n_treated=2, canal_r=7.5, cord_ax=5.0, cord_ay=3.75, pedicle_w=5.0,
        lamina_t=4.0, spinous_len=18.0, transverse_len=14.0, esoph_r=7.5, esoph_angle_deg=10.0,
        trachea_r=8.0, trachea_offset=(-2.0, 1.0), lungs=(52.0, 18.0, 24.0, 35.0, 0.0),
        aorta=None,
    ),
    "c3_cervical": SpineRegion(
        level="C3", body_ax=58.0, body_ay=55.0, z_half=45.0, vb_y=8.0, vb_r=8.0,
        level_h=13.0, disc_h=4.0, n_treated=1, canal_r=7.0, cord_ax=5.0, cord_ay=4.0, pedicle_w=4.0,
        lamina_t=3.5, spinous_len=15.0, transverse_len=10.0, esoph_r=7.0, esoph_angle_deg=0.0,
        trachea_r=8.0, trachea_offset=(0.0, 1.0), lungs=None, aorta=None,
    ),
    "t8_two_courses": SpineRegion(
        level="T8", body_ax=150.0, body_ay=105.0, z_half=60.0, vb_y=35.0, vb_r=16.0,
        level_h=22.0, disc_h=5.0, n_treated=1, canal_r=8.0, cord_ax=4.5, cord_ay=3.5, pedicle_w=7.0,
        lamina_t=5.0, spinous_len=27.0, transverse_len=20.0, esoph_r=8.5, esoph_angle_deg=10.0,
        trachea_r=None, trachea_offset=(0.0, 0.0), lungs=(80.0, 10.0, 52.0, 80.0, INF),
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
    for k, a in REGIONS.items()
}


class Shapes:
    """All analytic shapes of one phantom (pure geometry, no grid)."""

    def __init__(self, a: SpineRegion, gap_mm: float):
        self.a = a
        zb = a.z_half + 50.0  # organs run through the whole CT
        self.body = ecyl(0.0, 0.0, a.body_ax, a.body_ay, -zb, zb)
        # --- bone: vertebral bodies + posterior elements, level by level
        levels = []
        treated = []
        for zc in a.level_centres():
            z0, z1 = zc - a.level_h / 2.0, zc + a.level_h / 2.0
            lvl = self._vertebra(zc, z0, z1)
            levels.append(lvl)
            if np.any(np.isclose(zc, a.treated_centres())):
                treated.append(lvl)
        self.bone = union(levels)
        self.vertebra = union(treated)
        self.discs = a.vb_shape(-zb, zb) - self.bone
        self.canal = cyl(0.0, a.canal_y, a.canal_r, -zb, zb)
        # cord: a stadium (points within cord_ay of a transverse segment), so that the
        # PRV (every point within 1.5 mm of the cord) is again a stadium, exactly
        seg = ((-(a.cord_ax - a.cord_ay), a.canal_y), (a.cord_ax - a.cord_ay, a.canal_y))
        self.cord = capsule(seg[0], seg[1], a.cord_ay, -zb, zb)
        self.prv = capsule(seg[0], seg[1], a.cord_ay + PRV_MARGIN_MM, -zb, zb)
        self.prv_segment, self.prv_radius_mm = seg, a.cord_ay + PRV_MARGIN_MM   # the PRV stadium's axis, radius
        ex, ey = a.esophagus_centre(gap_mm)
        self.esophagus_centre = (ex, ey)
        self.esophagus = cyl(ex, ey, a.esoph_r, -zb, zb)
        self.trachea = self.trachea_lumen = None
        if a.trachea_r is not None:
            tx = ex + a.trachea_offset[0]
            ty = ey - (a.esoph_r + a.trachea_r + a.trachea_offset[1])
            self.trachea = cyl(tx, ty, a.trachea_r, -zb, zb)
            self.trachea_lumen = cyl(tx, ty, a.trachea_r - 2.5, -zb, zb)
        self.aorta = None
        if a.aorta is not None:
            self.aorta = cyl(a.aorta[0], a.aorta[1], a.aorta[2], -zb, zb)
        self.lungs = None
        if a.lungs is not None:
            cx, cy, rx, ry, ztop = a.lungs
            ztop = min(ztop, zb)
            lungs = ecyl(-cx, cy, rx, ry, -zb, ztop) | ecyl(cx, cy, rx, ry, -zb, ztop)
            # the paravertebral gutters: the lungs reach back beside the vertebral body to
            # the costovertebral region (3 mm from the body, 3 mm from the pedicles)
            gx, gy, grx, gry = a.vb_r + 16.0, a.vb_y + 6.0, 14.0, 16.0
            lungs = lungs | ecyl(-gx, gy, grx, gry, -zb, ztop) | ecyl(gx, gy, grx, gry, -zb, ztop)
            lungs = lungs & ecyl(0.0, 0.0, a.body_ax - 12.0, a.body_ay - 12.0, -zb, zb)
            # keep the mediastinal organs (+3 mm) and the bone out of the lungs
            for s in (self.esophagus_grown(gap_mm, 3.0), self._grow_cyl(self.aorta, 3.0), self._grow_cyl(self.trachea, 3.0)):
                if s is not None:
                    lungs = lungs - s
            xp = a.canal_r + a.pedicle_w + 3.0
            lungs = (lungs - cyl(0.0, a.vb_y, a.vb_r + 3.0, -zb, zb) - self.bone
                     - box(-xp, xp, a.vb_post_y - 8.0, INF, -zb, zb))
            self.lungs = lungs
        # --- targets: GTV in the (first) treated vertebral body, toward the esophagus
        zt = a.treated_centres()
        r_g = 0.55 * a.vb_r
        ux, uy = ex - 0.0, ey - a.vb_y
        un = math.hypot(ux, uy) or 1.0
        self.gtv = sphere(0.3 * a.vb_r * ux / un, a.vb_y + 0.3 * a.vb_r * uy / un, float(zt[0]), r_g)
        self.epidural = None
        if a.epidural is not None:
            self.epidural = self._epidural(float(zt[0]))
            self.gtv = self.gtv | self.epidural
        # CTV (consensus contouring): the treated vertebral bodies, with the disc between
        # two treated levels, their pedicles, and the GTV (its epidural component)
        ctv_parts = [a.vb_shape(float(zt[0]) - a.level_h / 2.0, float(zt[-1]) + a.level_h / 2.0), self.gtv]
        for zc in zt:
            ctv_parts.append(self._pedicles(zc - a.level_h / 2.0, zc + a.level_h / 2.0))
        self.ctv = union(ctv_parts)

    # helpers -----------------------------------------------------------------
    def esophagus_grown(self, gap_mm: float, by_mm: float) -> Shape:
        ex, ey = self.a.esophagus_centre(gap_mm)
        return cyl(ex, ey, self.a.esoph_r + by_mm)

    @staticmethod
    def _grow_cyl(s: Optional[Shape], by_mm: float) -> Optional[Shape]:
        if s is None:
            return None
        x0, x1, y0, y1, z0, z1 = s.bbox
        return cyl((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + by_mm, z0, z1)

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
        canal = cyl(0.0, a.canal_y, a.canal_r, z0, z1)
        ventral = canal & box(x0, x1, a.vb_post_y - 1.0, y_back, z0, z1)
        breach = box(x0, x1, a.vb_y, a.vb_post_y, z0, z1) & a.vb_shape(z0, z1)
        return ventral | breach

    def _pedicles(self, z0: float, z1: float) -> Shape:
        a = self.a
        y0 = a.vb_post_y - 5.0
        y1 = a.canal_y + 2.0
        xin, xout = a.canal_r, a.canal_r + a.pedicle_w
        return box(-xout, -xin, y0, y1, z0, z1) | box(xin, xout, y0, y1, z0, z1)

    def _vertebra(self, zc: float, z0: float, z1: float) -> Shape:
        a = self.a
        body = a.vb_shape(z0, z1)
        ring_outer = cyl(0.0, a.canal_y, a.canal_r + a.lamina_t, z0, z1)
        lamina = (ring_outer - cyl(0.0, a.canal_y, a.canal_r, z0, z1)) & box(-INF, INF, a.canal_y, INF, z0, z1)
        y_sp0 = a.canal_y + a.canal_r + a.lamina_t - 1.0
        spinous = box(-3.0, 3.0, y_sp0, y_sp0 + a.spinous_len, z0, z1)
        xo = a.canal_r + a.pedicle_w
        transverse = box(-(xo + a.transverse_len), -xo + 1.0, a.canal_y - 4.0, a.canal_y + 4.0, z0, z1) | box(
            xo - 1.0, xo + a.transverse_len, a.canal_y - 4.0, a.canal_y + 4.0, z0, z1
        )
        return body | self._pedicles(z0, z1) | lamina | spinous | transverse

