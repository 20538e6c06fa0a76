"""RayStation version profiles: which API names, argument spellings and members a version has.

A profile is chosen when a patient is loaded (``mock_tps.load_phantom(name,
rs_version='11B')``).  Every API method and every version-dependent attribute of
the mock asks the current profile whether it exists: a member the version lacks
raises ``AttributeError`` (so ``hasattr`` answers as in that version), an
argument the version lacks raises :class:`mock_tps._api.ScriptArgumentError`.

The evidence for each difference (public scripts with their stated versions,
the public type stubs of the RayStation 2025 API) is tabulated in
``mock_tps/API_VERSIONS.md``.  Application version numbers follow public scripts
that branch on ``ui.GetApplicationVersion()``: 10B is 10.1, 11A is 11, 11B is 12
("boolean flags for setup change in 11B" under ``version >= 12``), 12A is 13;
2023B = 15, 2024A = 16, 2024B = 17 and 2025 = 18 are inferred (see the table).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, Tuple

__all__ = ["RsVersion", "RS_VERSIONS", "DEFAULT_RS_VERSION", "get_profile"]


@dataclass(frozen=True)
class RsVersion:
    """What scripts see of one RayStation version.

    Attributes
    ----------
    name : str
        RaySearch's release name ('11B', '2025').
    application_version : str
        ``get_current('ui').GetApplicationVersion()`` and
        ``ModificationInfo.SoftwareVersion`` of objects the version saves.
    python_version : str
        The CPython of the version's scripting environment (informative; the mock
        runs on the interpreter it is given).
    module_name : str
        The scripting module: 'connect' (up to 2024B) or 'raystation' (2025).
    absent_arguments : mapping of str to frozenset of str
        ``'Class.Method'`` → arguments the mock method declares that this version lacks.
    absent_members : frozenset of str
        ``'Class.Member'`` (methods and attributes) this version lacks.
    """

    name: str
    application_version: str
    python_version: str
    module_name: str
    absent_arguments: Mapping[str, FrozenSet[str]]
    absent_members: FrozenSet[str]

    @property
    def major(self) -> int:
        """Application major version (11B → 12), as public scripts compute it."""
        return int(self.application_version.split(".")[0])

    def lacks(self, key: str) -> bool:
        return key in self.absent_members


#: (name, application version, Python, module) in release order.
_RELEASES: Tuple[Tuple[str, str, str, str], ...] = (
    ("10B", "10.1.0.0", "3.6", "connect"),
    ("11B", "12.0.0.0", "3.8", "connect"),
    ("12A", "13.0.0.0", "3.8", "connect"),
    ("2023B", "15.0.0.0", "3.8", "connect"),
    ("2024A", "16.0.0.0", "3.8", "connect"),
    ("2024B", "17.0.0.0", "3.11", "connect"),
    ("2025", "18.0.0.0", "3.11", "raystation"),
)
_ORDER = {name: i for i, (name, *_rest) in enumerate(_RELEASES)}


def _since(name: str, first: str) -> bool:
    return _ORDER[name] >= _ORDER[first]


def _build(name: str, app: str, python: str, module: str) -> RsVersion:
    args: Dict[str, FrozenSet[str]] = {}
    members = set()
    # Clinical goals: AcceptanceLevel up to 2023B, Primary/SecondaryAcceptanceLevel from 2024A.
    goal_new = _since(name, "2024A")
    goal_absent = {"AcceptanceLevel"} if goal_new else {"PrimaryAcceptanceLevel", "SecondaryAcceptanceLevel"}
    if not _since(name, "11B"):
        goal_absent |= {"AssociateToPlan", "BeamSet"}
    args["EvaluationSetup.AddClinicalGoal"] = frozenset(goal_absent)
    members |= ({"PlanningGoal.AcceptanceLevel"} if goal_new
                else {"PlanningGoal.PrimaryAcceptanceLevel", "PlanningGoal.SecondaryAcceptanceLevel"})
    # Optimization functions: RestrictToBeam up to 12A, RestrictToBeams from 2023B.
    args["PlanOptimization.AddOptimizationFunction"] = frozenset(
        {"RestrictToBeam"} if _since(name, "2023B") else {"RestrictToBeams"})
    # ComputeDose: only RunEntryValidation from 2024B.
    if _since(name, "2024B"):
        args["BeamSet.ComputeDose"] = frozenset({"ComputeBeamDoses", "DoseAlgorithm", "ForceRecompute"})
    # InterpolateDoseInPoint(PointFrameOfReference=): a public script of 13.1 (12A) uses it.
    if not _since(name, "12A"):
        args["DoseDistribution.InterpolateDoseInPoint"] = frozenset({"PointFrameOfReference"})
        args["DoseDistribution.InterpolateDoseInPoints"] = frozenset({"PointsFrameOfReference"})
    # Prescriptions: the 11A rename (PrimaryDosePrescription → PrimaryPrescriptionDoseReference).
    if _since(name, "11B"):
        members |= {"Prescription.PrimaryDosePrescription", "BeamSet.NormalizeToPrescription",
                    "BeamSet.AddDosePrescriptionToRoi"}
    else:
        members |= {"Prescription.PrimaryPrescriptionDoseReference",
                    "BeamSet.ScaleToPrimaryPrescriptionDoseReference", "BeamSet.AddRoiPrescriptionDoseReference"}
    # Reference doses: AddReferenceOptimizationFunction and AddCustomEvaluationDose are in the
    # 2025 stubs; no public script of an older version uses them (absent before 2025, inferred).
    if not _since(name, "2025"):
        members |= {"PlanOptimization.AddReferenceOptimizationFunction", "Case.AddCustomEvaluationDose"}
    # Goal types and function types every profile has; nothing else differs in the mock.
    return RsVersion(name=name, application_version=app, python_version=python, module_name=module,
                     absent_arguments=args, absent_members=frozenset(members))


#: The version profiles, by release name.
RS_VERSIONS: Dict[str, RsVersion] = {r[0]: _build(*r) for r in _RELEASES}
#: The profile used when none is asked for.
DEFAULT_RS_VERSION = "2024A"


def get_profile(name: str) -> RsVersion:
    """The profile named ``name``; ``KeyError``-free: raises ValueError naming the known ones."""
    try:
        return RS_VERSIONS[str(name)]
    except KeyError:
        raise ValueError(f"unknown RayStation version {name!r}; mock_tps models "
                         f"{', '.join(RS_VERSIONS)}") from None
