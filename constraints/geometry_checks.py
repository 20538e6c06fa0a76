"""Geometry checks of a re-irradiation plan's structures, reported as findings (warnings).

Three checks a physicist makes before reading any dose (DESIGN §5, issue #25):

* **target and cord PRV overlap** — the SBRT-only cord PRV limit and the target's
  prescription cannot both hold where the PTVeval and the PRV share volume (the seed
  builds PTVeval as PTV minus the PRV: they should not overlap);
* **cord PRV margin** — the seed's PRV is the cord + 1.5 mm; a PRV narrower than that
  anywhere under-protects the cord, a much wider one over-constrains the target;
* **organs at risk inside PTVeval** — an OAR sharing volume with the evaluated target
  receives the prescription there: its limits then bind against coverage.

Volumes use fractional coverages (the adapter voxelizes the dose voxels two ROIs share again
on 0.5 mm sub-voxels): two regions covering fractions ``a`` and ``b`` of a voxel share at
least ``max(0, a + b − 1)`` (less the 8-bit rounding of the coverages) and at most
``min(a, b)`` of it; a finding is raised on the lower bound (sure overlap) and reports both.
The margin check runs on binary masks (coverage ≥ ½) of a refined grid of sub-voxels of
``s`` mm; each surface is then placed to within half a sub-voxel diagonal (``s√3/2``), so a
margin is judged to ± ``s√3`` (the tolerance: 0.87 mm at s = 0.5 mm).  Findings are
warnings, not failures: the dose limits decide the verdict; a geometry finding says why a
verdict may be fragile or coverage unreachable (docs/decisions/geometry-findings.md).

numpy only (CPython 3.8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

import numpy as np

from .grid import Grid
from .morphology import dilate_mm

__all__ = ["Finding", "overlap_cc", "overlap_findings", "prv_margin_findings", "MIN_FINDING_CC"]

#: Sure volumes below this are not reported (cm³): below the 0.035 cc of the near-max metrics, and above
#: the voxelization noise of separately contoured ROIs (T4–T5 PTVeval/PRV on the 2.5 mm grid: 0.003 cc).
MIN_FINDING_CC = 0.01


@dataclass(frozen=True)
class Finding:
    """One geometry finding.

    Attributes
    ----------
    check : {'target_prv_overlap', 'oar_in_target', 'prv_margin_narrow', 'prv_margin_wide'}
    rois : tuple of str
    volume_cc : float
        Sure volume concerned (cm³).
    message : str
        What was found and what it means, with the numbers.
    severity : str
        ``'warning'`` (does not change the verdict).
    """

    check: str
    rois: Tuple[str, ...]
    volume_cc: float
    message: str
    severity: str = "warning"


#: Coverage quantization of ``GetRoiGeometryAsVoxels`` (0–255): two rounded coverages may sum
#: to 1 + 1/255 in a voxel they split exactly, so the sure overlap discounts it.
COVERAGE_QUANTUM = 1.0 / 255.0


def overlap_cc(a: np.ndarray, b: np.ndarray, voxel_cc: float) -> Tuple[float, float]:
    """(at least, at most) shared volume of two fractional coverages on one grid, cm³.

    At least ``Σ max(0, a + b − 1 − q)`` (q = :data:`COVERAGE_QUANTUM`), at most ``Σ min(a, b)``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (float(np.clip(a + b - 1.0 - COVERAGE_QUANTUM, 0.0, None).sum()) * voxel_cc,
            float(np.minimum(a, b).sum()) * voxel_cc)


def overlap_findings(target_name: str, target: np.ndarray, prv_name: Optional[str], prv: Optional[np.ndarray],
                     oars: Mapping[str, np.ndarray], voxel_cc: float) -> List[Finding]:
    """Target–PRV overlap and OARs inside the target (coverages on one grid)."""
    out: List[Finding] = []
    if prv is not None and prv_name is not None:
        lo, hi = overlap_cc(target, prv, voxel_cc)
        if lo >= MIN_FINDING_CC:
            out.append(Finding("target_prv_overlap", (target_name, prv_name), lo,
                               f"{target_name} and {prv_name} overlap by {lo:.3f}-{hi:.3f} cc: the cord PRV limit and "
                               "the target's coverage compete there (PTVeval should exclude the PRV)"))
    for name, cov in oars.items():
        lo, hi = overlap_cc(target, cov, voxel_cc)
        if lo >= MIN_FINDING_CC:
            out.append(Finding("oar_in_target", (name, target_name), lo,
                               f"{lo:.3f}-{hi:.3f} cc of {name} lies inside {target_name}: its limits bind against "
                               "coverage there"))
    return out


def prv_margin_findings(cord_name: str, cord: np.ndarray, prv_name: str, prv: np.ndarray, fine: Grid, *,
                        margin_mm: float = 1.5) -> List[Finding]:
    """Check that a PRV is its organ expanded by ``margin_mm`` (coverages on a fine grid).

    With the tolerance ``t = √(Σ s_a²)`` (the sub-voxel diagonal: each binarized
    surface lies within half of it of the true one): the PRV must hold the cord
    expanded by ``margin_mm − t`` (else "narrow") and lie inside the cord expanded by
    ``margin_mm + t`` (else "wide"); an excess of :data:`MIN_FINDING_CC` or more is a
    finding.  A deviation within ``t`` is never flagged; one beyond ``t + s`` always is
    (a PRV equal to the cord, or one with a 3 mm margin, at s = 0.5 mm).
    """
    tol = float(np.sqrt(sum(s * s for s in fine.spacing_xyz_mm)))
    c = np.asarray(cord) >= 0.5
    p = np.asarray(prv) >= 0.5
    voxel_cc = fine.voxel_volume_cc
    out: List[Finding] = []
    inner = dilate_mm(c, fine, max(margin_mm - tol, 0.0))
    short = float((inner & ~p).sum()) * voxel_cc
    if short >= MIN_FINDING_CC:
        out.append(Finding("prv_margin_narrow", (prv_name, cord_name), short,
                           f"{prv_name} is narrower than {cord_name} + {margin_mm:g} mm: {short:.3f} cc of "
                           f"{cord_name} + {margin_mm - tol:.2f} mm lies outside it (tolerance {tol:.2f} mm); "
                           f"the PRV limit does not protect the cord with its margin there"))
    outer = dilate_mm(c, fine, margin_mm + tol)
    extra = float((p & ~outer).sum()) * voxel_cc
    if extra >= MIN_FINDING_CC:
        out.append(Finding("prv_margin_wide", (prv_name, cord_name), extra,
                           f"{prv_name} reaches beyond {cord_name} + {margin_mm + tol:.2f} mm by {extra:.3f} cc "
                           f"(tolerance {tol:.2f} mm): wider than the protocol's {margin_mm:g} mm margin"))
    return out
