"""CT series reading for the mock's DICOM import, and the synthetic CT grid used
when only RTSTRUCT + RTDOSE are given.

Offline-only module (pydicom through :mod:`mock_tps._dicom_files`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

from constraints.errors import DicomImportError

from ._dicom_files import axial_orientation, in_plane_geometry, orient_frames, read_dataset, require
from ._dicom_dose import _uniform_step
from ._phantom_data import GridSpec

__all__ = ["CtSeries", "read_ct_series", "synthetic_ct_grid"]

@dataclass(frozen=True, eq=False)
class CtSeries:
    """A CT series as read: grid (mm), HU (nz, ny, nx), frame of reference, position."""

    directory: str
    grid: GridSpec
    hu: np.ndarray
    frame_of_reference_uid: str
    patient_position: str
    patient_name: str
    patient_id: str


def read_ct_series(directory: Any) -> CtSeries:
    """Read every CT image of one series in ``directory`` (any slice order).

    Files of other DICOM modalities in the directory (RTSTRUCT, RTDOSE, ...) are
    skipped; a file that is not DICOM at all is refused.

    Raises
    ------
    constraints.errors.DicomImportError
        No CT images, several series or frames of reference, non-axial or differing
        orientation, differing pixel geometry, missing or unequally spaced slices.
    """
    d = Path(directory)
    if not d.is_dir():
        raise DicomImportError(f"CT directory {str(d)!r}: no such directory")
    slices = []
    for f in sorted(d.iterdir()):
        if not f.is_file():
            continue
        try:
            ds = read_dataset(f, "CT image", "CT")
        except DicomImportError as exc:
            if "has Modality" in str(exc):
                continue
            raise
        slices.append((f, ds))
    if not slices:
        raise DicomImportError(f"CT directory {str(d)!r} holds no CT images")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise DicomImportError(f"CT directory {str(d)!r} holds {len(series)} CT series; put one series per directory")
    frames = {str(ds.get("FrameOfReferenceUID", "")) for _, ds in slices}
    if len(frames) != 1 or "" in frames:
        raise DicomImportError(f"CT directory {str(d)!r}: the images must share one FrameOfReferenceUID, got {sorted(frames)}")
    f0, ds0 = slices[0]
    iop0 = [float(v) for v in require(ds0, "ImageOrientationPatient", f0, "CT image")]
    orient = axial_orientation(iop0, f0, "CT image")
    x0, y0, dx, dy = in_plane_geometry(ds0, orient, f0, "CT image")
    rows, cols = int(ds0.Rows), int(ds0.Columns)
    zs: List[float] = []
    for f, ds in slices:
        iop = [float(v) for v in require(ds, "ImageOrientationPatient", f, "CT image")]
        if not np.allclose(iop, iop0, atol=1e-4):
            raise DicomImportError(f"CT image {str(f)!r}: ImageOrientationPatient {iop} differs from the series' {iop0}")
        xi, yi, dxi, dyi = in_plane_geometry(ds, orient, f, "CT image")
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols) or not np.allclose([xi, yi, dxi, dyi], [x0, y0, dx, dy],
                                                                             atol=1e-3):
            raise DicomImportError(f"CT image {str(f)!r}: its pixel grid differs from the series' first image")
        zs.append(float(ds.ImagePositionPatient[2]))
    z = np.asarray(zs)
    order = np.argsort(z, kind="stable")
    z = z[order]
    if np.any(np.diff(z) < 1e-4):
        raise DicomImportError(f"CT directory {str(d)!r}: two images share the slice position z = "
                               f"{z[int(np.argmin(np.diff(z)))]:g} mm")
    dz = _uniform_step(z, str(d), "CT series")
    if dz == 0.0:
        dz = float(ds0.get("SliceThickness", 0) or 0) or min(dx, dy)
    hu = np.empty((z.size, rows, cols), dtype=np.float32)
    for k, i in enumerate(order):
        f, ds = slices[int(i)]
        try:
            px = np.asarray(ds.pixel_array, dtype=np.float64)
        except Exception as exc:  # pydicom raises many types for bad pixel data
            raise DicomImportError(f"CT image {str(f)!r}: the pixel data cannot be decoded ({exc})") from None
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        hu[k] = px * slope + intercept
    hu = orient_frames(hu, orient)
    grid = GridSpec(corner_mm=(x0 - dx / 2, y0 - dy / 2, float(z[0]) - dz / 2), spacing_xyz_mm=(dx, dy, dz),
                    shape_zyx=(int(z.size), rows, cols))
    return CtSeries(str(d), grid, hu, frames.pop(), str(ds0.get("PatientPosition", "HFS") or "HFS"),
                    str(ds0.get("PatientName", "") or ""), str(ds0.get("PatientID", "") or ""))


def _regular(z: np.ndarray, spacing: float) -> bool:
    """True when all ``z`` lie on one lattice of step ``spacing`` (within 1 % of it)."""
    if z.size < 2 or spacing <= 0:
        return False
    k = (z - z[0]) / spacing
    return bool(np.max(np.abs(k - np.round(k))) < 0.01)


def synthetic_ct_grid(dose_grid: GridSpec, contour_xy_bounds_mm: Optional[Sequence[float]],
                      plane_z_mm: np.ndarray, nominal_spacing_mm: Optional[float],
                      max_pixel_mm: Optional[float] = None) -> GridSpec:
    """The examination grid used when no CT series is given.

    - In-plane: the dose grid's lattice, refined by the smallest integer factor that
      makes pixels ≤ ``max_pixel_mm`` when that is given (default: not refined), so
      that box resampling to the dose grid is exact (CT pixels nest in dose
      voxels); extended to cover every contour (plus one pixel).
    - z: slices centred on the contour planes, thickness = the nominal plane spacing,
      when all planes lie on one lattice of that spacing; else the dose grid's z
      lattice.  Extended to cover the dose grid and every slab of every ROI.

    When the contours lie inside the dose grid on its z lattice, the result is the
    dose grid itself, and ``GetRoiGeometryAsVoxels`` on the dose grid returns the
    stored coverage unchanged (the fastest and most accurate case).

    Parameters
    ----------
    dose_grid : GridSpec
    contour_xy_bounds_mm : (xmin, xmax, ymin, ymax) or None
    plane_z_mm : ndarray
        All contour plane z of all ROIs (mm).
    nominal_spacing_mm : float or None
    max_pixel_mm : float, optional
        Refine the in-plane lattice to at most this pixel size (mm).
    """
    nz, ny, nx = dose_grid.shape_zyx
    cx, cy, cz = dose_grid.corner_mm
    dxd, dyd, dzd = dose_grid.spacing_xyz_mm
    fx = max(1, math.ceil(dxd / max_pixel_mm - 1e-9)) if max_pixel_mm else 1
    fy = max(1, math.ceil(dyd / max_pixel_mm - 1e-9)) if max_pixel_mm else 1
    dx, dy = dxd / fx, dyd / fy
    lo = [cx, cy]
    hi = [cx + nx * dxd, cy + ny * dyd]
    if contour_xy_bounds_mm is not None:
        xmin, xmax, ymin, ymax = contour_xy_bounds_mm
        if xmin < lo[0]:
            lo[0] = xmin - dx
        if ymin < lo[1]:
            lo[1] = ymin - dy
        if xmax > hi[0]:
            hi[0] = xmax + dx
        if ymax > hi[1]:
            hi[1] = ymax + dy
    i0 = math.floor((lo[0] - cx) / dx + 1e-6)
    i1 = math.ceil((hi[0] - cx) / dx - 1e-6)
    j0 = math.floor((lo[1] - cy) / dy + 1e-6)
    j1 = math.ceil((hi[1] - cy) / dy - 1e-6)
    z = np.sort(np.round(np.asarray(plane_z_mm, dtype=np.float64), 3))
    z = z[np.concatenate(([True], z[1:] != z[:-1]))[:z.size]]   # np.unique, without importing numpy.ma
    zlo, zhi = cz, cz + nz * dzd
    if nominal_spacing_mm and z.size and _regular(z, nominal_spacing_mm):
        dz = float(nominal_spacing_mm)
        edge0 = float(z[0]) - dz / 2
        if abs(dz - dzd) < 1e-3 * dzd and _regular(np.array([edge0, cz]), dz):
            edge0 = cz                           # the planes are on the dose grid's z lattice
        zlo, zhi = min(zlo, z[0] - dz / 2), max(zhi, z[-1] + dz / 2)
    else:
        dz = dzd
        edge0 = cz
        if z.size:
            half = 0.5 * (nominal_spacing_mm or dzd)
            zlo, zhi = min(zlo, z[0] - half), max(zhi, z[-1] + half)
    k0 = math.floor((zlo - edge0) / dz + 0.01)   # 1 % of a slice: contour z are often rounded
    k1 = math.ceil((zhi - edge0) / dz - 0.01)
    return GridSpec(corner_mm=(float(cx + i0 * dx), float(cy + j0 * dy), float(edge0 + k0 * dz)),
                    spacing_xyz_mm=(float(dx), float(dy), float(dz)),
                    shape_zyx=(int(k1 - k0), int(j1 - j0), int(i1 - i0)))
