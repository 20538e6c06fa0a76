"""Photon beamlet influence matrices for the mock TPS, computed with pyRadPlan.

The engine is pyRadPlan's SVD pencil-beam photon algorithm (``SVDPB``, a port of
matRad's, generic 6 MV machine; BSD-3-Clause, DKFZ).  pyRadPlan 0.5.0 ships one
photon machine, ``photons_Generic.mat`` (6 MV, flattened, penumbra FWHM 5 mm at
isocentre): no 10 MV or FFF beam data, so the seed's FFF 10 MV cannot be
modelled.  Its beamlets are square (one ``bixel_width`` for both directions):
2.5 mm across the leaves means 2.5 × 2.5 mm, four times the 5 mm beamlets.  pyRadPlan is an *offline*
dependency: it is imported lazily inside :func:`influence_matrix`, and a cache hit
does not import it at all.

Requirements: ``pip install pyradplan==0.5.0 "pydantic<2.13"`` (pyRadPlan 0.5.0
fails with pydantic >= 2.13: ``PydanticSerializationError ... index_key``).

Coordinate conventions
----------------------
Our arrays are ``(nz, ny, nx)`` (x fastest) in DICOM patient coordinates (LPS for a
head-first-supine patient: +x = patient left, +y = posterior, +z = superior).
``GridSpec.corner_mm`` is the outer corner of voxel (0, 0, 0).

pyRadPlan builds a SimpleITK image from a numpy array without permutation when no
``cubeDim`` key is given, so a ``(nz, ny, nx)`` array becomes an image of size
``(nx, ny, nz)`` whose world coordinates are LPS with ``origin`` = centre of voxel
(0, 0, 0) = ``corner_mm + spacing_xyz_mm / 2``.  Its gantry rotation is
``R(θ) = [[c, -s, 0], [s, c, 0], [0, 0, 1]]`` applied to the BEV source point
``(0, -SAD, 0)``: gantry 0° puts the source at −y (anterior, AP beam), gantry 90° at
+x (patient left), as IEC 61217 for HFS.  Its dose-influence rows are the numpy
C-order flattening of the ``(nz, ny, nx)`` dose cube, i.e. ``ix + nx*(iy + ny*iz)``,
which is our contract.  ``tests/mock_tps/test_dose_engine.py`` checks all of this.

Units
-----
The matrix holds pyRadPlan's physical dose in Gy per unit beamlet weight (measured
here: an open 35 x 35 mm field of 49 beamlets of 5 mm at unit weight gives about
1.0 Gy at dmax in water).  The mock treats one unit of weight as delivered per
fraction, so the matrix is "Gy per fraction per unit weight"; absolute MU
calibration is out of scope (matRad issues #32, #79, #257).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np

from constraints.errors import InputError
from mock_tps._dose_cache import (  # noqa: F401  (public names of the engine)
    DEFAULT_CACHE_MAX_GB,
    cache_dir,
    cache_max_bytes,
    evict_cache,
    load_matrix,
    matrix_key,
    matrix_path,
    save_matrix,
)
from mock_tps._dose_grid import check_cube, check_grid, dose_box_grid, grid_bounds_mm, grid_tuple
from mock_tps._phantom_data import BeamSpec, GridSpec
from mock_tps._pyradplan_dose import BEAMS_PER_CALL, compute_matrix, dose_workers  # noqa: F401

__all__ = [
    "ENGINE_VERSION",
    "InfluenceMatrix",
    "influence_matrix",
    "beam_doses_gy",
    "dose_box_grid",
    "cache_dir",
    "cache_max_bytes",
    "evict_cache",
    "dose_workers",
    "pyradplan_version",
]

#: Bumped whenever this module changes what it computes (invalidates the cache).
ENGINE_VERSION = "reirrad-dose-engine-2"

#: Default pyRadPlan engine options (full rows: no dij sampling of the low-dose tail).
#: ``trace_on_dose_grid=False`` and ``ignore_outside_densities=False`` are essential:
#: pyRadPlan's defaults ray-trace on the (cropped) dose grid and zero the densities
#: outside the VOIs, so a dose box inside the patient would see no tissue upstream
#: of the box and every depth would start at the box edge.
_DEFAULT_ENGINE_OPTIONS: Dict[str, Any] = {
    "enable_dij_sampling": False,
    "geometric_lateral_cutoff": 50.0,
    "trace_on_dose_grid": False,
    "ignore_outside_densities": False,
}


class InfluenceMatrix(NamedTuple):
    """Result of :func:`influence_matrix` (unpacks as a 2-tuple).

    Attributes
    ----------
    matrix_gy : scipy.sparse.csc_matrix, shape (dose_grid.n_voxels, n_beamlets), float32
        Dose in Gy per fraction per unit beamlet weight; rows in flattened
        (z, y, x) C order of the dose grid; full (untruncated) rows.
    beamlet_beam_index : ndarray of int64, shape (n_beamlets,)
        Index into ``beams`` of each beamlet (column).
    """

    matrix_gy: Any
    beamlet_beam_index: np.ndarray


def pyradplan_version() -> str:
    """Installed pyRadPlan version (without importing it), or ``"absent"``."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"
    try:
        return version("pyradplan")
    except PackageNotFoundError:
        return "absent"


def beam_doses_gy(result: InfluenceMatrix, n_beams: int, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-beam dose of open (uniform-weight) fields.

    Parameters
    ----------
    result : InfluenceMatrix
    n_beams : int
    weights : ndarray, shape (n_beamlets,), optional
        Beamlet weights; default all ones (an open field shaped to the target's
        beam's-eye-view projection, as a 3D-conformal field).

    Returns
    -------
    ndarray, shape (n_beams, n_voxels), float64, Gy per fraction
    """
    A = result.matrix_gy
    idx = np.asarray(result.beamlet_beam_index)
    w = np.ones(A.shape[1]) if weights is None else np.asarray(weights, dtype=float)
    out = np.zeros((int(n_beams), A.shape[0]))
    for b in range(int(n_beams)):
        sel = np.nonzero(idx == b)[0]
        if sel.size:
            out[b] = A[:, sel] @ w[sel]
    return out


def influence_matrix(
    ct_hu: np.ndarray,
    ct_grid: GridSpec,
    target_mask: np.ndarray,
    dose_grid: GridSpec,
    beams: Sequence[BeamSpec],
    bixel_mm: float = 5.0,
    *,
    dose_region_mask: Optional[np.ndarray] = None,
    engine_options: Optional[Dict[str, Any]] = None,
    use_cache: bool = True,
) -> InfluenceMatrix:
    """Photon beamlet dose-influence matrix on ``dose_grid``.

    Parameters
    ----------
    ct_hu : ndarray, shape ``ct_grid.shape_zyx`` (nz, ny, nx), HU
        Planning CT.  The whole CT is used for radiological depth.
    ct_grid : GridSpec
        CT geometry (DICOM patient coordinates, mm).
    target_mask : ndarray, shape ``ct_grid.shape_zyx``
        Fractional (or boolean) target mask; voxels with coverage >= 0.5 define
        the beamlet grid (pyRadPlan's steering information covers their
        beam's-eye-view projection).
    dose_grid : GridSpec
        Where to compute dose; must lie inside the CT volume.  Use
        :func:`dose_box_grid` for a box around the target and nearby OARs.
    beams : sequence of BeamSpec
        Static coplanar (or non-coplanar) photon beams.  ``collimator_deg`` is
        ignored (pencil beams are rotationally symmetric here).
    bixel_mm : float, default 5.0
        Beamlet width at isocentre, mm.
    dose_region_mask : ndarray, shape ``ct_grid.shape_zyx``, optional
        CT voxels (> 0.5) where dose is computed, typically the external
        contour; dose-grid voxels outside it get zero rows.  Default: all CT
        voxels inside the dose grid.
    engine_options : dict, optional
        Extra pyRadPlan ``prop_dose_calc`` entries overriding the defaults
        ``enable_dij_sampling=False`` (full rows, no random sampling of the
        low-dose tail), ``geometric_lateral_cutoff=50.0`` mm,
        ``trace_on_dose_grid=False`` and ``ignore_outside_densities=False`` (ray
        tracing on the whole CT, so tissue upstream of the dose box counts).
    use_cache : bool, default True
        Load from / save to ``cache_dir()``, keyed by a SHA-256 of every input
        array and parameter plus the pyRadPlan and engine versions.

    Returns
    -------
    InfluenceMatrix
        ``(matrix_gy, beamlet_beam_index)``; ``matrix_gy`` is a
        ``scipy.sparse.csc_matrix`` of shape ``(dose_grid.n_voxels, n_beamlets)``,
        float32, Gy per fraction per unit weight.

    Raises
    ------
    InputError
        Bad grids, shapes, empty target, no beams, non-positive ``bixel_mm``,
        dose grid outside the CT.
    """
    check_grid(ct_grid, "ct_grid")
    check_grid(dose_grid, "dose_grid")
    hu = check_cube(ct_hu, ct_grid, "ct_hu").astype(np.float32)
    tgt = check_cube(target_mask, ct_grid, "target_mask") >= 0.5
    if not tgt.any():
        raise InputError("target_mask has no voxel with coverage >= 0.5")
    try:
        bixel_mm = float(bixel_mm)
    except (TypeError, ValueError):
        raise InputError(f"bixel_mm must be a number of mm, got {bixel_mm!r}") from None
    if not (np.isfinite(bixel_mm) and 1.0 <= bixel_mm <= 20.0):
        raise InputError(f"bixel_mm must be in [1, 20] mm, got {bixel_mm!r}")
    beams = tuple(beams)
    if not beams or not all(isinstance(b, BeamSpec) for b in beams):
        raise InputError(f"beams must be a non-empty sequence of BeamSpec, got {beams!r}")

    # dose grid must lie inside the CT volume
    ct_lo, ct_hi = grid_bounds_mm(ct_grid)
    d_lo, d_hi = grid_bounds_mm(dose_grid)
    if np.any(d_lo < ct_lo - 1e-6) or np.any(d_hi > ct_hi + 1e-6):
        raise InputError(
            f"dose_grid (corner {tuple(d_lo)}, far corner {tuple(d_hi)} mm) is not inside the CT "
            f"volume ({tuple(ct_lo)} to {tuple(ct_hi)} mm)"
        )

    # CT voxels whose centre lies inside the dose grid (plus one CT voxel) ∩ region
    xs, ys, zs = ct_grid.centres_mm()
    pad = np.asarray(ct_grid.spacing_xyz_mm)
    inside = [
        (c >= d_lo[k] - pad[k]) & (c <= d_hi[k] + pad[k]) for k, c in enumerate((xs, ys, zs))
    ]
    region = inside[2][:, None, None] & inside[1][None, :, None] & inside[0][None, None, :]
    if dose_region_mask is not None:
        region &= check_cube(dose_region_mask, ct_grid, "dose_region_mask") > 0.5
    if not region.any():
        raise InputError("dose_region_mask has no voxel inside dose_grid")

    options = dict(_DEFAULT_ENGINE_OPTIONS)
    options.update(engine_options or {})
    key = _cache_key(hu, ct_grid, tgt, region, dose_grid, beams, bixel_mm, options)
    path = matrix_path(key)
    if use_cache:
        hit = load_matrix(path)
        if hit is not None:
            return InfluenceMatrix(*hit)

    res = InfluenceMatrix(*compute_matrix(hu, ct_grid, tgt, region, dose_grid, beams, bixel_mm, options))
    if use_cache:
        try:
            save_matrix(path, res.matrix_gy, res.beamlet_beam_index)
            evict_cache(keep=path)
        except OSError as exc:  # read-only cache dir: compute, warn, go on
            warnings.warn(f"could not write dose-engine cache {path}: {exc}", RuntimeWarning)
    return res


def _cache_key(
    ct_hu: np.ndarray,
    ct_grid: GridSpec,
    target: np.ndarray,
    region: np.ndarray,
    dose_grid: GridSpec,
    beams: Sequence[BeamSpec],
    bixel_mm: float,
    options: Dict[str, Any],
) -> str:
    meta = {
        "engine": ENGINE_VERSION,
        "pyradplan": pyradplan_version(),
        "ct_grid": grid_tuple(ct_grid),
        "dose_grid": grid_tuple(dose_grid),
        "beams": [
            [b.name, float(b.gantry_deg), float(b.couch_deg), float(b.collimator_deg), list(map(float, b.isocenter_mm))]
            for b in beams
        ],
        "bixel_mm": float(bixel_mm),
        "options": {k: options[k] for k in sorted(options)},
    }
    return matrix_key(meta, [ct_hu.astype(np.float32), target.astype(np.uint8), region.astype(np.uint8)])
