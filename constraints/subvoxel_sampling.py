"""Sub-voxels of a dose grid for the DVH of ``reirrad dvh``: refinement, trilinear dose, spread.

Rules 1–3 of :mod:`constraints.dvh_subvoxel` (which turns the elements made here into a
continuous DVH):

1. :func:`subvoxel_factors` — integer refinement factors per axis of the box of dose voxels an
   ROI touches: sub-voxels ≤ ``target_mm`` (0.5 mm), coarsened while the box would hold more
   than ``max_subvoxels``.
2. :func:`subvoxel_elements` — a dose voxel wholly inside the ROI is one element (centre dose,
   voxel size); each covered sub-voxel of a surface voxel is one element, with the trilinear
   dose between voxel centres at its centre (clamped to the outermost centres).
3. The spread half-width of an element, ``h = ½ √Σ_a (g_a Δ_a)²`` with ``g`` the
   central-difference gradient of the dose grid (one-sided at its edges; at the node for a whole
   voxel, trilinear for a sub-voxel) and ``Δ`` the element's size.

numpy only (CPython 3.8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from ._validate import positive_number

__all__ = ["DoseField", "subvoxel_factors", "subvoxel_elements", "DEFAULT_TARGET_MM", "DEFAULT_MAX_SUBVOXELS",
           "COVERAGE_OF_BYTE"]

#: Sub-voxel size aimed at (mm): 0.5 mm keeps the near-max errors of the analytic shapes in a
#: 1 Gy/mm gradient ≤ 0.3 % of the dose range (1 mm: up to 1.8 %).
DEFAULT_TARGET_MM = 0.5
#: Sub-voxels per ROI box beyond which the refinement is coarsened (memory and time).
DEFAULT_MAX_SUBVOXELS = 250_000
#: Coverage of a byte k of ``GetRoiGeometryAsVoxels`` (0-255): k / 255.
COVERAGE_OF_BYTE = np.arange(256, dtype=np.float64) / 255.0


def subvoxel_factors(box_shape: Sequence[int], spacing_mm: Sequence[float], *,
                     target_mm: float = DEFAULT_TARGET_MM,
                     max_subvoxels: int = DEFAULT_MAX_SUBVOXELS) -> Tuple[int, int, int]:
    """Refinement factors (fz, fy, fx) of a box of dose voxels (rule 1 of the module doc).

    Parameters
    ----------
    box_shape : (nz, ny, nx)
        Dose voxels in the box.
    spacing_mm : (dx, dy, dz), mm
        Dose grid spacing.
    target_mm : float, mm
        Largest sub-voxel size wanted.
    max_subvoxels : int
        Sub-voxel budget of the box; the target grows by 2^(1/3) steps until the box fits
        (factors never go below 1).

    Returns
    -------
    (fz, fy, fx) : tuple of int

    Raises
    ------
    constraints.errors.InputError
        ``target_mm`` not a finite number > 0.

    Examples
    --------
    >>> subvoxel_factors((10, 10, 10), (2.5, 2.5, 3.0), target_mm=0.5)
    (6, 5, 5)
    >>> subvoxel_factors((100, 100, 100), (2.5, 2.5, 3.0), target_mm=0.5, max_subvoxels=10**6)
    (1, 1, 1)
    """
    n = float(np.prod([float(v) for v in box_shape]))
    t = positive_number(target_mm, "target_mm", "mm")
    dx, dy, dz = (float(s) for s in spacing_mm)
    while True:
        f = tuple(max(1, math.ceil(s / t - 1e-9)) for s in (dz, dy, dx))
        if n * f[0] * f[1] * f[2] <= max_subvoxels or f == (1, 1, 1):
            return f
        t *= 2.0 ** (1.0 / 3.0)


def _half_width(grads: Sequence[np.ndarray], size_zyx: Sequence[float]) -> np.ndarray:
    """``h = ½ √Σ (g_a Δ_a)²`` (rule 3 of the module doc)."""
    var = sum((g * np.float32(s)) ** 2 for g, s in zip(grads, size_zyx))
    return 0.5 * np.sqrt(var)


def _trilinear(fields: Sequence[np.ndarray], u: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Trilinear interpolation of each of ``fields`` (nz, ny, nx) at node coordinates u = (uz, uy, ux), clamped."""
    shape = fields[0].shape
    base = 0
    step, frac = [], []
    for a in range(3):
        n = shape[a]
        ua = np.clip(u[a], 0.0, n - 1.0)
        i0 = np.minimum(np.floor(ua).astype(np.intp), max(n - 2, 0))
        stride = int(np.prod(shape[a + 1:]))
        base = base + i0 * stride
        step.append(stride if n > 1 else 0)
        frac.append((ua - i0).astype(np.float32))
    flat = [np.ascontiguousarray(f).ravel() for f in fields]
    out = [np.zeros(base.shape, np.float32) for _ in fields]
    for cz in (0, 1):
        wz = frac[0] if cz else 1.0 - frac[0]
        for cy in (0, 1):
            wzy = wz * (frac[1] if cy else 1.0 - frac[1])
            for cx in (0, 1):
                wgt = wzy * (frac[2] if cx else 1.0 - frac[2])
                idx = base + (cz * step[0] + cy * step[1] + cx * step[2])
                for o, f in zip(out, flat):
                    o += wgt * f.take(idx)
    return out


@dataclass(frozen=True, eq=False)
class DoseField:
    """A dose grid prepared for sampling at sub-voxel centres.

    The dose is stored as float32, padded by one node on every side by linear
    extrapolation (``2·D[0] − D[1]``), so that the central difference at an edge node
    is the one-sided difference.  Make one per dose grid with :meth:`from_grid`.

    Attributes
    ----------
    padded_gy : ndarray, shape (nz + 2, ny + 2, nx + 2), float32, Gy
    spacing_mm : (dx, dy, dz), mm
    shape : (nz, ny, nx)
        Shape of the dose grid (unpadded).
    max_gy : float, Gy
        Highest dose of the grid (no trilinear value exceeds it).
    """

    padded_gy: np.ndarray
    spacing_mm: Tuple[float, float, float]
    shape: Tuple[int, int, int]
    max_gy: float

    @classmethod
    def from_grid(cls, dose_gy: np.ndarray, spacing_mm: Sequence[float]) -> "DoseField":
        """Prepare ``dose_gy`` (nz, ny, nx), Gy, finite and ≥ 0 (as read and checked by the
        DICOM import), on a grid of ``spacing_mm`` (dx, dy, dz), mm."""
        d = np.asarray(dose_gy, dtype=np.float32)
        p = np.pad(d, 1, mode="edge")
        for a in range(3):
            if d.shape[a] < 2:
                continue
            lo = [slice(None)] * 3
            lo1, lo2 = list(lo), list(lo)
            lo[a], lo1[a], lo2[a] = 0, 1, 2
            p[tuple(lo)] = 2 * p[tuple(lo1)] - p[tuple(lo2)]
            lo[a], lo1[a], lo2[a] = -1, -2, -3
            p[tuple(lo)] = 2 * p[tuple(lo1)] - p[tuple(lo2)]
        p.setflags(write=False)
        sp = tuple(float(v) for v in spacing_mm)
        return cls(p, sp, tuple(int(n) for n in d.shape), float(d.max()))

    def _central_differences(self, flat: np.ndarray) -> List[np.ndarray]:
        """``D[i+1] − D[i−1]`` along z, y, x at padded flat indices ``flat`` (Gy)."""
        pz, py, px = self.padded_gy.shape
        p = self.padded_gy.ravel()
        return [p.take(flat + s) - p.take(flat - s) for s in (py * px, px, 1)]


def _covered_cc(coverage: np.ndarray, element_cc: float) -> np.ndarray:
    """Covered volume (cm³, float32) of elements: coverage × float32(element_cc) in the coverage's
    precision, rounded to float32; bytes k (coverage k / 255, float64) through a table of the 256
    products."""
    if coverage.dtype == np.uint8:
        return (COVERAGE_OF_BYTE * np.float32(element_cc)).astype(np.float32).take(coverage)
    return (coverage * np.float32(element_cc)).astype(np.float32, copy=False)


def subvoxel_elements(coverage: np.ndarray, dose: DoseField, box_lo: Sequence[int],
                      factors: Sequence[int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The DVH elements of an ROI: dose, spread half-width and covered volume (rules 1–3 of the module doc).

    A dose voxel whose sub-voxels are all fully covered is one element (its centre dose,
    spread over the voxel's width: for a dose linear inside the voxel this is exactly
    the union of its sub-voxels); the covered sub-voxels of the other voxels are one
    element each, with the trilinear dose and gradient at their centres.

    Parameters
    ----------
    coverage : ndarray, shape (nz·fz, ny·fy, nx·fx), in [0, 1]; or uint8, 0-255
        Coverage of the sub-voxels of the box of dose voxels starting at ``box_lo``; as bytes
        (``GetRoiGeometryAsVoxels``), k means k / 255 (:data:`COVERAGE_OF_BYTE`): the same
        elements as the floats, converting only the covered ones (a body's box holds millions).
    dose : DoseField
        The dose grid.
    box_lo : (k0, j0, i0)
        First dose voxel of the box (inside the grid).
    factors : (fz, fy, fx)

    Returns
    -------
    dose_gy, half_width_gy : ndarray, shape (m,), float32, Gy
    volume_cc : ndarray, shape (m,), float32, cm³

    Notes
    -----
    Gradient at a node: ``g_a = (D[i+1] − D[i−1]) / (2 s_a)``, so a whole voxel's
    half-width is ``½ √Σ (g_a s_a)² = ¼ √Σ (D[i+1] − D[i−1])²``.
    """
    fz, fy, fx = (int(f) for f in factors)
    nzf, nyf, nxf = coverage.shape
    nz, ny, nx = nzf // fz, nyf // fy, nxf // fx
    gz, gy, gx = dose.shape
    pyx, px = (gy + 2) * (gx + 2), gx + 2
    s_zyx = (dose.spacing_mm[2], dose.spacing_mm[1], dose.spacing_mm[0])
    voxel_cc = s_zyx[0] * s_zyx[1] * s_zyx[2] / 1000.0
    k0, j0, i0 = (int(v) for v in box_lo)
    refined = (fz, fy, fx) != (1, 1, 1)
    as_bytes = coverage.dtype == np.uint8
    if refined:
        blocks = coverage.reshape(nz, fz, ny, fy, nx, fx)
        full = blocks.min(axis=(1, 3, 5)) >= (255 if as_bytes else 1.0)
        nodes = np.flatnonzero(full)                      # np.nonzero of the (nz·ny, nx) view, faster
        w_nodes = np.full(nodes.size, voxel_cc, dtype=np.float32)
    else:
        nodes = np.flatnonzero(coverage != 0)             # of a bool array: numpy's fast path
        w_nodes = _covered_cc(coverage.ravel().take(nodes), voxel_cc)
    # padded-grid index of each node less one z plane (that of its z - 1 neighbour): the node's
    # index in the box plus the shift of its row (k, j)
    n_rows = nz * ny
    shift = ((np.arange(nz)[:, None] + k0) * pyx + (np.arange(ny)[None, :] + (j0 + 1)) * px + (i0 + 1)).ravel()
    shift -= np.arange(n_rows) * nx
    below = shift.take(nodes // nx)
    below += nodes
    del nodes
    p = dose.padded_gy.ravel()
    d_nodes = p[pyx:].take(below)
    dz = p[2 * pyx:].take(below)                              # D[i+1] - D[i-1] along z, y, x
    dz -= p.take(below)
    dy = p[pyx + px:].take(below)
    dy -= p[pyx - px:].take(below)
    dx = p[pyx + 1:].take(below)
    dx -= p[pyx - 1:].take(below)
    del below
    h_nodes = np.multiply(dz, dz, out=dz)                     # sqrt(dz² + dy² + dx²) / 4, in that order
    h_nodes += np.multiply(dy, dy, out=dy)
    h_nodes += np.multiply(dx, dx, out=dx)
    del dy, dx
    np.sqrt(h_nodes, out=h_nodes)
    h_nodes *= np.float32(0.25)
    if not refined:
        return d_nodes, h_nodes, w_nodes
    # covered sub-voxels of the partly covered voxels
    sel = np.flatnonzero((blocks != 0) & ~full[:, None, :, None, :, None])
    w_sub = _covered_cc(coverage.ravel().take(sel), voxel_cc / (fz * fy * fx))
    bz, sz, by, sy, bx, sx = np.unravel_index(sel, blocks.shape)
    # the grid nodes the sub-voxel centres fall between: the box plus one node each side (in the grid)
    lo = [max(k0 - 1, 0), max(j0 - 1, 0), max(i0 - 1, 0)]
    hi = [min(k0 + nz + 1, gz), min(j0 + ny + 1, gy), min(i0 + nx + 1, gx)]
    shape = tuple(b - a for a, b in zip(lo, hi))
    ax = [np.arange(a, b) + 1 for a, b in zip(lo, hi)]
    nflat = (ax[0][:, None, None] * pyx + ax[1][None, :, None] * px + ax[2][None, None, :]).ravel()
    diffs = dose._central_differences(nflat)
    fields = [p.take(nflat).reshape(shape)] + [(dd * np.float32(0.5 / s)).reshape(shape)
                                               for dd, s in zip(diffs, s_zyx)]
    u = [(k0 - lo[0]) + bz + (sz + 0.5) / fz - 0.5, (j0 - lo[1]) + by + (sy + 0.5) / fy - 0.5,
         (i0 - lo[2]) + bx + (sx + 0.5) / fx - 0.5]
    d_sub, g_z, g_y, g_x = _trilinear(fields, u)
    h_sub = _half_width([g_z, g_y, g_x], (s_zyx[0] / fz, s_zyx[1] / fy, s_zyx[2] / fx))
    return (np.concatenate([d_nodes, d_sub]), np.concatenate([h_nodes, h_sub]),
            np.concatenate([w_nodes, w_sub]))
