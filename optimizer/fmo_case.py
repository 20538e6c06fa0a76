"""Inputs of an offline FMO run: the plan case on the dose grid plus its influence matrix.

A phantom enters the neutral model the one way everything does (DESIGN §4): it is
loaded into ``mock_tps`` and read through :func:`tps_scripts.adapter.gather`
(ROI masks on the dose grid, prior courses resampled onto it).  The influence
matrix rows are the same flattened (z, y, x) dose-grid voxels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from constraints.errors import InputError
from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

__all__ = ["FmoCase", "case_from_phantom", "case_from_phantom_data", "falloff_limit_gy"]


@dataclass(frozen=True, eq=False)
class FmoCase:
    """A plan case (zero SBRT dose) with its beamlet influence matrix.

    Attributes
    ----------
    name : str
    case : PlanCase
        Structures and prior courses on the SBRT dose grid (SBRT dose all zero).
    influence_gy : scipy.sparse.csr_matrix, shape (case.grid.n_voxels, n_beamlets)
        Gy **per fraction** per unit beamlet weight.
    fractions : int
    prescription_gy : float, Gy total
    params : dict
        The phantom builder's parameters (for the record).
    frame_of_reference_uid : str
        The planning examination's frame of reference (for RTDOSE export).
    """

    name: str
    case: PlanCase
    influence_gy: Any
    fractions: int
    prescription_gy: float
    params: dict
    frame_of_reference_uid: str = ""


def case_from_phantom_data(data: Any, protocol: Protocol) -> FmoCase:
    """Load ``data`` (a :class:`mock_tps.PhantomData`) in the mock TPS and gather it.

    The mock session is unloaded afterwards.

    Raises
    ------
    constraints.errors.InputError, constraints.errors.TpsStateError
        As :func:`tps_scripts.adapter.gather` (missing required organs, ...).
    """
    import scipy.sparse as sp

    import mock_tps
    from mock_tps import connect as api
    from tps_scripts.adapter import gather
    from tps_scripts.config import PluginConfig

    mock_tps.load_patient_data(data, initial_plan="none")
    try:
        g = gather(api, PluginConfig(protocol=protocol.name), protocol, require_dose=False)
        frame = str(g.context.examination.EquipmentInfo.FrameOfReference)
    finally:
        mock_tps.unload()
    a = sp.csr_matrix(data.influence_gy, dtype=np.float64)
    if a.shape[0] != g.case.grid.n_voxels:
        raise InputError(f"influence matrix of {data.name!r} has {a.shape[0]} rows, the dose grid "
                         f"{g.case.grid.n_voxels} voxels")
    return FmoCase(data.name, g.case, a, int(data.fractions), float(data.prescription_gy), dict(data.params), frame)


def case_from_phantom(name: str, protocol: Protocol, *, grid_mm: Optional[float] = None, **params: Any) -> FmoCase:
    """Build phantom ``name`` (``mock_tps._phantoms.PHANTOM_BUILDERS``) and gather it.

    ``grid_mm`` sets both the CT voxel size and the dose-grid spacing (mm) when given.
    """
    from mock_tps._phantoms import build_phantom

    if grid_mm is not None:
        params.setdefault("grid_mm", grid_mm)
        params.setdefault("dose_grid_mm", grid_mm)
    return case_from_phantom_data(build_phantom(name, **params), protocol)


def falloff_limit_gy(target_mask: np.ndarray, spacing_mm: tuple, prescription_gy: float, *,
                     low_fraction: float = 0.5, falloff_mm: float = 10.0, ring_mm: float = 10.0):
    """Fall-off ring and its soft limit (RayStation ``DoseFallOff`` semantics).

    The limit falls linearly from ``R`` at the target surface to ``low_fraction · R``
    at ``falloff_mm`` and stays there out to ``ring_mm``.

    Parameters
    ----------
    target_mask : ndarray (nz, ny, nx), coverage in [0, 1]
    spacing_mm : (dx, dy, dz), mm

    Returns
    -------
    ring : ndarray of bool (nz, ny, nx)
        Voxels outside the target (coverage < 0.5) within ``ring_mm`` of it.
    limit_gy : ndarray (nz, ny, nx), Gy total (meaningful on ``ring``)
    """
    from scipy.ndimage import distance_transform_edt

    inside = np.asarray(target_mask) >= 0.5
    dist_mm = distance_transform_edt(~inside, sampling=(spacing_mm[2], spacing_mm[1], spacing_mm[0]))
    ring = (~inside) & (dist_mm <= ring_mm) & (np.asarray(target_mask) < 0.5)
    frac = np.clip(dist_mm / falloff_mm, 0.0, 1.0)
    limit = prescription_gy * (1.0 - (1.0 - low_fraction) * frac)
    return ring, limit
