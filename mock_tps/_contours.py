"""ROI contours: the primary shape of a mock ROI geometry, as in RayStation.

A RayStation ROI drawn on a CT is a stack of closed planar contours, one set per CT
slice; its voxel coverage (``GetRoiGeometryAsVoxels``) is computed from those
contours.  The mock keeps the same order of things wherever it can:

- ROIs imported from an RTSTRUCT keep the file's contours;
- phantom ROIs are contoured once when the phantom is built (the analytic shapes'
  cross-sections at the CT slice centres, :func:`mock_tps._phantom_masks.shape_planes`)
  and their coverage is *computed from the contours*
  (:func:`mock_tps._dicom_voxelize.voxelize_planes`), so the coverage a script reads
  in the mock and the coverage obtained by importing the exported RTSTRUCT are the
  same numbers;
- derived geometries (margins, algebra, from dose) are voxel shapes; their contours
  are made on demand by :func:`contour_planes`.

:func:`contour_planes`: on every CT slice whose coverage reaches ``level`` somewhere,
the iso-line ``coverage = level`` of the bilinear interpolant of the voxel-centre
coverages (marching squares, contourpy), padded by one empty voxel so that every
line closes.  Coordinates are rounded to 0.1 µm (:func:`quantize_mm`), collinear
vertices dropped, and lines with fewer than three points dropped.
"""
from __future__ import annotations

from typing import Iterable, List, Tuple

import numpy as np

from ._phantom_data import GridSpec

__all__ = ["Planes", "contour_planes", "stack_planes", "slice_contours", "drop_collinear", "quantize_mm", "COORDINATE_DECIMALS"]

#: ``((z_mm, (contour (n, 2) mm in x, y, ...)), ...)`` sorted by z.
Planes = Tuple[Tuple[float, Tuple[np.ndarray, ...]], ...]


def slice_contours(coverage: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray, level: float = 0.5) -> List[np.ndarray]:
    """Closed iso-coverage contours of one slice (marching squares).

    Parameters
    ----------
    coverage : ndarray, shape (ny, nx), in [0, 1]
    x_mm, y_mm : ndarray
        Voxel-centre coordinates of the columns and rows, mm.
    level : float
        Iso-level of the contour.

    Returns
    -------
    list of ndarray (n, 2)
        Contours in (x, y) mm, first point not repeated at the end.
    """
    import contourpy

    padded = np.pad(np.asarray(coverage, dtype=np.float64), 1)
    dx = x_mm[1] - x_mm[0] if x_mm.size > 1 else 1.0
    dy = y_mm[1] - y_mm[0] if y_mm.size > 1 else 1.0
    xs = np.concatenate([[x_mm[0] - dx], x_mm, [x_mm[-1] + dx]])
    ys = np.concatenate([[y_mm[0] - dy], y_mm, [y_mm[-1] + dy]])
    gen = contourpy.contour_generator(xs, ys, padded, line_type=contourpy.LineType.Separate)
    out = []
    for line in gen.lines(level):
        pts = np.asarray(line, dtype=np.float64)
        if pts.shape[0] > 1 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        pts = drop_collinear(quantize_mm(pts))
        if pts.shape[0] >= 3:
            out.append(pts)
    return out


#: Decimals (mm) of contour coordinates: 0.1 µm, which a DICOM DS (16 characters) holds exactly.
COORDINATE_DECIMALS = 4


def quantize_mm(points: np.ndarray) -> np.ndarray:
    """Coordinates rounded to :data:`COORDINATE_DECIMALS` decimals, as the doubles a DICOM
    reader parses from those decimals (so an exported contour reads back bit for bit).

    Examples
    --------
    >>> quantize_mm(np.array([[-1.8770000000000049, 2.00004999]])).tolist()
    [[-1.877, 2.0]]
    """
    p = np.asarray(points, dtype=np.float64)
    # Python's own formatting and parsing (both correctly rounded): numpy 2's np.char.mod gives
    # the same doubles but swallows a Ctrl-C raised while it runs, and is 2x slower
    fmt = f"%.{COORDINATE_DECIMALS}f"
    return np.array([float(fmt % v) for v in p.ravel().tolist()], dtype=np.float64).reshape(p.shape)


def drop_collinear(points: np.ndarray, tol_mm2: float = 1e-9) -> np.ndarray:
    """Remove the vertices of a closed polygon that lie on the line through their neighbours.

    A vertex goes when the cross product of its two edges is below ``tol_mm2``
    (mm², i.e. collinear to round-off); the polygon's region is unchanged.

    Examples
    --------
    >>> drop_collinear(np.array([[0., 0.], [1., 0.], [2., 0.], [2., 2.], [0., 2.]])).tolist()
    [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] <= 3:
        return p
    a = p - np.roll(p, 1, axis=0)
    b = np.roll(p, -1, axis=0) - p
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    keep = np.abs(cross) > tol_mm2
    return p[keep] if keep.sum() >= 3 else p


def contour_planes(coverage: np.ndarray, grid: GridSpec, level: float = 0.5) -> Planes:
    """Contours of a coverage array, one plane per CT slice that reaches ``level``.

    Parameters
    ----------
    coverage : ndarray, shape grid.shape_zyx, in [0, 1]
    grid : GridSpec
    level : float

    Returns
    -------
    Planes
        Plane z = the slice centre (mm).
    """
    cov = np.asarray(coverage)
    x, y, z = grid.centres_mm()
    hit = np.flatnonzero(cov.reshape(cov.shape[0], -1).max(axis=1) >= level)
    return stack_planes(((float(z[k]), cov[k]) for k in hit), x, y, level)


def stack_planes(slices: Iterable[Tuple[float, np.ndarray]], x_mm: np.ndarray, y_mm: np.ndarray,
                 level: float = 0.5) -> Planes:
    """Planes of the ``level`` contours of 2-D fields, one per ``(z_mm, field)`` (:func:`slice_contours`).

    A loop over slices (each slice is vectorized); slices without a contour give no plane.
    """
    planes = []
    for z_mm, field in slices:
        contours = slice_contours(field, x_mm, y_mm, level)
        if contours:
            planes.append((float(z_mm), tuple(contours)))
    return tuple(planes)
