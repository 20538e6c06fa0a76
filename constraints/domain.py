"""Dose domains: which courses a value sums, and in which quantity.

A domain is a *scope* (``sbrt``: the new course alone; ``cumulative``: every prior
course plus the new one) and a *quantity* (``physical`` dose, ``bed`` or ``eqd2``).
Its value is the text the protocol TOML and the JSON records carry, e.g.
``"cumulative_bed"``; :class:`DoseDomain` is a ``str`` so both stay byte-identical.

``cumulative_physical`` exists for reports only (the assessment's Table 3): physical
doses given in different fractionations do not add to a biological effect, so a
protocol limit may not be stated in it (:data:`PROTOCOL_DOMAINS`).
"""
from __future__ import annotations

from enum import Enum

from .errors import InputError

__all__ = ["DoseDomain", "PROTOCOL_DOMAINS", "SCOPES", "QUANTITIES"]

#: the scopes, new course first
SCOPES = ("sbrt", "cumulative")
#: the quantities, and the unit a limit in each carries
QUANTITIES = {"physical": "Gy", "bed": "Gy BED", "eqd2": "Gy EQD2"}


class DoseDomain(str, Enum):
    """The domain a dose value or a limit lives in.

    Compares, hashes, formats and serialises (``json``) as its text, so it can key
    the same dicts as the protocol's strings.

    Examples
    --------
    >>> d = DoseDomain("cumulative_eqd2")
    >>> d.is_cumulative, d.quantity, d.unit
    (True, 'eqd2', 'Gy EQD2')
    >>> d == "cumulative_eqd2", f"{d}"
    (True, 'cumulative_eqd2')
    >>> DoseDomain.of("sbrt", "physical") is DoseDomain.SBRT_PHYSICAL
    True
    """

    SBRT_PHYSICAL = "sbrt_physical"
    SBRT_BED = "sbrt_bed"
    SBRT_EQD2 = "sbrt_eqd2"
    CUMULATIVE_PHYSICAL = "cumulative_physical"
    CUMULATIVE_BED = "cumulative_bed"
    CUMULATIVE_EQD2 = "cumulative_eqd2"

    # str() and format() give the text on every Python (3.12 changed the Enum default)
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)

    # the text's hash, so that ``{"sbrt_bed": ...}[DoseDomain.SBRT_BED]`` works
    def __hash__(self) -> int:
        return str.__hash__(self)

    @classmethod
    def of(cls, scope: str, quantity: str) -> "DoseDomain":
        """The domain of ``scope`` (``sbrt``/``cumulative``) and ``quantity``."""
        return cls.parse(f"{scope}_{quantity}")

    @classmethod
    def parse(cls, text: object, what: str = "domain") -> "DoseDomain":
        """``text`` as a domain; :class:`InputError` naming ``what`` when it is none."""
        try:
            return cls(text)
        except ValueError:
            raise InputError(f"{what} {text!r} is not a dose domain; expected one of "
                             f"{', '.join(d.value for d in cls)}") from None

    @property
    def scope(self) -> str:
        """``"sbrt"`` (the new course alone) or ``"cumulative"`` (all courses)."""
        return self.value.split("_", 1)[0]

    @property
    def quantity(self) -> str:
        """``"physical"``, ``"bed"`` or ``"eqd2"``."""
        return self.value.split("_", 1)[1]

    @property
    def is_sbrt(self) -> bool:
        """True for the new course alone."""
        return self.scope == "sbrt"

    @property
    def is_cumulative(self) -> bool:
        """True when every prior course is summed in."""
        return self.scope == "cumulative"

    @property
    def unit(self) -> str:
        """The unit a value in this domain carries: ``Gy``, ``Gy BED`` or ``Gy EQD2``."""
        return QUANTITIES[self.quantity]


#: the domains a protocol limit may be stated in -> the unit its limits must carry
PROTOCOL_DOMAINS = {d: d.unit for d in DoseDomain if d is not DoseDomain.CUMULATIVE_PHYSICAL}
