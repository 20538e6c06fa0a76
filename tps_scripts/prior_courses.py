"""Prior courses in the planning system: which evaluation doses they are, and checks of their dose.

Rule (DESIGN §5, safety): every evaluation dose on the planning examination that is not
the SBRT beam set's is a prior course unless the configuration excludes it by name; a
course's fraction count and total come from the configuration or its name, never from a
guess; a mapped dose must peak near its stated total; and no organ voxel outside a
prior dose grid is assumed to have had no dose.  Runs on CPython 3.8 with numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from constraints.dose_course import fractions_from_name, total_from_name
from constraints.errors import InputError, TpsStateError
from constraints.structure import Structure

from .config import PluginConfig
from .tps_read import TpsContext

__all__ = ["PriorInfo", "FoundPrior", "PRIOR_MAX_TO_TOTAL", "find_prior_doses", "check_prior_total",
           "handle_unknown_prior"]


@dataclass(frozen=True)
class PriorInfo:
    """A prior course as found in the planning system."""

    name: str
    fractions: int
    recovery: Any               # float (every organ) or dict organ key -> float
    date: Optional[str]
    fractions_source: str      # "name" or "configuration"
    resampled: bool
    dose_digest: str
    assumed_voxels: int = 0     # voxels outside the prior grid given the organ's highest prior dose
    total_gy: Optional[float] = None        # stated total (name or configuration), Gy
    mapped_max_gy: Optional[float] = None   # maximum of the mapped dose, Gy
    uncertainty_mm: float = 0.0             # registration uncertainty radius, mm


def _evaluation_doses(case: Any, exam_name: str) -> List[Any]:
    found = []
    for fe in case.TreatmentDelivery.FractionEvaluations:
        for doe in fe.DoseOnExaminations:
            if doe.OnExamination.Name != exam_name:
                continue
            for de in doe.DoseEvaluations:
                found.append(de)
    return found


def _is_of_beam_set(dose: Any, beam_set: Any) -> bool:
    try:
        bs = dose.ForBeamSet
    except AttributeError:
        return False
    return bs is not None and getattr(bs, "DicomPlanLabel", None) == getattr(beam_set, "DicomPlanLabel", object())


#: A mapped prior dose's maximum must lie within these multiples of the course's stated total
#: (docs/decisions/prior-total-check.md): a conventional course peaks at 1.0-1.1 x its total, a
#: prior SBRT at up to 2 x (prescribed to the 50 % isodose); a per-fraction map of n >= 2
#: fractions peaks at <= hot spot / n x the total, below 0.9 for any hot spot up to 1.8.
PRIOR_MAX_TO_TOTAL = (0.9, 2.0)


@dataclass(frozen=True)
class FoundPrior:
    """A prior course among the evaluation doses, with what the name or configuration says of it."""

    dose: Any
    name: str
    fractions: int
    recovery: float
    date: Optional[str]
    fractions_source: str          # "name" or "configuration"
    total_gy: Optional[float]      # stated total (configuration, else name), Gy
    uncertainty_mm: float = 0.0


def find_prior_doses(ctx: TpsContext, config: PluginConfig) -> List[FoundPrior]:
    """Every prior course among the evaluation doses on the planning examination.

    Rule: every evaluation dose on the planning examination that is not a dose of
    the SBRT beam set is a prior course, unless the configuration excludes it by
    name (``exclude_doses``).  Without configured priors a course's fraction count
    and total are read from its name; with configured priors every such dose must
    be listed (a course left out would be silently dropped: the patient would look
    less irradiated than they are).

    Raises
    ------
    constraints.errors.InputError
        An evaluation dose without a name, or one that is neither a configured prior
        nor excluded, or an excluded/configured name that is not there.
    constraints.errors.TpsStateError
        A configured prior is not there, or a prior's fraction count is unknown.
    """
    exam = ctx.examination.Name
    doses = [d for d in _evaluation_doses(ctx.case, exam) if not _is_of_beam_set(d, ctx.beam_set)]
    unnamed = [d for d in doses if not str(getattr(d, "Name", "") or "").strip()]
    if unnamed:
        raise InputError(
            f"{len(unnamed)} evaluation dose(s) on examination {exam!r} have no name: reirrad cannot tell whether "
            "they are prior courses. Name each one like 'Prior EBRT 60Gy/30fx' (or list it under [[prior]]), "
            "or delete it if it is not a prior course; never assume it is none")
    names = [d.Name for d in doses]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"evaluation doses on examination {exam!r} share the name(s) {twice}: reirrad tells courses "
                         "apart by name. Give each evaluation dose its own name")
    named: Dict[str, Any] = {d.Name: d for d in doses}
    absent = [n for n in config.exclude_doses if n not in named]
    if absent:
        raise InputError(f"exclude_doses names {absent}, not among the evaluation doses on examination {exam!r}; "
                         f"found: {sorted(named)}")
    candidates = {n: d for n, d in named.items() if n not in set(config.exclude_doses)}
    out: List[FoundPrior] = []
    if config.priors:
        for p in config.priors:
            if p.name not in named:
                raise TpsStateError(
                    f"configured prior course {p.name!r} is not among the evaluation doses on examination "
                    f"{exam!r}; found: {sorted(named)}")
        listed = {p.name for p in config.priors}
        left = sorted(n for n in candidates if n not in listed)
        if left:
            raise InputError(
                f"evaluation dose(s) {left} on examination {exam!r} are neither configured prior courses nor "
                "excluded: every course the patient had counts. List each under [[prior]] in the configuration, "
                "or under exclude_doses if it is not a prior course (e.g. a sum or a copy of the SBRT dose)")
        for p in config.priors:
            out.append(FoundPrior(named[p.name], p.name, p.fractions, p.recovery,
                                  p.date.isoformat() if p.date else None, "configuration",
                                  p.total_gy if p.total_gy is not None else total_from_name(p.name),
                                  p.uncertainty_mm))
        return out
    for name, dose in candidates.items():
        fx = fractions_from_name(name)
        if fx is None:
            raise TpsStateError(
                f"the fraction count of evaluation dose {name!r} is unknown: RayStation does not store it for a "
                "mapped dose; name it like 'Prior 60Gy/30fx' or list it under [[prior]] in the configuration")
        out.append(FoundPrior(dose, name, fx, 0.0, None, "name", total_from_name(name)))
    return out


def check_prior_total(name: str, dose_gy: np.ndarray, total_gy: Optional[float], fractions: int) -> float:
    """Check a mapped prior dose's maximum against the course's stated total.

    Returns the maximum (Gy, over the known voxels).

    Raises
    ------
    constraints.errors.InputError
        No total stated, or the maximum outside :data:`PRIOR_MAX_TO_TOTAL` × total
        (a per-fraction map, a map of another quantity, or the wrong course).
    """
    known = dose_gy[np.isfinite(dose_gy)]
    dmax = float(known.max()) if known.size else 0.0
    if total_gy is None:
        raise InputError(
            f"prior course {name!r}: its total dose is not stated, so its mapped dose cannot be checked; name it "
            "like 'Prior EBRT 60Gy/30fx' or give total_gy under its [[prior]] in the configuration")
    lo, hi = PRIOR_MAX_TO_TOTAL
    if not lo * total_gy <= dmax <= hi * total_gy:
        per_fraction = abs(dmax - total_gy / fractions) <= 0.5 * total_gy / fractions if fractions > 1 else False
        raise InputError(
            f"prior course {name!r}: the mapped dose's maximum {dmax:.2f} Gy is {dmax / total_gy:.2f} x its stated "
            f"total {total_gy:g} Gy, outside [{lo:g}, {hi:g}] x"
            + (f" (it looks like one fraction of {fractions})" if per_fraction else "")
            + ": map the course's total physical dose (Gy) onto the planning CT, or correct the total in its name "
              "or configuration")
    return dmax


def handle_unknown_prior(dose_gy: np.ndarray, name: str, structures: Dict[str, Structure],
                          policy: str) -> Tuple[np.ndarray, int]:
    """Apply the unknown-prior policy to a resampled prior dose (NaN outside its grid).

    ``refuse``: any organ voxel outside the prior grid is an error naming the ROI.
    ``organ_max``: such voxels get the highest known prior dose of that organ (the
    highest over all organs containing the voxel); voxels in no organ stay unknown.
    """
    unknown = np.isnan(dose_gy)
    if not unknown.any():
        return dose_gy, 0
    out = dose_gy.copy()
    filled = np.zeros(dose_gy.shape, dtype=bool)
    for s in structures.values():
        inside = s.mask > 0
        hole = unknown & inside
        if not hole.any():
            continue
        if policy == "refuse":
            raise TpsStateError(
                f"prior course {name!r} does not cover ROI {s.name!r}: {int(hole.sum())} of its voxels lie outside "
                "the prior dose grid. Map the prior dose on a larger grid, or set unknown_prior = 'organ_max' in the "
                "configuration to assume the organ's highest prior dose there (never zero)")
        known = dose_gy[inside & ~unknown]
        if known.size == 0:
            raise TpsStateError(f"prior course {name!r} does not reach ROI {s.name!r} at all: its dose there is unknown")
        value = float(known.max())
        out[hole] = np.where(filled[hole], np.maximum(out[hole], value), value)
        filled |= hole
    return out, int(filled.sum())
