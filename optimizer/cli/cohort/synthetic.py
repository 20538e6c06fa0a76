"""A synthetic cohort written as DICOM: variants of the four phantoms, so everything runs without patient data.

Each patient is a built-in phantom (:data:`mock_tps._phantoms.PHANTOM_BUILDERS`: C3,
C7–T1, T4–T5, T8) at the coarse size (4 mm CT, 5 mm dose grid, 10 mm beamlets)
with what the builders expose drawn from a seeded generator:

- the level: the four phantoms in turn, in a shuffled order;
- the esophagus gap: the phantom's default or 2 mm more;
- the prior courses: total dose drawn per phantom (2 Gy fractions; T8: both
  palliative courses scaled by 0.8–1.2); in half the patients a recovery of
  0.1–0.25 on the aorta, stated in ``reirrad.toml`` as a per-organ table (the
  protocol refuses recovery on the cord and the esophagus, whose cumulative
  limits were derived from doses summed without it);
- in one patient of six the prior dose grid misses the superior third of the SBRT
  dose grid, with ``unknown_prior = "organ_max"`` in ``reirrad.toml`` (otherwise
  the assessment refuses that patient, as it must).

The target's extent is fixed by each phantom's anatomy (no builder parameter).  The
SBRT plan is the one the planner made against the SBRT-only constraints
(``initial_plan="sbrt_only"``: the mock TPS optimizer), exported with
:func:`mock_tps.dicom_export.export_patient`; the plan RTDOSE is then made to
reference its RTPLAN, as a planning system exports it (:mod:`.layout`).  A new
anatomy (phantom × gap) costs one dose-engine run (about a minute on 2 cores,
cached in ``~/.cache/reirrad`` after that).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from constraints.errors import InputError

__all__ = ["COARSE", "SyntheticPatient", "synthetic_specs", "write_patient"]

#: The phantoms' coarse size (as ``reirrad demo --coarse``).
COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}
#: phantom → (default esophagus gap mm, prior dose range Gy (total, 2 Gy fractions) or None for T8)
_VARIANTS: Dict[str, Tuple[float, Any]] = {
    "c3_cervical": (2.0, (46.0, 56.0)),
    "c7t1_head_neck": (0.0, (60.0, 70.0)),
    "t4t5_esophageal": (0.0, (50.0, 66.0)),
    "t8_two_courses": (3.0, None),
}
_GAP_STEPS_MM = (0.0, 2.0)
#: The organ a synthetic prior course's recovery applies to.
RECOVERY_ORGAN = "aorta"


@dataclass(frozen=True)
class SyntheticPatient:
    """One synthetic patient: folder name, phantom builder's parameters, recovery on :data:`RECOVERY_ORGAN`."""

    patient_id: str
    phantom: str
    params: Tuple[Tuple[str, Any], ...]
    recovery: float
    unknown_prior: str


def synthetic_specs(n: int, seed: int) -> List[SyntheticPatient]:
    """``n`` patients drawn with ``seed`` (same arguments, same cohort).

    Raises
    ------
    constraints.errors.InputError
        ``n`` not in [1, 10000] or ``seed`` negative.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10000:
        raise InputError(f"--synthetic must be a patient count in [1, 10000], got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    names = sorted(_VARIANTS)
    order = [names[i] for i in np.concatenate([rng.permutation(4) for _ in range((n + 3) // 4)])[:n]]
    out = []
    for k, name in enumerate(order):
        gap0, dose_range = _VARIANTS[name]
        params: Dict[str, Any] = dict(COARSE, esophagus_gap_mm=gap0 + float(rng.choice(_GAP_STEPS_MM)))
        if dose_range is None:
            scale = float(rng.uniform(0.8, 1.2))
            params["prior_dose_gy"] = (round(30.0 * scale / 3.0) * 3.0, round(20.0 * scale / 4.0) * 4.0)
            params["prior_fractions"] = (10, 5)
        else:
            dose = float(2 * rng.integers(int(dose_range[0] / 2), int(dose_range[1] / 2) + 1))
            params["prior_dose_gy"], params["prior_fractions"] = dose, int(dose / 2)
        covers = bool(rng.random() >= 1.0 / 6.0)
        params["prior_covers_oars"] = covers
        recovery = 0.0 if rng.random() < 0.5 else round(float(rng.uniform(0.1, 0.25)), 2)
        out.append(SyntheticPatient(f"P{k + 1:04d}", name, tuple(sorted(params.items())), recovery,
                                    "refuse" if covers else "organ_max"))
    return out


def _toml(spec: SyntheticPatient, priors: List[Tuple[str, int, str, float]]) -> str:
    lines = ["# synthetic patient: phantom " + spec.phantom,
             "# " + ", ".join(f"{k} = {v}" for k, v in spec.params),
             f'unknown_prior = "{spec.unknown_prior}"', ""]
    for fname, fx, date, total in priors:
        rec = f"{{ {RECOVERY_ORGAN} = {spec.recovery:g} }}" if spec.recovery else "0"
        lines += ["[[prior]]", f'name = "{fname}"', f"fractions = {fx}", f"recovery = {rec}"]
        lines += [f"total_gy = {total:g}"] if total is not None else []
        lines += [f'date = "{date}"', ""] if date else [""]
    return "\n".join(lines)


def _reference_plan(rtdose: str, rtplan: str) -> None:
    """Make the plan RTDOSE reference its RTPLAN (ReferencedRTPlanSequence), as a TPS exports it."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    plan = pydicom.dcmread(rtplan, stop_before_pixels=True)
    ds = pydicom.dcmread(rtdose)
    ref = Dataset()
    ref.ReferencedSOPClassUID = plan.SOPClassUID
    ref.ReferencedSOPInstanceUID = plan.SOPInstanceUID
    ds.ReferencedRTPlanSequence = Sequence([ref])
    ds.save_as(rtdose)


def write_patient(spec: SyntheticPatient, out_dir: str) -> Dict[str, Any]:
    """Build, plan and export one synthetic patient into ``<out_dir>/<patient_id>`` (written whole or not at all).

    Returns
    -------
    dict
        ``patient``, ``phantom``, ``params``, ``folder``.
    """
    import mock_tps
    from constraints.dose_course import total_from_name
    from mock_tps._phantoms import build_phantom
    from mock_tps.dicom_export import export_patient

    final = os.path.join(out_dir, spec.patient_id)
    tmp = os.path.join(out_dir, f".tmp-{spec.patient_id}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    data = build_phantom(spec.phantom, **dict(spec.params))
    try:
        try:
            mock_tps.load_patient_data(data, initial_plan="sbrt_only")
            files = export_patient(tmp)
        finally:
            mock_tps.unload()
        _reference_plan(str(files.plan_dose), str(files.rtplan))
        if len(files.priors) != len(data.prior_courses):
            raise InputError(f"{spec.patient_id}: {len(data.prior_courses)} prior courses but {len(files.priors)} "
                             "exported")
        priors = [(os.path.basename(str(p)), course.fractions, course.treatment_date, total_from_name(course.name))
                  for (p, _), course in zip(files.priors, data.prior_courses)]
        with open(os.path.join(tmp, "reirrad.toml"), "w", encoding="utf-8") as fh:
            fh.write(_toml(spec, priors))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"patient": spec.patient_id, "phantom": spec.phantom, "params": dict(spec.params), "folder": final}

