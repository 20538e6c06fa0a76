"""The seed study's eligibility criteria and treatment algorithm (Koide et al. 2024,
Methods "Patient selection criteria" and Fig. 1) as a function.

Entry gates, each met, failed or unknown (a fact not given is never assumed):

* prior EBRT ≥ 50 Gy2 EQD2 to the target spine ("cumulative prior EBRT dose ≥ 50 Gy
  to the target spines");
* initial EBRT "more than 6 months before": strictly > 6 months;
* "expected to survive for at least the next three months": ≥ 3 months;
* no prior SBRT at the current target spine ("Patients previously receiving SBRT at
  the current target spine ... were excluded");
* cord tolerance left: a prior that exhausts the cumulative cord PRV limit (Sahgal
  2012, in the protocol) leaves no SBRT dose.

Then Fig. 1: Bilsky 0–1b → SBRT alone; Bilsky 1c–3 → decompression/separation
(± stabilization) then SBRT; SINS ≥ 9 → stabilization (± decompression) then SBRT;
surgery indicated but not possible → SBRT alone, flagged (all four such patients of
the seed failed locally early, median 3.7 months).  The seed's risk factors for
severe esophageal toxicity (Discussion: chemotherapy use, re-irradiation, iatrogenic
esophageal manipulation; the TRD patient had active recurrent esophageal cancer with
a mediastinal tumour; shorter intervals raise the risk) are asked and reported as
warnings, or as unknown.  Thresholds come from the protocol file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .dose_course import interval_months
from .errors import InputError, ReirradError
from .lq import _bed
from .protocol import BILSKY_GRADES, Protocol

__all__ = ["CaseFacts", "EligibilityResult", "PlanEvidence", "PriorCourseEvidence", "assess_eligibility",
           "plan_evidence", "RISK_FACTORS"]

#: fact name → words (the seed's esophageal risk factors)
RISK_FACTORS = {
    "chemotherapy": "concurrent or recent chemotherapy",
    "active_esophageal_or_mediastinal_tumor": "active esophageal or mediastinal tumour",
    "esophageal_instrumentation": "esophageal instrumentation (stent, dilation, biopsy)",
}


def _number(name, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
    return v


def _flag(name, v):
    if v is not None and not isinstance(v, bool):
        raise InputError(f"{name} must be true or false, got {v!r}")
    return v


@dataclass(frozen=True)
class CaseFacts:
    """What the clinician knows about the patient; ``None`` = not given (unknown).

    Attributes
    ----------
    prior_eqd2_gy : float, optional
        Prior EBRT dose to the target spine, EQD2 (α/β 2), Gy.
    interval_months : float, optional
        Months since the last prior EBRT fraction (course dates, where known, are used too).
    expected_survival_months : float, optional
    bilsky_grade : {'0', '1a', '1b', '1c', '2', '3'}, optional
    sins : int 0–18, optional
        Spinal Instability Neoplastic Score.
    surgery_possible : bool, optional
        Whether decompression/stabilization is medically possible.
    chemotherapy, active_esophageal_or_mediastinal_tumor, esophageal_instrumentation : bool, optional
        The seed's esophageal risk factors.
    prior_sbrt_same_level : bool, optional
        A prior SBRT course at the current target spine (a seed exclusion).
    """

    prior_eqd2_gy: Optional[float] = None
    interval_months: Optional[float] = None
    expected_survival_months: Optional[float] = None
    bilsky_grade: Optional[str] = None
    sins: Optional[int] = None
    surgery_possible: Optional[bool] = None
    chemotherapy: Optional[bool] = None
    active_esophageal_or_mediastinal_tumor: Optional[bool] = None
    esophageal_instrumentation: Optional[bool] = None
    prior_sbrt_same_level: Optional[bool] = None

    def __post_init__(self) -> None:
        for name in ("prior_eqd2_gy", "interval_months", "expected_survival_months"):
            _number(name, getattr(self, name))
        if self.bilsky_grade is not None:
            if str(self.bilsky_grade) not in BILSKY_GRADES:
                raise InputError(f"bilsky_grade must be one of {list(BILSKY_GRADES)}, got {self.bilsky_grade!r}")
            object.__setattr__(self, "bilsky_grade", str(self.bilsky_grade))
        if self.sins is not None and (isinstance(self.sins, bool) or not isinstance(self.sins, int)
                                      or not 0 <= self.sins <= 18):
            raise InputError(f"sins must be an integer 0-18, got {self.sins!r}")
        for name in ("surgery_possible", "prior_sbrt_same_level") + tuple(RISK_FACTORS):
            _flag(name, getattr(self, name))


@dataclass(frozen=True)
class PriorCourseEvidence:
    """One prior course as the plan shows it in the target region."""

    label: str
    fractions: int
    max_target_dose_gy: float

    @property
    def max_gy_per_fraction(self) -> float:
        return self.max_target_dose_gy / self.fractions


@dataclass(frozen=True)
class PlanEvidence:
    """Facts measured on the plan (see :func:`plan_evidence`).

    Attributes
    ----------
    interval_months : float or None
        From the course dates (None: some date unknown).
    prior_target_eqd2_gy : float or None
        Median over the target of the voxel-wise prior EQD2 (α/β of the criteria).
    priors : tuple of PriorCourseEvidence
    cord : BindingLimit or None
        The cord rule at the plan's prior (None: the protocol has none / not evaluable).
    cord_error : str
    """

    interval_months: Optional[float]
    prior_target_eqd2_gy: Optional[float]
    priors: Tuple[PriorCourseEvidence, ...]
    cord: object = None
    cord_error: str = ""


def plan_evidence(case, protocol: Protocol) -> PlanEvidence:
    """Measure the eligibility facts a plan can give (``case``: a PlanCase)."""
    from .evaluation import table_limit  # late: evaluation imports this package's modules

    target = case.structures.get(protocol.prescription.target)
    targets = [target] if target is not None else [s for k, s in case.structures.items()
                                                   if protocol.organs[k].kind == "target"]
    inside = np.zeros(case.grid.shape_zyx, dtype=bool)
    for t in targets:
        inside |= t.mask > 0
    priors = []
    eqd2 = None
    if case.priors and inside.any():
        for p in case.priors:
            d = p.dose_gy[inside]
            priors.append(PriorCourseEvidence(p.label, p.fractions,
                                              float(np.nanmax(d)) if np.isfinite(d).any() else float("nan")))
        ab = protocol.eligibility.prior_alpha_beta_gy
        # the prior dose as delivered (no recovery): sum of each course's BED, voxel by voxel
        values = sum(_bed(p.dose_gy[inside], p.fractions, ab) for p in case.priors) / (1.0 + 2.0 / ab)
        if np.isfinite(values).all():
            eqd2 = float(np.median(values))
    cord, err = None, ""
    for c in protocol.constraints:
        if c.limit_table is not None and protocol.rule_for(c) is not None and not c.advisory:
            try:
                cord = table_limit(case, protocol, c)[0]
            except ReirradError as exc:
                err = str(exc)
            break
    return PlanEvidence(interval_months(case.priors, case.sbrt), eqd2, tuple(priors), cord, err)


@dataclass(frozen=True)
class EligibilityResult:
    """Outcome of the criteria and the algorithm.

    Attributes
    ----------
    eligible : bool
        True only when every entry criterion is known to be met.
    recommendation : str
        'not eligible', 'undetermined' (a criterion is unknown), or the Fig. 1 route:
        'SBRT alone', 'decompression/separation then SBRT', 'stabilization then SBRT',
        'decompression/separation and stabilization then SBRT',
        'SBRT alone (surgery indicated but not possible)', or 'route unknown (...)'.
    reasons : tuple of str
        Each criterion checked and its outcome, in words.
    warnings : tuple of str
    unknown : tuple of str
        Facts not given (listed, never assumed).
    status : {'eligible', 'not eligible', 'undetermined'}
    route : str
        The Fig. 1 route (or 'route unknown (...)'), whatever the status.
    """

    eligible: bool
    recommendation: str
    reasons: Tuple[str, ...]
    warnings: Tuple[str, ...]
    unknown: Tuple[str, ...] = ()
    status: str = ""
    route: str = ""


def assess_eligibility(facts: Optional[CaseFacts], protocol: Protocol,
                       evidence: Optional[PlanEvidence] = None) -> EligibilityResult:
    """Apply the protocol's eligibility criteria and treatment algorithm.

    Parameters
    ----------
    facts : CaseFacts or None
        What the clinician gave (None: nothing).
    protocol : Protocol
    evidence : PlanEvidence, optional
        What the plan shows (:func:`plan_evidence`); without it, the cord check and
        the prior-SBRT detection are unknown.

    Examples
    --------
    The seed's fatal case: 60 Gy/30 fx (60 Gy2 EQD2), 7.8 months, Bilsky 1b, SINS 5,
    chemoradiotherapy, recurrent esophageal cancer

    >>> from constraints.protocol import load_protocol
    >>> f = CaseFacts(60, 7.8, 6, "1b", 5, chemotherapy=True, prior_sbrt_same_level=False)
    >>> r = assess_eligibility(f, load_protocol("koide2024"))
    >>> r.status, r.route
    ('undetermined', 'SBRT alone')
    """
    f = facts if facts is not None else CaseFacts()
    c = protocol.eligibility
    reasons: List[str] = []
    warnings: List[str] = []
    unknown: List[str] = []
    failed = False

    # prior EBRT dose to the target spine
    prior = f.prior_eqd2_gy
    source = "given"
    if prior is None and evidence is not None and evidence.prior_target_eqd2_gy is not None:
        prior, source = evidence.prior_target_eqd2_gy, "median prior EQD2 in the target from the plan's prior doses"
    if prior is None:
        unknown.append("prior_eqd2_gy")
        reasons.append(f"prior EBRT dose to the target spine: unknown (needs >= {c.min_prior_eqd2_gy:g} Gy EQD2)")
    elif prior >= c.min_prior_eqd2_gy:
        reasons.append(f"prior EBRT {prior:.1f} Gy EQD2 (a/b {c.prior_alpha_beta_gy:g}; {source}) >= "
                       f"{c.min_prior_eqd2_gy:g}: within the protocol's population")
    else:
        failed = True
        reasons.append(f"prior EBRT {prior:.1f} Gy EQD2 ({source}) < {c.min_prior_eqd2_gy:g}: outside this protocol "
                       "(it is for high-dose prior EBRT); use a standard re-irradiation protocol")

    # interval: strictly more than the protocol's months (seed: "more than 6 months before")
    interval, source = f.interval_months, "given"
    dated = evidence.interval_months if evidence is not None else None
    if dated is not None:
        if interval is not None and abs(interval - dated) > 0.5:
            warnings.append(f"interval given as {interval:g} months but the course dates give {dated:.2f}: "
                            "the shorter is used")
        if interval is None or dated < interval:
            interval, source = dated, "from the course dates"
    if interval is None:
        unknown.append("interval_months")
        reasons.append(f"interval since the last prior course: unknown (give course dates or interval_months; "
                       f"needs > {c.min_interval_months:g} months)")
    elif interval > c.min_interval_months:
        reasons.append(f"interval {interval:.2f} months ({source}) > {c.min_interval_months:g}")
    else:
        failed = True
        reasons.append(f"interval {interval:.2f} months ({source}) is not more than {c.min_interval_months:g}: "
                       "not eligible")

    if f.expected_survival_months is None:
        unknown.append("expected_survival_months")
        reasons.append(f"expected survival: unknown (needs >= {c.min_expected_survival_months:g} months)")
    elif f.expected_survival_months >= c.min_expected_survival_months:
        reasons.append(f"expected survival {f.expected_survival_months:g} months >= "
                       f"{c.min_expected_survival_months:g}")
    else:
        failed = True
        reasons.append(f"expected survival {f.expected_survival_months:g} months < "
                       f"{c.min_expected_survival_months:g}: not eligible")

    failed |= _prior_sbrt(f, c.prior_sbrt_min_gy_per_fraction, evidence, reasons, warnings, unknown)
    failed |= _cord(evidence, reasons, unknown)

    for name, words in RISK_FACTORS.items():
        v = getattr(f, name)
        if v is None:
            unknown.append(name)
        elif v:
            warnings.append(f"esophageal risk factor: {words} (seed: associated with severe esophageal toxicity)")

    route = _route(f, c, reasons, warnings, unknown)
    if failed:
        status, rec = "not eligible", "not eligible"
    elif any(u in unknown for u in ("prior_eqd2_gy", "interval_months", "expected_survival_months",
                                    "prior_sbrt_same_level", "cord_tolerance")):
        status, rec = "undetermined", "undetermined"
    else:
        status, rec = "eligible", route
    return EligibilityResult(status == "eligible", rec, tuple(reasons), tuple(warnings), tuple(unknown), status,
                             route)


def _prior_sbrt(f: CaseFacts, threshold_gy: float, evidence: Optional[PlanEvidence], reasons, warnings,
                unknown) -> bool:
    """Prior SBRT at this level: the fact, or a prior course at >= threshold Gy per fraction at its
    maximum in the target.  Returns True when it excludes the patient."""
    hot = [p for p in (evidence.priors if evidence is not None else ())
           if np.isfinite(p.max_target_dose_gy) and p.max_gy_per_fraction >= threshold_gy]
    detected = "; ".join(f"{p.label!r}: {p.max_target_dose_gy:.1f} Gy in {p.fractions} fx at its maximum in the "
                         f"target = {p.max_gy_per_fraction:.2f} Gy/fx >= {threshold_gy:g}" for p in hot)
    if f.prior_sbrt_same_level is True:
        reasons.append("prior SBRT at the current target spine (given): excluded by the seed study; not eligible")
        return True
    if f.prior_sbrt_same_level is False:
        if hot:
            warnings.append(f"prior_sbrt_same_level = false given, but a prior course looks like SBRT ({detected}); "
                            "the given fact is used")
        reasons.append("no prior SBRT at the current target spine (given)")
        return False
    if hot:
        reasons.append(f"prior SBRT at the current target spine detected ({detected}): excluded by the seed study; "
                       "not eligible (if the course was conventional, set prior_sbrt_same_level = false)")
        return True
    unknown.append("prior_sbrt_same_level")
    reasons.append("prior SBRT at the current target spine: unknown" + (
        " (no prior course reaches >= %g Gy/fx in the target; give prior_sbrt_same_level)" % threshold_gy
        if evidence is not None and evidence.priors else ""))
    return False


def _cord(evidence: Optional[PlanEvidence], reasons, unknown) -> bool:
    b = evidence.cord if evidence is not None else None
    if b is None:
        unknown.append("cord_tolerance")
        why = evidence.cord_error if evidence is not None and evidence.cord_error else "no plan evaluated"
        reasons.append(f"cord PRV tolerance left: unknown ({why})")
        return False
    if b.exhausted:
        reasons.append(f"cord PRV prior {b.prior_bed_gy:.1f} Gy2 BED reaches the cumulative cord limit "
                       f"({b.rule}; candidates: " + ", ".join(f"{k} {v:.2f} Gy" for k, v in b.candidates.items()
                                                              if v is not None)
                       + "): no SBRT dose allowed to the cord; not eligible")
        return True
    reasons.append(f"cord PRV prior {b.prior_bed_gy:.1f} Gy2 BED: SBRT-only limit {b.limit_gy:.2f} Gy ({b.rule})")
    return False


def _route(f: CaseFacts, c, reasons, warnings, unknown) -> str:
    missing = [n for n in ("bilsky_grade", "sins") if getattr(f, n) is None]
    if missing:
        unknown.extend(missing)
        return f"route unknown (give {', '.join(missing)})"
    high_bilsky = f.bilsky_grade in c.high_grade_bilsky
    unstable = f.sins >= c.unstable_sins_at_least
    reasons.append(f"Bilsky {f.bilsky_grade}: " + ("high grade, decompression/separation indicated"
                                                   if high_bilsky else "low grade"))
    reasons.append(f"SINS {f.sins}: " + (f">= {c.unstable_sins_at_least}, stabilization indicated"
                                         if unstable else f"< {c.unstable_sins_at_least}, stable enough"))
    if not (high_bilsky or unstable):
        return "SBRT alone"
    if f.surgery_possible is None:
        unknown.append("surgery_possible")
        return "surgery indicated; route unknown (give surgery_possible)"
    if not f.surgery_possible:
        warnings.append("surgery indicated but not possible: in the seed study all four such patients "
                        "had early local failure (median 3.7 months)")
        return "SBRT alone (surgery indicated but not possible)"
    if high_bilsky and unstable:
        return "decompression/separation and stabilization then SBRT"
    if high_bilsky:
        return "decompression/separation then SBRT"
    return "stabilization then SBRT"
