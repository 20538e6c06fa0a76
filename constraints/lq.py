"""Linear-quadratic (LQ) biology: BED, EQD2 and their inverses, voxel by voxel.

``D`` is always the voxel's *own* total physical dose over ``n`` fractions, never the
prescription's dose per fraction (DESIGN §2; the pitfall of DVH-based converters).

Formulas
--------
BED  = D (1 + D / (n α/β))                                  [1]
EQD2 = BED / (1 + 2 / α/β)                                   [2]
D(BED, n) = (n α/β / 2) (sqrt(1 + 4 BED / (n α/β)) − 1)      (positive root of [1])

The inverse is evaluated as ``2 BED / (1 + sqrt(1 + 4 BED / (n α/β)))``, the same
value without the cancellation of the textbook form at small BED.

References
----------
.. [1] Fowler JF. The linear-quadratic formula and progress in fractionated
   radiotherapy. Br J Radiol. 1989;62:679-694.
.. [2] Bentzen SM, Dörr W, Gahbauer R, et al. Bioeffect modeling and equieffective
   dose concepts in radiation oncology - terminology, quantities and units.
   Radiother Oncol. 2012;105:266-268.

Examples
--------
The seed study's Table 3 (Koide et al. 2024): an SBRT Dmax of 127 Gy3 BED in 2 fx

>>> round(float(dose_from_bed(127, fractions=2, alpha_beta_gy=3)), 2)
24.77
>>> round(float(bed(24.77, fractions=2, alpha_beta_gy=2)), 0)
178.0
"""
from __future__ import annotations

import numpy as np

from ._validate import alpha_beta, as_dose_array, fraction_count

__all__ = ["bed", "eqd2", "dose_from_bed", "eqd2_from_bed", "bed_from_eqd2", "dose_from_eqd2", "bed_unchecked",
           "dose_from_bed_unchecked"]


def bed(dose_gy, fractions, alpha_beta_gy):
    """Biologically effective dose of a total physical dose given in ``fractions``.

    Parameters
    ----------
    dose_gy : float or ndarray, Gy
        Total physical dose of the course in each voxel (≥ 0, finite).
    fractions : int
        Number of fractions of that course (≥ 1).
    alpha_beta_gy : float, Gy
        α/β ratio of the tissue (> 0).

    Returns
    -------
    float or ndarray, Gy (BED for that α/β)
        ``D (1 + D / (n α/β))``; same shape as ``dose_gy``.

    Raises
    ------
    constraints.errors.InputError
        For a non-finite or negative dose, fractions < 1 or non-integer, α/β ≤ 0.

    Examples
    --------
    >>> float(bed(50.0, fractions=25, alpha_beta_gy=2))  # Nieder 2006
    100.0
    >>> round(float(bed(60.0, fractions=30, alpha_beta_gy=3)), 9)
    100.0
    """
    d = as_dose_array(dose_gy, "dose_gy")
    n = fraction_count(fractions)
    ab = alpha_beta(alpha_beta_gy)
    return _bed(d, n, ab)


def eqd2(dose_gy, fractions, alpha_beta_gy):
    """Equieffective dose in 2-Gy fractions, ``BED / (1 + 2/α/β)``.

    Parameters and errors as :func:`bed`.

    Examples
    --------
    >>> float(eqd2(50.0, fractions=25, alpha_beta_gy=4))
    50.0
    """
    d = as_dose_array(dose_gy, "dose_gy")
    n = fraction_count(fractions)
    ab = alpha_beta(alpha_beta_gy)
    return _bed(d, n, ab) / (1.0 + 2.0 / ab)


def dose_from_bed(bed_gy, fractions, alpha_beta_gy):
    """Total physical dose in ``fractions`` equal fractions that yields ``bed_gy``.

    Parameters
    ----------
    bed_gy : float or ndarray, Gy (BED)
        Target BED (≥ 0, finite).
    fractions : int
    alpha_beta_gy : float, Gy

    Returns
    -------
    float or ndarray, Gy
        ``(n α/β / 2)(sqrt(1 + 4 BED/(n α/β)) − 1)``.

    Examples
    --------
    Remaining tolerance of a voxel that had 60 Gy/30 fx under Dmax < 203 Gy3:

    >>> round(float(dose_from_bed(203 - 100, fractions=2, alpha_beta_gy=3)), 2)
    22.04
    """
    b = as_dose_array(bed_gy, "bed_gy")
    n = fraction_count(fractions)
    ab = alpha_beta(alpha_beta_gy)
    return _dose_from_bed(b, n, ab)


def eqd2_from_bed(bed_gy, alpha_beta_gy):
    """Convert BED to EQD2 for one α/β: ``EQD2 = BED / (1 + 2/α/β)``."""
    b = as_dose_array(bed_gy, "bed_gy")
    ab = alpha_beta(alpha_beta_gy)
    return b / (1.0 + 2.0 / ab)


def bed_from_eqd2(eqd2_gy, alpha_beta_gy):
    """Convert EQD2 to BED for one α/β: ``BED = EQD2 (1 + 2/α/β)``.

    Examples
    --------
    >>> float(bed_from_eqd2(70.0, alpha_beta_gy=2))  # Sahgal cumulative cord limit
    140.0
    """
    e = as_dose_array(eqd2_gy, "eqd2_gy")
    ab = alpha_beta(alpha_beta_gy)
    return e * (1.0 + 2.0 / ab)


def dose_from_eqd2(eqd2_gy, fractions, alpha_beta_gy):
    """Total physical dose in ``fractions`` fractions that yields ``eqd2_gy``."""
    e = as_dose_array(eqd2_gy, "eqd2_gy")
    n = fraction_count(fractions)
    ab = alpha_beta(alpha_beta_gy)
    return _dose_from_bed(e * (1.0 + 2.0 / ab), n, ab)


# Unchecked kernels for callers that validated once at their boundary.

def bed_unchecked(dose_gy, fractions, alpha_beta_gy):
    """:func:`bed`'s formula ``D (1 + D / (n α/β))`` without its input checks (Gy; arrays broadcast).

    For callers that validated their inputs once at their boundary and evaluate many voxels or
    organs (validation per call would dominate); garbage in gives garbage out.
    """
    return dose_gy * (1.0 + dose_gy / (fractions * alpha_beta_gy))


def dose_from_bed_unchecked(bed_gy, fractions, alpha_beta_gy):
    """:func:`dose_from_bed`'s formula, the root ``D = 2 BED / (1 + √(1 + 4 BED / (n α/β)))`` of
    ``D (1 + D / (n α/β)) = BED``, without its input checks (Gy; arrays broadcast)."""
    return 2.0 * bed_gy / (1.0 + np.sqrt(1.0 + 4.0 * bed_gy / (fractions * alpha_beta_gy)))


_bed = bed_unchecked                    # the names constraints/ uses internally
_dose_from_bed = dose_from_bed_unchecked
