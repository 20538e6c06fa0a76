"""The module scripts import as ``connect`` (RayStation ≤ 2024B) or ``raystation`` (2025).

``mock_tps.load_phantom`` / ``mock_tps.load_patient_data`` install this module in
``sys.modules`` under both names, so scripts written for RayStation run unchanged::

    try:
        from raystation import *
    except ImportError:
        from connect import *
"""
from __future__ import annotations

import inspect
import json
import os
import sys
import traceback

import numpy as np

from ._api import ExpandoDictionary
from ._bridge import (CompositeAction, await_user_input, get_current, is_gui_disabled, set_progress,
                      stop_if_no_gui)

# RayStation's CPython ``connect`` has no ``__all__``: ``from connect import *`` also hands
# the script the modules the bridge imports (numpy as ``np``, ``os``, ``sys``, ``json``,
# ``inspect``, ``traceback``), and public scripts use ``np`` without importing it.
__all__ = ["get_current", "CompositeAction", "set_progress", "await_user_input", "is_gui_disabled",
           "stop_if_no_gui", "ExpandoDictionary", "np", "os", "sys", "json", "inspect", "traceback"]
