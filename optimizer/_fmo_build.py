"""Construction of the cvxpy FMO problem (private; cvxpy and scipy imported inside).

The cost of an LP solve with dense influence rows grows with (rows × beamlets²) per
interior-point iteration and with the row count per simplex pivot, so the problem
handed to the solver holds as few dense rows as the answer needs:

* objective rows (target, fall-off ring) use the influence **truncated** at
  ``objective_truncation`` of each beamlet's maximum over the region (sparse rows),
  plus the constant dose the truncation dropped at the previous round's weights
  (PortPy-style correction, ``offsets_gy``);
* constraint rows (per-voxel bounds, CVaR caps, the target hot-spot bound) use the
  **full** rows, but only for the screened voxels ``active`` (row generation: the
  caller checks every voxel on the full matrix and adds violators);
* a region's dose is a variable ``d == A_s y`` only when several terms share it;
  a region used once is written ``A_s @ y`` directly (no extra equality rows).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ._schur_ipm import SOLVER_NAME as SCHUR_IPM

#: Solvers that pay per dense row, not per non-zero: a region's dose is never a
#: variable for them (the equality rows ``d = A_s y`` would couple the hinge rows).
DENSE_ROW_SOLVERS = (SCHUR_IPM,)

__all__ = ["BuiltProblem", "ConstraintItem", "constraint_items", "screened", "objective_regions",
           "truncate_rows", "objective_matrices", "build_problem"]


@dataclass(frozen=True, eq=False)
class BuiltProblem:
    """A constructed cvxpy problem and what is needed to read its solution.

    Attributes
    ----------
    problem : cvxpy.Problem
    y : cvxpy.Variable, shape (n_beamlets,)
    scale : float  (weights = scale · y, influence units)
    build_s : float, s  (this module's construction; cvxpy canonicalization is in the solve)
    n_opt_rows, opt_nnz : int  (influence rows and their non-zeros in the problem)
    """

    problem: Any
    y: Any
    scale: float
    build_s: float
    n_opt_rows: int
    opt_nnz: int


@dataclass(frozen=True, eq=False)
class ConstraintItem:
    """One hard constraint on full influence rows of ``region``.

    ``volume_cc`` is None for a per-voxel bound ``d_v ≤ L_v``, else the CVaR cap volume.
    ``floor_zero``: a backed-off bound ``L − ε`` is raised to 0 (a zero limit of a
    cumulative map stays feasible); off for the target hot-spot bound, whose
    impossible values must show as infeasible.
    """

    label: str
    region: str
    limit_gy: np.ndarray
    volume_cc: Optional[float] = None
    floor_zero: bool = True


def screened(spec: Any, item: ConstraintItem, active: Optional[Mapping[str, np.ndarray]], backoff_gy: float
             ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The voxels of ``item`` in this round: (dose-grid rows, limit imposed in Gy, volume in cc).

    The limit is ``L − ε`` (``backoff_gy``), raised to 0 for a per-voxel bound with
    ``floor_zero``; ``active`` (region → bool over its rows, or None for every voxel) selects
    the screened voxels.  None when the region has none screened.
    """
    r = spec.regions[item.region]
    sel = None if active is None else active.get(item.region)
    if sel is not None and not sel.any():
        return None
    pick = (lambda v: v) if sel is None else (lambda v: v[sel])     # noqa: E731
    limit = pick(item.limit_gy) - backoff_gy
    if item.volume_cc is None and item.floor_zero:
        limit = np.maximum(limit, 0.0)
    return pick(r.rows), limit, pick(r.coverage) * spec.voxel_volume_cc


def objective_regions(spec: Any) -> Tuple[str, ...]:
    """Regions whose (truncated) rows enter the objective: target, then the fall-off ring."""
    return (spec.target,) + ((spec.falloff.region,) if spec.falloff is not None else ())


def constraint_items(spec: Any) -> Tuple[ConstraintItem, ...]:
    """Every hard constraint of ``spec``: MaxBounds, VolumeCaps and the target hot-spot bound."""
    items: List[ConstraintItem] = []
    if spec.target_max_gy is not None:
        n = spec.regions[spec.target].rows.size
        items.append(ConstraintItem("target max", spec.target, np.full(n, float(spec.target_max_gy)),
                                    floor_zero=False))
    for b in spec.max_bounds:
        items.append(ConstraintItem(b.label, b.region, np.asarray(b.limit_gy, dtype=np.float64)))
    for c in spec.volume_caps:
        items.append(ConstraintItem(c.label, c.region, np.asarray(c.limit_gy, dtype=np.float64), float(c.volume_cc)))
    return tuple(items)


def truncate_rows(a: Any, fraction: float) -> Any:
    """Drop entries below ``fraction`` of their column (beamlet) maximum over ``a``'s rows (CSR)."""
    import scipy.sparse as sp

    a = sp.csr_matrix(a)
    if fraction <= 0 or a.nnz == 0:
        return a
    col_max = np.zeros(a.shape[1])
    np.maximum.at(col_max, a.indices, np.abs(a.data))
    keep = np.abs(a.data) >= fraction * col_max[a.indices]
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    return sp.csr_matrix((a.data[keep], (rows[keep], a.indices[keep])), shape=a.shape)


def objective_matrices(spec: Any, a_total: Any, scale: float, truncation: float) -> Dict[str, Tuple[Any, Any]]:
    """Per objective region: (truncated rows, dropped rows), both × ``scale`` (Gy total per unit y)."""
    import scipy.sparse as sp

    out = {}
    for name in objective_regions(spec):
        full = a_total[spec.regions[name].rows] * scale
        if truncation <= 0:                      # nothing dropped: no copy, no subtraction
            out[name] = (full, sp.csr_matrix(full.shape))
            continue
        kept = truncate_rows(full, truncation)
        out[name] = (kept, full - kept)
    return out


def build_problem(spec: Any, options: Any, *, a_total: Any, scale: float,
                  a_obj: Mapping[str, Tuple[Any, Any]], active: Optional[Mapping[str, np.ndarray]] = None,
                  offsets_gy: Optional[Mapping[str, np.ndarray]] = None) -> BuiltProblem:
    """The cvxpy problem of ``spec`` (formulation: :mod:`optimizer.fmo`).

    Parameters
    ----------
    a_total : scipy.sparse.csr_matrix, Gy total per unit weight (fractions applied)
    scale : float
        ``weights = scale · y``.
    a_obj : mapping region → (kept, dropped)
        From :func:`objective_matrices`.
    active : mapping region → bool array over the region's rows, optional
        Constraint voxels included; default all.
    offsets_gy : mapping region → ndarray, optional
        Dose dropped by truncation at the previous weights, Gy total.
    """
    import cvxpy as cp

    from . import _fmo_terms as terms

    t0 = time.perf_counter()
    y = cp.Variable(a_total.shape[1], nonneg=True, name="y")
    eps = options.bound_backoff_gy
    n_rows = nnz = 0
    dose: Dict[str, Any] = {}
    for name, (kept, _) in a_obj.items():
        n_rows += kept.shape[0]
        nnz += kept.nnz
        d = kept @ y
        off = (offsets_gy or {}).get(name)
        dose[name] = d + off if off is not None else d
    tgt = spec.regions[spec.target]
    level = spec.prescription_gy + options.coverage_headroom_gy
    obj = terms.underdose_term(cp, dose[spec.target], tgt.coverage / tgt.coverage.sum(), level, options.underdose)
    if spec.falloff is not None and options.falloff_weight > 0:
        obj = obj + options.falloff_weight * terms.overdose_term(cp, dose[spec.falloff.region], spec.falloff.limit_gy)
    if options.fluence_weight > 0:
        obj = obj + options.fluence_weight * cp.sum(y) / y.shape[0]

    items = constraint_items(spec)
    uses: Dict[str, int] = {}
    for it in items:
        uses[it.region] = uses.get(it.region, 0) + 1
    cons: List[Any] = []
    cdose: Dict[str, Any] = {}
    for k, it in enumerate(items):
        voxels = screened(spec, it, active, eps)
        if voxels is None:
            continue
        rows, lim, volume_cc = voxels
        if it.region not in cdose:
            a_s = a_total[rows] * scale
            n_rows += rows.size
            nnz += a_s.nnz
            expr = a_s @ y
            if uses[it.region] > 1 and options.solver not in DENSE_ROW_SOLVERS:
                d = cp.Variable(rows.size, name=f"d_{it.region}")
                cons.append(d == expr)
                cdose[it.region] = d
            else:
                cdose[it.region] = expr
        d = cdose[it.region]
        if it.volume_cc is None:
            cons.append(terms.max_bound(cp, d, lim))
        else:
            cons += terms.cvar_cap(cp, d, lim, volume_cc, it.volume_cc, f"cap{k}")
    problem = cp.Problem(cp.Minimize(obj), cons)
    return BuiltProblem(problem, y, scale, time.perf_counter() - t0, n_rows, nnz)
