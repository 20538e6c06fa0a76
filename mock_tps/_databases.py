"""``get_current('PatientDB' | 'MachineDB' | 'ClinicDB' | 'ui')``: as far as scripts read them.

- PatientDB: ``QueryPatientInfo(Filter={'PatientID': ..., 'LastName': ...})`` returns a
  list of patient-info dicts (the mock's database holds the loaded patient only);
  ``LoadPatient(PatientInfo=, AllowPatientUpgrade=)`` makes it current again.
- MachineDB: ``GetTreatmentMachine(machineName=, lockMode=None)`` and
  ``QueryCommissionedMachineInfo(Filter=)`` for the one machine the phantoms use.
- ClinicDB: an object with no members the mock models (scripts read it only for
  templates, which the mock does not have).
- ui: ``GetApplicationVersion()`` (the profile's application version, e.g. '12.0.0.0'
  for 11B), plus a navigation stand-in: any attribute or index gives a child element
  whose ``Click()`` / ``Select()`` record the path in ``session.ui_log`` and do nothing
  else (the mock has no GUI to drive).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ._api import ApiObject, ArgumentException, ExpandoDictionary, api_method

__all__ = ["PatientDB", "MachineDB", "ClinicDB", "Ui", "Machine", "MACHINE_NAME"]

#: The machine name of the phantoms' beams (``BeamSet.MachineReference.MachineName``).
MACHINE_NAME = "MockLinac 6MV"


class PatientDB(ApiObject):
    """``get_current('PatientDB')``."""

    def __init__(self, patient: Any) -> None:
        self._patient = patient

    def _info(self) -> Dict[str, Any]:
        last, _, first = self._patient.Name.partition("^")
        return {"PatientID": self._patient.PatientID, "LastName": last, "FirstName": first,
                "Name": self._patient.Name}

    @api_method
    def QueryPatientInfo(self, Filter: Mapping[str, Any], UseIndexService: bool = False) -> List[Any]:  # noqa: N802,N803
        """Patient infos matching every key of ``Filter`` (exact match; '*' matches all)."""
        if not isinstance(Filter, Mapping):
            raise ArgumentException(f"Filter must be a dict, got {type(Filter).__name__}")
        info = self._info()
        for k, v in Filter.items():
            if k not in info:
                raise ArgumentException(f"Unknown filter key '{k}'; known: {', '.join(info)}.")
            if v not in ("*", info[k]):
                return []
        return [ExpandoDictionary(info)]

    @api_method
    def LoadPatient(self, PatientInfo: Mapping[str, Any], AllowPatientUpgrade: bool = False) -> Any:  # noqa: N802,N803
        """Make the patient of ``PatientInfo`` current (its first case, plan and beam set)."""
        if dict(PatientInfo).get("PatientID") != self._patient.PatientID:
            raise ArgumentException(f"No patient with PatientID {dict(PatientInfo).get('PatientID')!r} "
                                    "in the database.")
        from ._bridge import _session
        s = _session()
        s.patient = self._patient
        self._patient.Cases[0].SetCurrent()
        return self._patient


class Machine(ApiObject):
    """``MachineDB.GetTreatmentMachine(...)``: name and kind of the phantoms' machine."""

    def __init__(self, name: str) -> None:
        self._init(Name=name, Modality="Photons")


class MachineDB(ApiObject):
    """``get_current('MachineDB')``."""

    def __init__(self) -> None:
        self._machine = Machine(MACHINE_NAME)

    @api_method
    def GetTreatmentMachine(self, machineName: str, lockMode: Optional[str] = None) -> Machine:  # noqa: N802,N803
        if machineName != MACHINE_NAME:
            raise ArgumentException(f"No treatment machine named '{machineName}'; known: {MACHINE_NAME}.")
        return self._machine

    @api_method
    def QueryCommissionedMachineInfo(self, Filter: Mapping[str, Any]) -> List[Any]:  # noqa: N802,N803
        """One info dict (``Name``, ``IsCommissioned`` True, ``IsDeprecated`` False) if it matches."""
        info = {"Name": MACHINE_NAME, "IsCommissioned": True, "IsDeprecated": False}
        for k, v in dict(Filter).items():
            if k in info and info[k] != v:
                return []
        return [ExpandoDictionary(info)]


class ClinicDB(ApiObject):
    """``get_current('ClinicDB')``: present; the mock has no clinic templates."""


class _UiElement:
    """A GUI element stand-in: any attribute or index is a child; ``Click``/``Select`` record."""

    def __init__(self, path: str, log: List[str]) -> None:
        self._path = path
        self._log = log

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _UiElement(f"{self._path}.{name}", self._log)

    def __getitem__(self, key: Any) -> Any:
        return _UiElement(f"{self._path}[{key!r}]", self._log)

    def Click(self) -> None:  # noqa: N802
        self._log.append(f"{self._path}.Click()")

    def Select(self) -> None:  # noqa: N802
        self._log.append(f"{self._path}.Select()")


class Ui(_UiElement):
    """``get_current('ui')`` (only with a GUI: ``load_phantom(..., gui=True)``)."""

    def __init__(self, application_version: str) -> None:
        super().__init__("ui", [])
        self._version = application_version

    def GetApplicationVersion(self) -> str:  # noqa: N802
        """The running version as 'major.minor.build.revision' (11B: '12.0.0.0')."""
        return self._version
