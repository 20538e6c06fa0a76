"""The seed study's treatment algorithm (Koide et al. 2024, Fig. 1) as a function.

Eligibility for re-irradiation SBRT: prior EBRT ≥ 50 Gy2 EQD2 to the target spine,
≥ 6 months since it, expected survival ≥ 3 months.  Then: Bilsky 0–1b → SBRT
alone; Bilsky 1c–3 → decompression/separation (± stabilization) then SBRT; SINS ≥ 9
→ stabilization (± decompression) then SBRT; surgery indicated but not possible →
SBRT alone, flagged (all four such patients of the seed failed locally early,
median 3.7 months).  The thresholds come from the protocol file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

from .errors import InputError
from .protocol import BILSKY_GRADES, Protocol

__all__ = ["CaseFacts", "EligibilityResult", "assess_eligibility"]


@dataclass(frozen=True)
class CaseFacts:
    """What the algorithm needs to know about the patient.

    Attributes
    ----------
    prior_eqd2_gy : float
        Prior EBRT dose to the target spine, EQD2 (α/β 2), Gy.
    interval_months : float
        Time since the last prior EBRT fraction.
    expected_survival_months : float
    bilsky_grade : {'0', '1a', '1b', '1c', '2', '3'}
    sins : int, 0–18
        Spinal Instability Neoplastic Score.
    surgery_possible : bool
        Whether decompression/stabilization is medically possible.
    """

    prior_eqd2_gy: float
    interval_months: float
    expected_survival_months: float
    bilsky_grade: str
    sins: int
    surgery_possible: bool = True

    def __post_init__(self) -> None:
        for field in ("prior_eqd2_gy", "interval_months", "expected_survival_months"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"{field} must be a finite number >= 0, got {v!r}")
        if str(self.bilsky_grade) not in BILSKY_GRADES:
            raise InputError(f"bilsky_grade must be one of {list(BILSKY_GRADES)}, got {self.bilsky_grade!r}")
        object.__setattr__(self, "bilsky_grade", str(self.bilsky_grade))
        if isinstance(self.sins, bool) or not isinstance(self.sins, int) or not 0 <= self.sins <= 18:
            raise InputError(f"sins must be an integer 0-18, got {self.sins!r}")
        if not isinstance(self.surgery_possible, bool):
            raise InputError(f"surgery_possible must be true or false, got {self.surgery_possible!r}")


@dataclass(frozen=True)
class EligibilityResult:
    """Outcome of the algorithm.

    Attributes
    ----------
    eligible : bool
        The patient meets the study's entry criteria for re-irradiation SBRT.
    recommendation : str
        One of 'not eligible', 'SBRT alone', 'decompression/separation then SBRT',
        'stabilization then SBRT', 'decompression/separation and stabilization then SBRT',
        'SBRT alone (surgery indicated but not possible)'.
    reasons : tuple of str
        Each criterion checked and its outcome, in words.
    warnings : tuple of str
    """

    eligible: bool
    recommendation: str
    reasons: Tuple[str, ...]
    warnings: Tuple[str, ...]


def assess_eligibility(facts: CaseFacts, protocol: Protocol) -> EligibilityResult:
    """Apply the protocol's eligibility criteria and treatment algorithm to ``facts``.

    Examples
    --------
    The seed's fatal case: 60 Gy/30 fx (60 Gy2 EQD2), 7.8 months, Bilsky 1b, SINS 5

    >>> from constraints.protocol import load_protocol
    >>> r = assess_eligibility(CaseFacts(60, 7.8, 6, "1b", 5), load_protocol("koide2024"))
    >>> r.eligible, r.recommendation
    (True, 'SBRT alone')
    """
    c = protocol.eligibility
    reasons = []
    warnings = []
    ok = True
    if facts.prior_eqd2_gy >= c.min_prior_eqd2_gy:
        reasons.append(f"prior EBRT {facts.prior_eqd2_gy:g} Gy EQD2 (a/b {c.prior_alpha_beta_gy:g}) >= "
                       f"{c.min_prior_eqd2_gy:g}: within the protocol's population")
    else:
        ok = False
        reasons.append(f"prior EBRT {facts.prior_eqd2_gy:g} Gy EQD2 < {c.min_prior_eqd2_gy:g}: outside this "
                       "protocol (it is for high-dose prior EBRT); use a standard re-irradiation protocol")
    if facts.interval_months >= c.min_interval_months:
        reasons.append(f"interval {facts.interval_months:g} months >= {c.min_interval_months:g}")
    else:
        ok = False
        reasons.append(f"interval {facts.interval_months:g} months < {c.min_interval_months:g}: not eligible")
    if facts.expected_survival_months >= c.min_expected_survival_months:
        reasons.append(f"expected survival {facts.expected_survival_months:g} months >= "
                       f"{c.min_expected_survival_months:g}")
    else:
        ok = False
        reasons.append(f"expected survival {facts.expected_survival_months:g} months < "
                       f"{c.min_expected_survival_months:g}: not eligible")
    if not ok:
        return EligibilityResult(False, "not eligible", tuple(reasons), ())

    high_bilsky = facts.bilsky_grade in c.high_grade_bilsky
    unstable = facts.sins >= c.unstable_sins_at_least
    reasons.append(f"Bilsky {facts.bilsky_grade}: " + ("high grade, decompression/separation indicated"
                                                       if high_bilsky else "low grade"))
    reasons.append(f"SINS {facts.sins}: " + (f">= {c.unstable_sins_at_least}, stabilization indicated"
                                             if unstable else f"< {c.unstable_sins_at_least}, stable enough"))
    if not (high_bilsky or unstable):
        return EligibilityResult(True, "SBRT alone", tuple(reasons), ())
    if not facts.surgery_possible:
        warnings.append("surgery indicated but not possible: in the seed study all four such patients "
                        "had early local failure (median 3.7 months)")
        return EligibilityResult(True, "SBRT alone (surgery indicated but not possible)", tuple(reasons),
                                 tuple(warnings))
    if high_bilsky and unstable:
        rec = "decompression/separation and stabilization then SBRT"
    elif high_bilsky:
        rec = "decompression/separation then SBRT"
    else:
        rec = "stabilization then SBRT"
    return EligibilityResult(True, rec, tuple(reasons), ())
