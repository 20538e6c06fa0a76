"""What is allowed: the neutral dose model, LQ biology, DVH metrics, protocols, evaluation.

Numpy is the only third-party import of this package (plus ``tomli`` on Python < 3.11
to read protocol files), and it runs on CPython 3.8 (RayStation 11B-2024A).

Public API
----------
Neutral model : :class:`Grid`, :class:`Structure`, :class:`DoseCourse`
LQ biology    : :func:`bed`, :func:`eqd2`, :func:`dose_from_bed`, :func:`dose_from_eqd2`,
                :func:`eqd2_from_bed`, :func:`bed_from_eqd2`
Accumulation  : :func:`course_bed`, :func:`cumulative_bed`, :func:`cumulative_eqd2`
DVH           : :func:`compute_dvh`, :class:`Dvh`, :func:`parse_metric`, :class:`Metric`;
                sub-voxel DVH of ``reirrad dvh``: :func:`compute_subvoxel_dvh`, :class:`SubvoxelDvh`
Protocols     : :func:`load_protocol`, :func:`builtin_protocols`, :class:`Protocol`,
                :func:`match_roi_names`
Eligibility   : :class:`CaseFacts`, :func:`assess_eligibility`
Evaluation    : :class:`PlanCase`, :func:`evaluate_protocol`, :func:`dose_table`
Errors        : :class:`ReirradError` and subclasses (``constraints.errors``)

The names are imported from their modules when first used (PEP 562), so that a
program needing one module (``reirrad dvh`` needs the sub-voxel DVH, not the
protocols) does not import the others.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, List

#: Public name -> the module of this package that defines it.
_EXPORTS: Dict[str, str] = {
    "course_bed": "accumulate", "cumulative_bed": "accumulate", "cumulative_eqd2": "accumulate",
    "DoseCourse": "dose_course",
    "Dvh": "dvh", "compute_dvh": "dvh",
    "SubvoxelDvh": "dvh_subvoxel", "compute_subvoxel_dvh": "dvh_subvoxel",
    "ConstraintResult": "evaluation", "Evaluation": "evaluation", "GoalResult": "evaluation",
    "PlanCase": "evaluation", "dose_table": "evaluation", "evaluate_protocol": "evaluation",
    "CaseFacts": "eligibility", "EligibilityResult": "eligibility", "assess_eligibility": "eligibility",
    "DicomImportError": "errors", "GridMismatchError": "errors", "InfeasibleError": "errors",
    "InputError": "errors", "NotEvaluableError": "errors", "ProtocolError": "errors",
    "ReirradError": "errors", "TpsStateError": "errors",
    "Grid": "grid",
    "bed": "lq", "bed_from_eqd2": "lq", "dose_from_bed": "lq", "dose_from_eqd2": "lq", "eqd2": "lq",
    "eqd2_from_bed": "lq",
    "Metric": "metric", "parse_metric": "metric",
    "Protocol": "protocol", "RoiMatch": "protocol", "builtin_protocols": "protocol", "load_protocol": "protocol",
    "match_roi_names": "protocol",
    "Structure": "structure",
}

__all__ = [
    "Grid", "Structure", "DoseCourse",
    "bed", "eqd2", "dose_from_bed", "dose_from_eqd2", "eqd2_from_bed", "bed_from_eqd2",
    "course_bed", "cumulative_bed", "cumulative_eqd2",
    "Dvh", "compute_dvh", "SubvoxelDvh", "compute_subvoxel_dvh", "Metric", "parse_metric",
    "Protocol", "RoiMatch", "load_protocol", "builtin_protocols", "match_roi_names",
    "CaseFacts", "EligibilityResult", "assess_eligibility",
    "PlanCase", "Evaluation", "ConstraintResult", "GoalResult", "evaluate_protocol", "dose_table",
    "ReirradError", "InputError", "GridMismatchError", "ProtocolError", "NotEvaluableError",
    "InfeasibleError", "TpsStateError", "DicomImportError",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
