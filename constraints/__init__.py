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
"""
from .accumulate import course_bed, cumulative_bed, cumulative_eqd2
from .dose_course import DoseCourse
from .dvh import Dvh, compute_dvh
from .dvh_subvoxel import SubvoxelDvh, compute_subvoxel_dvh
from .evaluation import ConstraintResult, Evaluation, GoalResult, PlanCase, dose_table, evaluate_protocol
from .eligibility import CaseFacts, EligibilityResult, assess_eligibility
from .errors import (
    DicomImportError,
    GridMismatchError,
    InfeasibleError,
    InputError,
    NotEvaluableError,
    ProtocolError,
    ReirradError,
    TpsStateError,
)
from .grid import Grid
from .lq import bed, bed_from_eqd2, dose_from_bed, dose_from_eqd2, eqd2, eqd2_from_bed
from .metric import Metric, parse_metric
from .protocol import Protocol, RoiMatch, builtin_protocols, load_protocol, match_roi_names
from .structure import Structure

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
