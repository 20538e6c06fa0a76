"""Inputs of an offline FMO run: the plan case on the dose grid plus its influence matrix.

A phantom's case is gathered through the mock TPS by :mod:`optimizer.cli.phantom_case` (the
layer above the TPS scripts); this module is the optimizer's side, which imports neither.
The influence matrix rows are the same flattened (z, y, x) dose-grid voxels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from constraints.evaluation import PlanCase
from constraints.protocol import Protocol

__all__ = ["FmoCase", "falloff_limit_gy"]


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
