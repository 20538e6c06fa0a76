"""A cohort folder: one sub-folder per patient, its DICOM files sorted by what they are.

Rule for a patient folder (any depth; file names free; hidden files ignored):

- CT images (Modality CT): one series, all in one folder (optional: without it the
  examination is synthetic, as for ``reirrad assess`` without ``--ct``);
- exactly one RTSTRUCT and one RTPLAN (the SBRT plan: fraction count, prescription);
- RTDOSEs: the SBRT plan dose is the one whose ``ReferencedRTPlanSequence`` names the
  RTPLAN (as a planning system exports it); every other RTDOSE is a prior course —
  none is dropped, none is guessed;
- at most one REG (rigid registration of priors on another frame of reference);
- optionally ``reirrad.toml`` (or ``reirrad.json``) in the plug-in's configuration
  format (:mod:`tps_scripts.config`).  A ``[[prior]]`` entry names a prior RTDOSE by
  its file name, its file stem or its SeriesDescription and gives its fraction
  count, recovery and date.  A prior without an entry takes the fraction count its
  SeriesDescription states (``"Prior EBRT 60Gy/30fx"``, the plug-in's naming rule);
  one with neither is refused, and so is an entry that names no file.

Every refusal is a :class:`~constraints.errors.ReirradError` naming the patient
folder, the file and what to do; in a cohort it becomes that patient's error row.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple, Union

from constraints.errors import DicomImportError, InputError

__all__ = ["PriorFile", "PatientInputs", "list_patients", "content_sha256", "read_patient", "CONFIG_NAMES"]

#: Configuration file names looked for in a patient folder, in this order.
CONFIG_NAMES = ("reirrad.toml", "reirrad.json")


@dataclass(frozen=True)
class PriorFile:
    """One prior course's RTDOSE with what the import needs.

    Attributes
    ----------
    path : str
    name : str
        Its evaluation dose's name in the mock TPS (the configuration entry's name,
        or the file's SeriesDescription).
    fractions : int
    recovery : float or mapping of organ key to float
        In [0, 1), as the configuration states it (every organ, or per organ).
    date : str or None
        ISO date of the course, from the configuration.
    entry : tps_scripts.config.PriorConfig or None
        The configuration entry (total dose, registration uncertainty, ...), or None
        when the SeriesDescription states the course.
    """

    path: str
    name: str
    fractions: int
    recovery: Union[float, Mapping[str, float]]
    date: Optional[str] = None
    entry: Any = None


@dataclass(frozen=True)
class PatientInputs:
    """The files of one patient, sorted (see the module doc)."""

    patient_id: str
    folder: str
    ct_dir: Optional[str]
    rtstruct: str
    rtplan: str
    plan_dose: str
    priors: Tuple[PriorFile, ...]
    registration: Optional[str]
    config_path: Optional[str]


def list_patients(root: str) -> List[str]:
    """Patient folders of a cohort folder (non-hidden sub-folders, sorted by name).

    Raises
    ------
    constraints.errors.InputError
        ``root`` is not a folder or holds no patient folder.
    """
    if not os.path.isdir(root):
        raise InputError(f"--patients {root!r} is not a folder")
    names = sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))
    if not names:
        raise InputError(f"--patients {root!r} holds no patient folder (one sub-folder per patient)")
    return [os.path.join(root, n) for n in names]


def _files(folder: str) -> List[str]:
    out = []
    for base, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(os.path.join(base, f) for f in sorted(files) if not f.startswith("."))
    return out


def content_sha256(folder: str) -> str:
    """SHA-256 over every file of ``folder`` (relative path and bytes, sorted): the patient's inputs."""
    h = hashlib.sha256()
    for path in _files(folder):
        h.update(os.path.relpath(path, folder).replace(os.sep, "/").encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _header(path: str):
    """The DICOM header of ``path`` (no pixel data), or None when it is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt file: pydicom raises several classes
        raise DicomImportError(f"{path!r} cannot be read (corrupt DICOM: {type(exc).__name__}: {exc}); "
                               "export the file again") from None


def _one(found: List[str], what: str, folder: str, required: bool = True) -> Optional[str]:
    if len(found) > 1:
        raise DicomImportError(f"patient folder {folder!r} holds {len(found)} {what} files "
                               f"({', '.join(os.path.basename(f) for f in found)}); keep one")
    if not found:
        if required:
            raise DicomImportError(f"patient folder {folder!r} holds no {what} file")
        return None
    return found[0]


def read_patient(folder: str) -> PatientInputs:
    """Sort the files of one patient folder (see the module doc).

    Raises
    ------
    constraints.errors.DicomImportError
        A missing, duplicated or unreadable file, or a prior course whose fraction
        count is unknown.
    constraints.errors.InputError
        A malformed configuration file.
    """
    from tps_scripts.adapter import fractions_from_name
    from tps_scripts.config import load_config

    folder = os.path.abspath(folder)
    config_path = next((os.path.join(folder, n) for n in CONFIG_NAMES if os.path.isfile(os.path.join(folder, n))),
                       None)
    by_modality: dict = {}
    headers = {}
    for path in _files(folder):
        if config_path is not None and path == config_path:
            continue
        ds = _header(path)
        if ds is None:
            if path.lower().endswith(".dcm"):
                raise DicomImportError(f"{path!r} is not a DICOM file (no 'DICM' preamble); export it again")
            continue
        modality = str(ds.get("Modality", "")).upper()
        by_modality.setdefault(modality, []).append(path)
        headers[path] = ds
    ct_dirs = sorted({os.path.dirname(p) for p in by_modality.get("CT", [])})
    if len(ct_dirs) > 1:
        raise DicomImportError(f"patient folder {folder!r}: CT images in {len(ct_dirs)} folders "
                               f"({', '.join(os.path.relpath(d, folder) for d in ct_dirs)}); "
                               "keep one series in one folder")
    rtstruct = _one(by_modality.get("RTSTRUCT", []), "RTSTRUCT", folder)
    rtplan = _one(by_modality.get("RTPLAN", []), "RTPLAN", folder)
    registration = _one(by_modality.get("REG", []), "REG", folder, required=False)
    plan_uid = str(headers[rtplan].get("SOPInstanceUID", ""))
    doses = by_modality.get("RTDOSE", [])
    plan_doses = [d for d in doses if plan_uid and any(
        str(r.get("ReferencedSOPInstanceUID", "")) == plan_uid for r in headers[d].get("ReferencedRTPlanSequence", []))]
    if len(plan_doses) != 1:
        raise DicomImportError(
            f"patient folder {folder!r}: {len(plan_doses)} of {len(doses)} RTDOSE files reference the RTPLAN "
            f"{os.path.basename(rtplan)!r}; the SBRT plan dose must be the one RTDOSE that does (export the plan "
            "dose with its plan)")
    config = load_config(config_path) if config_path else None
    entries = list(config.priors) if config is not None else []
    used = set()
    priors = []
    for path in sorted(d for d in doses if d != plan_doses[0]):
        desc = str(headers[path].get("SeriesDescription", "") or "")
        keys = {os.path.basename(path), Path(path).stem, desc}
        match = [e for e in entries if e.name in keys]
        if len(match) > 1:
            raise InputError(f"configuration {config_path!r}: {len(match)} [[prior]] entries name "
                             f"{os.path.basename(path)!r}; keep one")
        if match:
            e = match[0]
            used.add(e.name)
            priors.append(PriorFile(path, e.name, e.fractions, e.recovery, e.date.isoformat() if e.date else None, e))
            continue
        fx = fractions_from_name(desc)
        if fx is None:
            raise DicomImportError(
                f"prior RTDOSE {path!r}: its fraction count is unknown (SeriesDescription {desc!r} states none); "
                f"list it in {CONFIG_NAMES[0]} as [[prior]] name = {os.path.basename(path)!r} fractions = N")
        priors.append(PriorFile(path, desc, fx, 0.0))
    unused = [e.name for e in entries if e.name not in used]
    if unused:
        raise InputError(f"configuration {config_path!r}: [[prior]] {unused} name(s) no prior RTDOSE in "
                         f"{folder!r}; a listed course must have its dose file")
    return PatientInputs(os.path.basename(folder), folder, ct_dirs[0] if ct_dirs else None, rtstruct, rtplan,
                         plan_doses[0], tuple(priors), registration, config_path)
