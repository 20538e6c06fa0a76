"""A phantom's FMO case: built, loaded into ``mock_tps`` and gathered by the TPS scripts' adapter.

A phantom enters the neutral model the one way everything does (DESIGN §4): it is loaded into
``mock_tps`` and read through :func:`tps_scripts.adapter.gather` (ROI masks on the dose grid,
prior courses resampled onto it).  It lives with the CLI, the layer above both the optimizer and
the TPS scripts (``tests/test_layering.py``).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from constraints.errors import InputError
from constraints.protocol import Protocol
from optimizer.fmo_case import FmoCase

__all__ = ["case_from_phantom", "case_from_phantom_data"]


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
