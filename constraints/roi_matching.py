"""Matching a plan's ROI names to the protocol's organs through its alias table."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ._protocol_model import Protocol
from .errors import InputError

__all__ = ["normalize_roi_name", "RoiMatch", "match_roi_names"]


def normalize_roi_name(name: str) -> str:
    """Case-folded ROI name without spaces, '_', '-' and '.' (the alias-matching key)."""
    return re.sub(r"[\s_.\-]+", "", name).casefold()


@dataclass(frozen=True)
class RoiMatch:
    """Result of matching a plan's ROI names to protocol organs.

    Attributes
    ----------
    organ_to_roi : dict
        Organ key → the one ROI name matched to it.
    unmatched_rois : tuple of str
        ROI names no organ claims (reported, never guessed).
    missing_organs : tuple of str
        Organ keys with no ROI.
    """

    organ_to_roi: Mapping[str, str]
    unmatched_rois: Tuple[str, ...]
    missing_organs: Tuple[str, ...]


def match_roi_names(roi_names: Sequence[str], protocol: Protocol,
                    overrides: Optional[Mapping[str, str]] = None) -> RoiMatch:
    """Match ROI names to the protocol's organs through its alias table.

    Parameters
    ----------
    roi_names : sequence of str
    protocol : Protocol
    overrides : mapping organ key → ROI name, optional
        Explicit choices (from the user's configuration) that win over aliases.

    Raises
    ------
    constraints.errors.InputError
        Two ROIs match one organ (ambiguous: name both), or an override names an
        unknown organ or ROI.
    """
    overrides = dict(overrides or {})
    names = list(roi_names)
    for organ, roi in overrides.items():
        if organ not in protocol.organs:
            raise InputError(f"ROI override names unknown organ {organ!r}; known organs: {sorted(protocol.organs)}")
        if roi not in names:
            raise InputError(f"ROI override for {organ!r} names ROI {roi!r}, which the plan does not have")
    alias_to_organ = {normalize_roi_name(a): key for key, o in protocol.organs.items() for a in o.aliases}
    found: Dict[str, List[str]] = {}
    for name in names:
        key = alias_to_organ.get(normalize_roi_name(name))
        if key is not None and key not in overrides:
            found.setdefault(key, []).append(name)
    for key, rois in found.items():
        if len(rois) > 1:
            raise InputError(
                f"ROIs {rois} all match organ {key!r}; choose one in the configuration (roi_overrides)"
            )
    organ_to_roi = {k: v[0] for k, v in found.items()}
    organ_to_roi.update(overrides)
    claimed = set(organ_to_roi.values())
    return RoiMatch(
        organ_to_roi=organ_to_roi,
        unmatched_rois=tuple(n for n in names if n not in claimed),
        missing_organs=tuple(k for k in protocol.organs if k not in organ_to_roi),
    )
