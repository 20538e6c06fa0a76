"""The exception tree of reirrad.

Every error this project raises on purpose derives from :class:`ReirradError`, so a
caller (the CLI, a RayStation script) can tell "our documented refusal" from a bug.
Subclasses mix in the built-in class a Python user would expect (``ValueError`` for
bad input, ``RuntimeError`` for a state that forbids the action).

Messages name the input, the value received, what was expected and, where there is
one, the next step.
"""
from __future__ import annotations

__all__ = [
    "ReirradError",
    "InputError",
    "GridMismatchError",
    "ProtocolError",
    "NotEvaluableError",
    "InfeasibleError",
    "TpsStateError",
    "DicomImportError",
]


class ReirradError(Exception):
    """Root of every error reirrad raises on purpose."""


class InputError(ReirradError, ValueError):
    """An argument has a wrong value, type or shape (non-finite dose, α/β ≤ 0, ...)."""


class GridMismatchError(InputError):
    """Arrays or objects that must share one voxel grid do not."""


class ProtocolError(InputError):
    """A protocol file or entry is malformed, or names something unknown."""


class NotEvaluableError(ReirradError, ValueError):
    """A metric cannot be computed from the data given (e.g. D2cc of a 1 cc organ)."""


class InfeasibleError(ReirradError, RuntimeError):
    """No plan or limit satisfies the constraints asked for."""


class TpsStateError(ReirradError, RuntimeError):
    """The planning system is in a state that forbids the action (no plan loaded,
    approved plan, no dose computed, ...)."""


class DicomImportError(InputError):
    """A DICOM file cannot be imported as asked (wrong modality, units, geometry, ...)."""
