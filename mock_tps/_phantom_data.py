"""Plain data a phantom builder hands to the mock object model.

This is the contract between the phantom/dose-engine side of ``mock_tps`` (which
makes anatomy, CT numbers, influence matrices and prior-course doses) and the
object model (which wraps them in RayStation-like objects).  Everything here is in
millimetres and gray; the object model converts to centimetres and cGy at its API.

Array conventions
-----------------
All 3-D arrays are shaped ``(nz, ny, nx)`` (x fastest, C order), as RayStation's
``DoseData``.  A flattened voxel index is ``ix + nx * (iy + ny * iz)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class GridSpec:
    """A regular, axis-aligned voxel grid in DICOM patient coordinates.

    Attributes
    ----------
    corner_mm : tuple of float, (x, y, z), mm
        Outer corner of voxel (0, 0, 0), i.e. its centre minus half a voxel, as
        RayStation's ``InDoseGrid.Corner`` (which is in cm).
    spacing_xyz_mm : tuple of float, (dx, dy, dz), mm
    shape_zyx : tuple of int, (nz, ny, nx)
    """

    corner_mm: Tuple[float, float, float]
    spacing_xyz_mm: Tuple[float, float, float]
    shape_zyx: Tuple[int, int, int]

    @property
    def n_voxels(self) -> int:
        nz, ny, nx = self.shape_zyx
        return int(nz * ny * nx)

    def centres_mm(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """1-D voxel-centre coordinates ``(x, y, z)`` in mm."""
        nz, ny, nx = self.shape_zyx
        x = self.corner_mm[0] + (np.arange(nx) + 0.5) * self.spacing_xyz_mm[0]
        y = self.corner_mm[1] + (np.arange(ny) + 0.5) * self.spacing_xyz_mm[1]
        z = self.corner_mm[2] + (np.arange(nz) + 0.5) * self.spacing_xyz_mm[2]
        return x, y, z


@dataclass(frozen=True)
class RoiSpec:
    """One region of interest of a phantom.

    Attributes
    ----------
    name : str
        Clinical name, e.g. ``"SpinalCord_PRV"``.
    roi_type : str
        RayStation ``Type``: 'External', 'Ptv', 'Ctv', 'Gtv', 'Organ', 'Avoidance', 'Control', ...
    organ_type : str
        RayStation ``OrganData.OrganType``: 'Target', 'OrganAtRisk', 'Other'.
    mask : ndarray, shape (nz, ny, nx), float32 in [0, 1], or None
        Fractional coverage of each voxel of the phantom's CT grid; None when
        ``planes`` are given and the coverage is to be voxelized on first use.
    color : str
    planes : tuple of (z_mm, tuple of ndarray (n, 2)), optional
        Contours (mm): the ROI's primary shape, voxelized by the RTSTRUCT rule
        (:mod:`mock_tps._dicom_voxelize`) on every grid the scripts ask for and
        written as they are by the DICOM export; ``mask``, when also given, must be
        their voxelization on the CT grid.  None for a voxel-only ROI.
    plane_spacing_mm : float, optional
        Nominal spacing of the contour planes (end caps, gaps), mm; default the CT
        slice spacing.
    """

    name: str
    roi_type: str
    organ_type: str
    mask: Optional[np.ndarray]
    color: str = "Yellow"
    planes: Optional[Tuple[Tuple[float, Tuple[np.ndarray, ...]], ...]] = None
    plane_spacing_mm: Optional[float] = None


@dataclass(frozen=True)
class BeamSpec:
    """One static photon beam (VMAT is approximated by equi-spaced beams)."""

    name: str
    gantry_deg: float
    couch_deg: float
    collimator_deg: float
    isocenter_mm: Tuple[float, float, float]


@dataclass(frozen=True)
class PriorCourseSpec:
    """A prior course's physical dose, mapped onto the planning CT.

    Attributes
    ----------
    name : str
        The evaluation dose's name as a planner would type it, e.g.
        ``"Prior EBRT 60Gy/30fx"``.  RayStation cannot tell a mapped dose's
        fraction count; the plug-in reads it from the name or its configuration.
    dose_gy : ndarray, shape of ``grid.shape_zyx``, Gy
        Total physical dose of the whole course.
    grid : GridSpec
    fractions : int
    treatment_date : str
        ISO date of the course's last fraction (synthetic).
    """

    name: str
    dose_gy: np.ndarray
    grid: GridSpec
    fractions: int
    treatment_date: str = ""


@dataclass(frozen=True)
class PhantomData:
    """Everything ``mock_tps.load_phantom`` needs to build a loaded patient.

    Attributes
    ----------
    influence_gy : scipy.sparse matrix, shape (dose_grid.n_voxels, n_beamlets)
        Dose in Gy **per fraction** per unit beamlet weight, rows in flattened
        (z, y, x) order of ``dose_grid``.
    beamlet_beam_index : ndarray of int, shape (n_beamlets,)
        Index into ``beams`` of each beamlet.
    prescription_gy, fractions, target_roi : the SBRT prescription (24 Gy, 2 fx, PTVeval).
    plan_dose_gy : ndarray, shape dose_grid.shape_zyx, Gy, optional
        Total planned dose (all fractions) of a plan that has a dose but no beam
        model (imported from DICOM).  With it, ``influence_gy`` may be None: the
        beam set's ``FractionDose`` is ``plan_dose_gy / fractions`` (in cGy) and
        ``RunOptimization``/``ComputeDose`` refuse.  ``prescription_gy`` may then
        be None (no prescription) and ``target_roi`` None or any ROI.
    frame_of_reference_uid : str, optional
        The examination's ``EquipmentInfo.FrameOfReference``; default: a UID made
        from ``name``.
    patient_position : str
        The examination's ``PatientPosition`` ('HFS', 'FFS', 'HFP', 'FFP').
    """

    name: str
    params: Dict[str, Any]
    ct_grid: GridSpec
    ct_hu: np.ndarray
    rois: Tuple[RoiSpec, ...]
    dose_grid: GridSpec
    beams: Tuple[BeamSpec, ...]
    influence_gy: Any
    beamlet_beam_index: np.ndarray
    prior_courses: Tuple[PriorCourseSpec, ...]
    prescription_gy: Optional[float] = 24.0
    fractions: int = 2
    target_roi: Optional[str] = "PTVeval"
    patient_name: str = "Phantom^Synthetic"
    patient_id: str = "PHANTOM-0001"
    notes: Optional[str] = field(default=None)
    plan_dose_gy: Optional[np.ndarray] = None
    frame_of_reference_uid: Optional[str] = None
    patient_position: str = "HFS"
