"""pyRadPlan's SVD pencil-beam engine with one bilinear kernel lookup per beamlet.

pyRadPlan 0.5.0 (``PhotonPencilBeamSVDEngine._compute_bixel``) evaluates a beamlet's dose
as ``D = (SAD / r)² Σ_c A_c(d) K_c(x, z)``: the depth factor of SVD component ``c``,
``A_c(d) = β_c / (β_c − μ) (e^{−μ d} − e^{−β_c d})`` at radiological depth ``d``, times the
fluence-convolved lateral kernel ``K_c`` at the voxel's lateral offset ``(x, z)`` projected
to the isocentre plane (Bortfeld, Schlegel & Rhein 1993, Med. Phys. 20:311).  It looks up
each of the three ``K_c`` with its own ``scipy.interpolate.RegularGridInterpolator``, which
locates every query point on the grid by binary search: 35 % of the engine's time at the
default size (43 000 voxels per beamlet).

:func:`fast_svdpb_engine` returns the same engine with :meth:`_compute_bixel` replaced:
the kernels' grid is uniform, so a voxel's cell index is ``floor((x − x₀) / h)``, computed
once per beamlet and shared by the three components.  The result is pyRadPlan's, up to the
float32 rounding of the stored dose (``tests/mock_tps/test_dose_engine.py`` compares them).
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

__all__ = ["fast_svdpb_engine", "UniformKernels", "bilinear_uniform"]


class UniformKernels(list):
    """pyRadPlan's list of per-component interpolators, plus the stacked kernels they sample.

    Attributes
    ----------
    origin_mm : float
        First grid coordinate (both axes), mm.
    step_mm : float
        Grid step (both axes), mm.
    table : ndarray, shape (n_components, n, n)
        ``K_c`` on the grid, axis 1 along the beam's-eye-view x, axis 2 along z.
    """

    origin_mm: float
    step_mm: float
    table: np.ndarray


def _as_uniform(interpolators: List[Any]) -> Optional[UniformKernels]:
    """Stack the kernels of ``interpolators`` (``functools.partial`` of pyRadPlan's ``interpnd``)
    if they share one uniform, ascending, square grid; else None."""
    tables, grid = [], None
    for f in interpolators:
        kw = getattr(f, "keywords", None) or {}
        x, y = kw.get("x"), kw.get("y")
        if x is None or y is None or len(x) != 2:
            return None
        g0, g1 = np.asarray(x[0], dtype=np.float64), np.asarray(x[1], dtype=np.float64)
        if g0.shape != g1.shape or g0.size < 2 or not np.array_equal(g0, g1):
            return None
        if grid is None:
            grid = g0
            steps = np.diff(grid)
            if not (np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-9, atol=0.0)):
                return None
        elif not np.array_equal(grid, g0):
            return None
        tables.append(np.asarray(y))
    if grid is None:
        return None
    out = UniformKernels(interpolators)
    out.origin_mm = float(grid[0])
    out.step_mm = float((grid[-1] - grid[0]) / (grid.size - 1))
    out.table = np.stack(tables)
    return out


def bilinear_uniform(kernels: UniformKernels, points_mm: np.ndarray) -> np.ndarray:
    """Every component's bilinear interpolation at ``points_mm`` (N, 2), float64, (n_components, N).

    Raises
    ------
    ValueError
        A point lies outside the grid (as pyRadPlan's ``bounds_error=True``: the
        convolution grid was sized wrong).
    """
    n = kernels.table.shape[1]
    q = np.asarray(points_mm, dtype=np.float64)
    u = (q - kernels.origin_mm) / kernels.step_mm   # grid coordinates, 0 .. n-1
    if u.size and (u.min() < -1e-9 or u.max() > n - 1 + 1e-9):
        raise ValueError(f"Query points lie outside the kernel grid [{kernels.origin_mm}, "
                         f"{kernels.origin_mm + (n - 1) * kernels.step_mm}] mm.")
    np.clip(u, 0.0, n - 1.0, out=u)
    i = np.minimum(u.astype(np.intp), n - 2)          # cell index (u >= 0: truncation is floor)
    t = u - i
    ix, iz = i[:, 0], i[:, 1]
    tx, tz = t[:, 0], t[:, 1]
    flat = kernels.table.reshape(kernels.table.shape[0], n * n)
    base = ix * n + iz
    c00, c01 = flat[:, base], flat[:, base + 1]
    c10, c11 = flat[:, base + n], flat[:, base + n + 1]
    ux, uz = 1.0 - tx, 1.0 - tz
    return (ux * uz) * c00 + (ux * tz) * c01 + (tx * uz) * c10 + (tx * tz) * c11


_FAST_CLASS: Optional[type] = None


def fast_svdpb_engine(pln: Any) -> Any:
    """pyRadPlan's SVDPB photon engine for ``pln``, with the shared-index kernel lookup."""
    global _FAST_CLASS
    if _FAST_CLASS is None:
        import array_api_compat
        from pyRadPlan.dose.engines._svdpb import PhotonPencilBeamSVDEngine

        class FastLookupSVDEngine(PhotonPencilBeamSVDEngine):
            """SVDPB whose beamlets look up the three lateral kernels with one cell search."""

            def _get_kernel_interpolators(self, beam_info, f):
                interps = super()._get_kernel_interpolators(beam_info, f)
                if not array_api_compat.is_numpy_namespace(self.xp):
                    return interps   # pragma: no cover - GPU namespaces keep pyRadPlan's path
                fast = _as_uniform(interps)
                return interps if fast is None else fast

            def _compute_bixel(self, curr_ray, k):
                kernels = curr_ray["kernel_interpolators"]
                if not isinstance(kernels, UniformKernels):
                    return super()._compute_bixel(curr_ray, k)  # pragma: no cover
                kernel = curr_ray["kernel"]
                rd = np.asarray(curr_ray["rad_depths"])
                betas = np.asarray(kernel.kernel_betas, dtype=rd.dtype).reshape(-1, 1)
                mu = np.asarray(kernel.m, dtype=rd.dtype)
                depth = betas / (betas - mu) * (np.exp(-mu * rd)[None, :] - np.exp(-betas * rd[None, :]))
                lateral = bilinear_uniform(kernels, np.asarray(curr_ray["iso_lat_dists"]))
                depth[...] = depth * lateral      # float64 product stored as float32, as pyRadPlan
                dose = depth.sum(axis=0) * ((curr_ray["sad"] / np.asarray(curr_ray["geo_depths"])) ** 2)
                return {"physical_dose": dose, "weight": curr_ray["beamlets"][k]["weight"], "ix": curr_ray["ix"]}

        _FAST_CLASS = FastLookupSVDEngine
    return _FAST_CLASS(pln)
