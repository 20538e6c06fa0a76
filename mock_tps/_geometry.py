"""ROI shapes of the mock: fractional coverage on the CT grid, resampling, margins, algebra.

Every ROI geometry is a fractional coverage array on its examination's CT grid
(values in [0, 1], shape (nz, ny, nx), mm geometry from a
:class:`mock_tps._phantom_data.GridSpec`).  All operations return new arrays: a
coverage is never modified in place, so snapshots can share it.

Conventions chosen where RayStation's documentation is silent
-------------------------------------------------------------
- Resampling to another grid is exact *box (area-weighted) resampling* of the CT
  coverage taken as piecewise constant per CT voxel: a target voxel's coverage is
  the overlap-volume-weighted mean of the CT coverages it overlaps, separable per
  axis.  It reproduces the CT coverage exactly on the CT grid itself and on any
  grid aligned to it, which a trilinear point lookup does not.  Outside the CT
  grid the coverage is 0.
- Margins are anisotropic, six-directional, with an ellipsoidal structuring
  element per octant (semi-axes = the margins of the three directions bounding
  the octant), applied to the source voxels as boxes (see :func:`_kernel`).  They are done on the CT grid refined by an integer factor per axis
  (up to 3, so that sub-voxel margins still act), on the source binarised at
  coverage ≥ 0.5, cropped to the region they can affect, by FFT convolution;
  the result is block-averaged back to the CT grid, hence fractional at the
  surface.  Contraction is the complement of the expansion of the complement.
- Algebra on fractional coverages: union = max, intersection = min,
  subtraction A − B = min(A, 1 − B).
- Patient directions (DICOM patient coordinates, HFS): +x = Left, −x = Right,
  +y = Posterior, −y = Anterior, +z = Superior, −z = Inferior.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from ._phantom_data import GridSpec

__all__ = [
    "resample_coverage",
    "margin_coverage",
    "algebra_coverage",
    "coverage_volume_cc",
    "MM_PER_CM",
]

MM_PER_CM = 10.0
_DIRECTIONS = ("Superior", "Inferior", "Anterior", "Posterior", "Right", "Left")
_MAX_REFINE = 3


def _overlap_matrix(src_corner: float, src_step: float, n_src: int,
                    dst_corner: float, dst_step: float, n_dst: int) -> np.ndarray:
    """(n_dst, n_src) fraction of each target interval covered by each source interval."""
    s0 = src_corner + src_step * np.arange(n_src)
    d0 = dst_corner + dst_step * np.arange(n_dst)
    lo = np.maximum(d0[:, None], s0[None, :])
    hi = np.minimum(d0[:, None] + dst_step, s0[None, :] + src_step)
    return np.clip(hi - lo, 0.0, None) / dst_step


def resample_coverage(coverage: np.ndarray, src: GridSpec, dst: GridSpec) -> np.ndarray:
    """Coverage on ``dst`` of a fractional coverage given on ``src`` (box resampling).

    Parameters
    ----------
    coverage : ndarray, shape src.shape_zyx, values in [0, 1]
    src, dst : GridSpec (mm)

    Returns
    -------
    ndarray, shape dst.shape_zyx, float64 in [0, 1]
    """
    if (src.shape_zyx == dst.shape_zyx and np.allclose(src.corner_mm, dst.corner_mm, rtol=0, atol=1e-6)
            and np.allclose(src.spacing_xyz_mm, dst.spacing_xyz_mm, rtol=0, atol=1e-6)):   # same grid (cm round trip)
        return np.asarray(coverage, dtype=np.float64).copy()
    mats = []
    for ax, k in ((2, 0), (1, 1), (0, 2)):  # array axis, GridSpec component (x, y, z)
        mats.append(_overlap_matrix(src.corner_mm[k], src.spacing_xyz_mm[k], src.shape_zyx[ax],
                                    dst.corner_mm[k], dst.spacing_xyz_mm[k], dst.shape_zyx[ax]))
    mx, my, mz = mats
    out = np.asarray(coverage, dtype=np.float64)
    out = np.tensordot(mz, out, axes=(1, 0))                      # (dz, sy, sx)
    out = np.tensordot(my, out, axes=(1, 1)).transpose(1, 0, 2)   # (dz, dy, sx)
    out = np.tensordot(out, mx, axes=(2, 1))                      # (dz, dy, dx)
    return np.clip(out, 0.0, 1.0)


def coverage_volume_cc(coverage: np.ndarray, grid: GridSpec) -> float:
    """Σ coverage × voxel volume, in cm³."""
    vox_mm3 = float(np.prod(grid.spacing_xyz_mm))
    return float(np.sum(coverage, dtype=np.float64) * vox_mm3 / 1000.0)


def _parse_margins(settings: Mapping[str, Any]) -> Tuple[bool, Dict[str, float]]:
    """(expand?, margins in mm per direction) from RayStation MarginSettings (cm)."""
    if not isinstance(settings, Mapping):
        raise TypeError(f"MarginSettings must be a dict, got {type(settings).__name__}")
    kind = settings.get("Type", "Expand")
    if kind not in ("Expand", "Contract"):
        raise ValueError(f"MarginSettings['Type'] must be 'Expand' or 'Contract', got {kind!r}")
    unknown = set(settings) - set(_DIRECTIONS) - {"Type"}
    if unknown:
        raise ValueError(f"Unknown MarginSettings keys {sorted(unknown)}; expected 'Type' and {_DIRECTIONS}")
    margins = {}
    for d in _DIRECTIONS:
        v = float(settings.get(d, 0.0))
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"MarginSettings['{d}'] must be a finite margin ≥ 0 cm, got {v!r}")
        margins[d] = v * MM_PER_CM
    return kind == "Expand", margins


def _kernel(margins_mm: Dict[str, float], step_mm: Tuple[float, float, float]) -> np.ndarray:
    """Boolean structuring element (z, y, x) of the per-octant ellipsoids, centred.

    A voxel-centre offset d (per axis) is in when Σ (g/m)² ≤ 1, where
    g = max(|d| − step/2, 0) is the gap between the target voxel's centre and the
    source voxel's extent, and m the margin of the direction d points to: the
    voxelised source is dilated as boxes, not as centre points (which would cut
    rounded edges short by half a voxel).  A zero margin admits only d = 0.
    """
    dx, dy, dz = step_mm
    pos = {"x": margins_mm["Left"], "y": margins_mm["Posterior"], "z": margins_mm["Superior"]}
    neg = {"x": margins_mm["Right"], "y": margins_mm["Anterior"], "z": margins_mm["Inferior"]}
    axes = []
    for a, step in (("z", dz), ("y", dy), ("x", dx)):
        n = max(int(np.floor((mm + 0.5 * step) / step + 1e-9)) if mm > 0 else 0 for mm in (neg[a], pos[a]))
        off = np.arange(-n, n + 1) * step
        m = np.where(off >= 0, pos[a], neg[a])
        gap = np.maximum(np.abs(off) - 0.5 * step, 0.0)
        safe_m = np.where(m > 0, m, 1.0)
        r = np.where(off == 0, 0.0, np.where(m > 0, (gap / safe_m) ** 2, np.inf))
        axes.append(r)
    rz, ry, rx = axes
    return (rz[:, None, None] + ry[None, :, None] + rx[None, None, :]) <= 1.0 + 1e-9


def _dilate(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Binary dilation of ``mask`` by ``kernel`` (centred) via FFT convolution."""
    if kernel.size == 1:
        return mask.copy()
    from scipy.signal import fftconvolve

    conv = fftconvolve(mask.astype(np.float32), kernel.astype(np.float32), mode="same")
    return conv > 0.5


def margin_coverage(coverage: np.ndarray, grid: GridSpec, settings: Mapping[str, Any]) -> np.ndarray:
    """Expand or contract a coverage by RayStation MarginSettings (cm).

    Parameters
    ----------
    coverage : ndarray, shape grid.shape_zyx, [0, 1]
    grid : GridSpec (mm)
    settings : dict
        ``{'Type': 'Expand'|'Contract', 'Superior': cm, 'Inferior': cm, 'Anterior': cm,
        'Posterior': cm, 'Right': cm, 'Left': cm}``; missing directions are 0.

    Returns
    -------
    ndarray, shape grid.shape_zyx, float64 in [0, 1]
    """
    expand, m = _parse_margins(settings)
    if all(v == 0 for v in m.values()):
        return np.asarray(coverage, dtype=np.float64).copy()
    binary = np.asarray(coverage) >= 0.5
    nz, ny, nx = grid.shape_zyx
    if not binary.any():
        return np.zeros(grid.shape_zyx)
    # refinement factor per array axis (z, y, x)
    dirs = (("Superior", "Inferior", 2), ("Anterior", "Posterior", 1), ("Right", "Left", 0))
    refine = []
    pad = []
    for d1, d2, k in dirs:
        step = grid.spacing_xyz_mm[k]
        nonzero = [v for v in (m[d1], m[d2]) if v > 0]
        f = 1 if not nonzero else int(min(_MAX_REFINE, max(1, np.ceil(2.0 * step / min(nonzero)))))
        refine.append(f)
        pad.append(int(np.ceil(max(m[d1], m[d2]) / step)) + 1 if expand else 1)
    # crop to the region the result can occupy
    idx = np.nonzero(binary)
    lo = [max(0, int(i.min()) - p) for i, p in zip(idx, pad)]
    hi = [min(n, int(i.max()) + 1 + p) for i, p, n in zip(idx, pad, (nz, ny, nx))]
    sub = binary[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    fine = sub
    for ax, f in enumerate(refine):
        if f > 1:
            fine = np.repeat(fine, f, axis=ax)
    fine_step = (grid.spacing_xyz_mm[0] / refine[2], grid.spacing_xyz_mm[1] / refine[1], grid.spacing_xyz_mm[2] / refine[0])
    k = _kernel(m, fine_step)
    if expand:
        out = _dilate(fine, k)
    else:
        # erosion A ⊖ B = not((not A) ⊕ (−B)); outside the crop counts as "not A"
        padded = np.pad(~fine, [(s // 2 + 1, s // 2 + 1) for s in k.shape], constant_values=True)
        grown = _dilate(padded, k[::-1, ::-1, ::-1])
        sl = tuple(slice(s // 2 + 1, s // 2 + 1 + n) for s, n in zip(k.shape, fine.shape))
        out = ~grown[sl]
    fz, fy, fx = refine
    sz, sy, sx = sub.shape
    block = out.reshape(sz, fz, sy, fy, sx, fx).mean(axis=(1, 3, 5))
    result = np.zeros(grid.shape_zyx)
    result[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = block
    return result


def _combine(coverages: Iterable[np.ndarray], operation: str) -> np.ndarray:
    covs = list(coverages)
    if not covs:
        raise ValueError("An algebra expression needs at least one source ROI.")
    if operation == "Union":
        return np.maximum.reduce([np.asarray(c, dtype=np.float64) for c in covs])
    if operation == "Intersection":
        return np.minimum.reduce([np.asarray(c, dtype=np.float64) for c in covs])
    raise ValueError(f"Expression 'Operation' must be 'Union' or 'Intersection', got {operation!r}")


def algebra_coverage(expr_a: Tuple[Iterable[np.ndarray], str, Optional[Mapping[str, Any]]],
                     expr_b: Optional[Tuple[Iterable[np.ndarray], str, Optional[Mapping[str, Any]]]],
                     result_operation: str, result_margin: Optional[Mapping[str, Any]],
                     grid: GridSpec) -> np.ndarray:
    """RayStation ROI algebra: ``margin(op(margin(A), margin(B)))`` on one grid.

    Parameters
    ----------
    expr_a, expr_b : (coverages, 'Union'|'Intersection', MarginSettings or None)
    result_operation : {'None', 'Union', 'Intersection', 'Subtraction'}
        'None' uses expression A only.
    result_margin : MarginSettings or None
    grid : GridSpec

    Returns
    -------
    ndarray, shape grid.shape_zyx, [0, 1]
    """
    def one(expr: Tuple[Iterable[np.ndarray], str, Optional[Mapping[str, Any]]]) -> np.ndarray:
        covs, op, marg = expr
        c = _combine(covs, op)
        return margin_coverage(c, grid, marg) if marg else c

    a = one(expr_a)
    if result_operation == "None":
        out = a
    else:
        if expr_b is None:
            raise ValueError(f"ResultOperation '{result_operation}' needs ExpressionB.")
        b = one(expr_b)
        if result_operation == "Union":
            out = np.maximum(a, b)
        elif result_operation == "Intersection":
            out = np.minimum(a, b)
        elif result_operation == "Subtraction":
            out = np.minimum(a, 1.0 - b)
        else:
            raise ValueError("ResultOperation must be 'None', 'Union', 'Intersection' or "
                             f"'Subtraction', got {result_operation!r}")
    if result_margin:
        out = margin_coverage(out, grid, result_margin)
    return np.clip(out, 0.0, 1.0)
