"""Analytic solids for the phantoms: a vectorised membership test and a bounding box.

Coordinates are DICOM patient coordinates in mm (+x patient left, +y posterior, +z
superior).  Solids combine with ``|`` (union), ``&`` (intersection) and ``-``
(difference); the primitives are elliptic and circular cylinders along z, boxes,
spheres and axial stadiums (:func:`capsule`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import numpy as np

__all__ = ["INF", "Shape", "ecyl", "cyl", "box", "sphere", "capsule", "union"]

INF = math.inf


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


def ecyl(cx: float, cy: float, ax: float, ay: float, z0: float = -INF, z1: float = INF) -> Shape:
    """Elliptic cylinder along z, semi-axes ``ax``, ``ay`` (mm), z in [z0, z1]."""

    def fn(X, Y, Z):
        return ((((X - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2) <= 1.0) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (cx - ax, cx + ax, cy - ay, cy + ay, z0, z1))


def cyl(cx: float, cy: float, r: float, z0: float = -INF, z1: float = INF) -> Shape:
    return ecyl(cx, cy, r, r, z0, z1)


def box(x0: float, x1: float, y0: float, y1: float, z0: float = -INF, z1: float = INF) -> Shape:
    def fn(X, Y, Z):
        return (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (x0, x1, y0, y1, z0, z1))


def sphere(cx: float, cy: float, cz: float, r: float) -> Shape:
    def fn(X, Y, Z):
        return ((X - cx) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2) <= r * r

    return Shape(fn, (cx - r, cx + r, cy - r, cy + r, cz - r, cz + r))


def capsule(p: Tuple[float, float], q: Tuple[float, float], r: float, z0: float, z1: float) -> Shape:
    """Axial 'stadium': points within ``r`` of segment p–q, extruded over [z0, z1]."""
    px, py = p
    dx, dy = q[0] - p[0], q[1] - p[1]
    L2 = dx * dx + dy * dy

    def fn(X, Y, Z):
        t = np.clip(((X - px) * dx + (Y - py) * dy) / L2, 0.0, 1.0) if L2 > 0 else 0.0
        return (((X - px - t * dx) ** 2 + (Y - py - t * dy) ** 2) <= r * r) & (Z >= z0) & (Z <= z1)

    return Shape(fn, (min(p[0], q[0]) - r, max(p[0], q[0]) + r, min(p[1], q[1]) - r, max(p[1], q[1]) + r, z0, z1))


def union(shapes: Sequence[Shape]) -> Shape:
    out = shapes[0]
    for s in shapes[1:]:
        out = out | s
    return out

