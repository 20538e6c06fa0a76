"""The scripting bridge: current objects, ``CompositeAction`` (undo step), progress.

State lives in one :class:`_Session` object; the module-level instance is created
empty at import (no I/O, no patient) and filled by ``mock_tps.load_phantom`` or
``mock_tps.load_patient_data``.
"""
from __future__ import annotations

import copy
import logging
import time
from types import TracebackType
from typing import Any, Dict, List, Optional, Tuple, Type

from ._api import ApiObject, Collection

__all__ = [
    "get_current",
    "CompositeAction",
    "set_progress",
    "await_user_input",
    "is_gui_disabled",
    "stop_if_no_gui",
]

logger = logging.getLogger(__name__)

_CURRENT_TYPES = ("Patient", "Case", "Plan", "BeamSet", "Examination", "PatientModel")
_DATABASE_TYPES = ("PatientDB", "MachineDB", "ClinicDB", "ui")


class _Session:
    """What is loaded and current, plus mock-only counters."""

    def __init__(self) -> None:
        self.patient: Any = None
        self.case: Any = None
        self.plan: Any = None
        self.beam_set: Any = None
        self.examination: Any = None
        self.composite_depth = 0
        self.stats: Dict[str, float] = {}
        from ._versions import DEFAULT_RS_VERSION, RS_VERSIONS
        self.profile = RS_VERSIONS[DEFAULT_RS_VERSION]
        self.gui = False
        self.databases: Dict[str, Any] = {}

    def count(self, key: str, amount: float = 1.0) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + amount


_SESSION = _Session()


def _session() -> _Session:
    return _SESSION


def get_current(objectType: str) -> Any:  # noqa: N803 - RayStation's argument name
    """Return the current object of a type, as ``connect.get_current``.

    Parameters
    ----------
    objectType : {'Patient', 'Case', 'Plan', 'BeamSet', 'Examination', 'PatientModel',
                  'PatientDB', 'MachineDB', 'ClinicDB', 'ui'}

    Raises
    ------
    SystemError
        When nothing is loaded, when no object of that type is current, or for an
        unknown type.
    Exception
        ``get_current('ui')`` when the GUI is disabled (the mock's default, as a
        RayStation run without GUI): "get_current(ui) has been disabled because the
        script is running with no GUI." (the bridge's ``stop_if_no_gui`` message).
    """
    s = _SESSION
    if objectType == "ui":
        stop_if_no_gui("get_current(" + objectType + ")")
    if s.patient is None:
        raise SystemError(f"No patient loaded: cannot get current '{objectType}'.")
    if objectType in _DATABASE_TYPES:
        return s.databases[objectType]
    if objectType not in _CURRENT_TYPES:
        raise SystemError(f"get_current('{objectType}'): unknown object type; "
                          f"known: {', '.join(_CURRENT_TYPES + _DATABASE_TYPES)}.")
    obj = {
        "Patient": s.patient,
        "Case": s.case,
        "Plan": s.plan,
        "BeamSet": s.beam_set,
        "Examination": s.examination,
        "PatientModel": None if s.case is None else s.case.PatientModel,
    }[objectType]
    if obj is None:
        raise SystemError(f"No current '{objectType}' is selected.")
    return obj


def is_gui_disabled() -> bool:
    """True unless the patient was loaded with ``gui=True`` (the default: no GUI)."""
    return not _SESSION.gui


def stop_if_no_gui(methodName: str = "") -> None:  # noqa: N803 - RayStation's argument name
    """Raise ``Exception`` when the GUI is disabled, as RayStation's bridge does."""
    if is_gui_disabled():
        raise Exception(f"{methodName} has been disabled because the script is running with no GUI.")


def set_progress(message: str, percentage: float = -1, operation: Optional[str] = None) -> None:
    """Report progress (logged at INFO).

    Raises
    ------
    ValueError
        If ``percentage`` is outside −1…100 (−1 means "unknown").
    """
    if not -1 <= percentage <= 100:
        raise ValueError(f"percentage must be in -1...100, got {percentage!r}")
    logger.info("progress %s%%: %s%s", percentage, message, f" ({operation})" if operation else "")


def await_user_input(message: str) -> None:
    """With a GUI (``gui=True``): logs the message and returns at once (nobody to wait
    for).  Without: raises as RayStation's bridge does (``stop_if_no_gui``)."""
    stop_if_no_gui("await_user_input")
    logger.info("await_user_input: %s", message)


# --------------------------------------------------------------------------------
# Snapshot and rollback
# --------------------------------------------------------------------------------
def _reachable_objects(root: Any, stop: Tuple[Any, ...] = ()) -> List[Any]:
    """Every mutable object (API objects, collections) reachable from ``root``,
    not walking through the objects in ``stop``."""
    seen: Dict[int, Any] = {id(x): x for x in stop}
    order: List[Any] = []
    stack = [root]
    while stack:
        x = stack.pop()
        if isinstance(x, (ApiObject, Collection)):
            if id(x) in seen:
                continue
            seen[id(x)] = x
            order.append(x)
            stack.extend(x.__dict__.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return order


def _take_snapshot(root: Any) -> Tuple[List[Any], List[Any]]:
    """Deep-copy the state of every object reachable from ``root``.

    Big immutable values sit in :class:`mock_tps._api.Shared` holders, which
    deep-copy to themselves and are therefore shared, not copied.
    """
    originals = _reachable_objects(root)
    backups = copy.deepcopy(originals)
    return originals, backups


def _restore_snapshot(snap: Tuple[List[Any], List[Any]]) -> None:
    """Restore every original object *in place* (script references stay valid).

    Objects created after the snapshot become unreferenced; objects deleted after
    it are back in their collections.
    """
    originals, backups = snap
    memo: Dict[int, Any] = {id(b): o for b, o in zip(backups, originals)}
    new_states = [copy.deepcopy(b.__dict__, memo) for b in backups]
    for o, state in zip(originals, new_states):
        o.__dict__.clear()
        o.__dict__.update(state)


class CompositeAction:
    """Group the changes of a block into one undo step, as RayStation's ``CompositeAction``.

    On entry the patient's mutable state is snapshotted.  An exception raised
    inside the block rolls back every change to the patient (objects held by the
    script are restored in place) and is re-raised.  A successful block keeps its
    changes.

    Nesting: as in RayStation, an inner ``CompositeAction`` joins the outer one
    (there is one undo step).  The inner block takes no snapshot: an exception that
    the script catches between the inner and the outer block rolls nothing back;
    if it leaves the outermost block, everything since the outer entry is undone.

    Parameters
    ----------
    name : str
        The undo step's name (logged).
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._snapshot: Optional[Tuple[List[Any], List[Any]]] = None
        self._current: Tuple[Any, ...] = ()
        self._outer = False

    def __enter__(self) -> "CompositeAction":
        s = _SESSION
        self._outer = s.composite_depth == 0
        s.composite_depth += 1
        if self._outer and s.patient is not None:
            t0 = time.perf_counter()
            self._snapshot = _take_snapshot(s.patient)
            self._current = (s.case, s.plan, s.beam_set, s.examination)
            s.count("composite_snapshot_seconds", time.perf_counter() - t0)
        s.count("composite_actions")
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> bool:
        s = _SESSION
        s.composite_depth -= 1
        if exc_type is not None and self._outer and self._snapshot is not None:
            logger.warning("CompositeAction '%s' failed (%s); rolling back.", self.name, exc_type.__name__)
            _restore_snapshot(self._snapshot)
            s.case, s.plan, s.beam_set, s.examination = self._current
            s.count("composite_rollbacks")
        self._snapshot = None
        return False
