"""Analytic DICOM-RT cases written into a tmp directory (shapes, linear dose), and their closed forms.

Shapes are solids of revolution about an axis parallel to z through (cx, cy):
sphere (radius R), cylinder (radius R, height H), cone (base radius R at the bottom,
apex at the top, height H).  Contour planes sit at the centres of slabs of
thickness ``plane_mm`` tiling the shape's z extent, so with the ½-spacing end-cap
rule the cylinder's contour stack is the cylinder exactly and the sphere's and
cone's differ from the solid by the midpoint rule only.

Dose: ``D = base + g · (u − c_u)`` Gy for u the x, y or z coordinate (mm).

Truth (``analytic_metrics``): volume and the cumulative DVH of the *solid* by
1-D quadrature over z of circle/segment areas (50 000 midpoints: exact to ~1e-8
of the volume), so the errors reported include the contour-stack approximation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from mock_tps import _dicom_write as w

PATIENT = {"name": "Analytic^Phantom", "id": "ANALYTIC-1"}
N_POINTS = 256


@dataclass(frozen=True)
class Shape:
    kind: str            # 'sphere', 'cylinder', 'cone'
    centre_mm: Tuple[float, float, float]   # sphere centre; cylinder/cone: (cx, cy, z of mid-height)
    radius_mm: float
    height_mm: float = 0.0

    @property
    def z_range(self) -> Tuple[float, float]:
        cz = self.centre_mm[2]
        h = 2 * self.radius_mm if self.kind == "sphere" else self.height_mm
        return cz - h / 2, cz + h / 2

    def radius_at(self, z: np.ndarray) -> np.ndarray:
        z0, z1 = self.z_range
        z = np.asarray(z, dtype=float)
        inside = (z >= z0) & (z <= z1)
        if self.kind == "sphere":
            r = np.sqrt(np.clip(self.radius_mm ** 2 - (z - self.centre_mm[2]) ** 2, 0, None))
        elif self.kind == "cylinder":
            r = np.full(z.shape, self.radius_mm)
        else:
            r = self.radius_mm * (z1 - z) / self.height_mm
        return np.where(inside, r, 0.0)

    def planes(self, plane_mm: float):
        z0, z1 = self.z_range
        n = int(round((z1 - z0) / plane_mm))
        zs = z0 + (np.arange(n) + 0.5) * plane_mm
        t = np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)
        # polygon with the circle's area (radius scaled by the polygon/circle area ratio)
        scale = np.sqrt(2 * np.pi / (N_POINTS * np.sin(2 * np.pi / N_POINTS)))
        out = []
        for z in zs:
            r = float(self.radius_at(np.array([z]))[0]) * scale
            if r > 1e-6:
                out.append((float(z), [np.column_stack([self.centre_mm[0] + r * np.cos(t),
                                                        self.centre_mm[1] + r * np.sin(t)])]))
        return out


def _segment_area(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Area of the part of a circle of radius r beyond a chord at signed distance t from the centre."""
    tt = np.clip(t / np.where(r > 0, r, 1.0), -1.0, 1.0)
    return np.where(r > 0, r * r * (np.arccos(tt) - tt * np.sqrt(1 - tt * tt)), 0.0)


def analytic_volume_above(shape: Shape, axis: int, offset_mm: float, n: int = 50000) -> float:
    """Volume (mm³) of the solid where the coordinate ``axis`` exceeds centre + offset_mm."""
    z0, z1 = shape.z_range
    z = z0 + (np.arange(n) + 0.5) * (z1 - z0) / n
    r = shape.radius_at(z)
    dz = (z1 - z0) / n
    if axis == 2:
        return float(np.sum(np.where(z > shape.centre_mm[2] + offset_mm, np.pi * r * r, 0.0)) * dz)
    return float(np.sum(_segment_area(r, np.full(z.shape, offset_mm))) * dz)


def analytic_metrics(shape: Shape, axis: int, base_gy: float, gradient_gy_per_mm: float,
                     d_percent=(95.0, 5.0), d_cc=(0.03,)) -> Dict[str, float]:
    """Closed-form (quadrature) volume, mean, Dmax, D_x% and D_Vcc of the solid for the linear dose."""
    from scipy.optimize import brentq

    vol = analytic_volume_above(shape, axis, -1e9)
    z0, z1 = shape.z_range
    lo = (z0 - shape.centre_mm[2]) if axis == 2 else -shape.radius_mm
    hi = (z1 - shape.centre_mm[2]) if axis == 2 else shape.radius_mm
    n = 50000
    if axis == 2:
        z = z0 + (np.arange(n) + 0.5) * (z1 - z0) / n
        a = np.pi * shape.radius_at(z) ** 2
        mean_off = float(np.sum(a * (z - shape.centre_mm[2])) / np.sum(a))
    else:
        mean_off = 0.0

    def offset_for(v_mm3: float) -> float:
        return brentq(lambda t: analytic_volume_above(shape, axis, t) - v_mm3, lo, hi, xtol=1e-7)

    out = {"volume_cc": vol / 1000.0, "mean_gy": base_gy + gradient_gy_per_mm * mean_off,
           "max_gy": base_gy + gradient_gy_per_mm * hi, "min_gy": base_gy + gradient_gy_per_mm * lo,
           "range_gy": gradient_gy_per_mm * (hi - lo)}
    for p in d_percent:
        out[f"d{p:g}%"] = base_gy + gradient_gy_per_mm * offset_for(p / 100.0 * vol)
    for v in d_cc:
        out[f"d{v:g}cc"] = base_gy + gradient_gy_per_mm * offset_for(v * 1000.0)
    return out


def linear_dose(first_centre_mm, spacing_mm, shape_zyx, axis: int, centre_mm, base_gy: float,
                gradient_gy_per_mm: float) -> np.ndarray:
    nz, ny, nx = shape_zyx
    coords = [first_centre_mm[k] + spacing_mm[k] * np.arange(n) for k, n in ((0, nx), (1, ny), (2, nz))]
    u = coords[axis] - centre_mm[axis]
    d = base_gy + gradient_gy_per_mm * u
    shape = [1, 1, 1]
    shape[2 - axis] = -1
    return np.broadcast_to(d.reshape(shape), (nz, ny, nx)).copy()


def write_case(tmp: Path, shape: Shape, *, grid_mm: float, axis: int, base_gy: float = 30.0,
               gradient_gy_per_mm: float = 1.0, frame_uid: str = "1.2.3.4.5.6", roi_name: str = "Shape",
               margin_mm: float = 6.0, **dose_kw) -> Tuple[Path, Path]:
    """Write RTSTRUCT + RTDOSE of an analytic case; returns (rtstruct path, rtdose path).

    The dose grid (spacing ``grid_mm``) covers the shape plus ``margin_mm``; contour
    planes every ``grid_mm``.
    """
    tmp = Path(tmp)
    cx, cy, cz = shape.centre_mm
    half = shape.radius_mm + margin_mm
    z0, z1 = shape.z_range
    n_xy = int(np.ceil(2 * half / grid_mm)) + 1
    first = (cx - (n_xy - 1) / 2 * grid_mm, cy - (n_xy - 1) / 2 * grid_mm, z0 - margin_mm)
    nz = int(np.ceil((z1 - z0 + 2 * margin_mm) / grid_mm)) + 1
    dose = linear_dose(first, (grid_mm,) * 3, (nz, n_xy, n_xy), axis, shape.centre_mm, base_gy, gradient_gy_per_mm)
    study = w.new_uid()
    rs = w.write_rtstruct(tmp / "RS.dcm", [(roi_name, "Organ", shape.planes(grid_mm))], frame_uid=frame_uid,
                          study_uid=study, patient=PATIENT)
    rd, _ = w.write_rtdose(tmp / "RD.dcm", dose, first, (grid_mm,) * 3, frame_uid=frame_uid, study_uid=study,
                           patient=PATIENT, **dose_kw)
    return rs, rd


def edit_dataset(path, **attrs):
    """Rewrite a DICOM file with attributes set (or deleted when None); return its path."""
    import pydicom
    ds = pydicom.dcmread(str(path))
    for k, v in attrs.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    ds.save_as(str(path))
    return path


def edited_copy(source, path, **attrs):
    """Copy a DICOM file to ``path`` with attributes set (or deleted when None), as
    :func:`edit_dataset`; return ``path`` (e.g. a prior course made from a plan dose)."""
    from pathlib import Path
    Path(path).write_bytes(Path(source).read_bytes())
    return edit_dataset(path, **attrs)
