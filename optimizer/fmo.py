"""Convex fluence-map optimization (FMO) under per-voxel limits (offline; cvxpy).

The problem, in total SBRT dose (Gy, over all ``fractions``):

    minimize    Σ_v ŵ_v [R + h − d_v]₊               (PTVeval under-dose, volume-weighted)
              + λ_f · mean_r [d_r − F_r]₊             (fall-off ring: conformity)
              + λ_w · mean(y)                          (tie-break: least total fluence)
    subject to  y ≥ 0
                d_s = A_s y                            one dose variable per region s
                d_T ≤ T_max                            PTVeval hot spot bound
                d_v ≤ L_v − ε     (v in a MaxBound)    per-voxel hard bounds
                CVaR_V(d − L + ε) ≤ 0  (VolumeCap)     volume limits (Rockafellar–Uryasev)

``A_s`` are the rows of ``fractions · influence_gy · scale`` (the influence is Gy per
fraction per unit weight; ``scale`` makes uniform ``y = 1`` give the prescription as
mean target dose, for conditioning); reported weights are ``scale · y``, in the
influence matrix's unit.  ``ε`` (``bound_backoff_gy``) keeps the exact limits
strictly met despite solver tolerance.  Full influence rows are used for every
region (no truncation), so the dose a constraint sees is the dose evaluated.

A non-optimal solver status is reported, never unpacked: :func:`solve_fmo` returns
an :class:`FmoResult` with ``status`` and ``weights = dose_gy = None``;
:meth:`FmoResult.require_plan` raises :class:`constraints.errors.InfeasibleError`.

References
----------
.. [1] Rockafellar RT, Uryasev S. Optimization of conditional value-at-risk.
   J Risk 2000;2(3):21-41.
.. [2] Romeijn HE, Ahuja RK, Dempsey JF, Kumar A, Li JG. A novel linear programming
   approach to fluence map optimization for IMRT treatment planning.
   Phys Med Biol 2003;48:3521-3542.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from constraints.errors import InfeasibleError, InputError

from ._fmo_screen import add_violators, initial_active, weighted_cvar

__all__ = ["Region", "MaxBound", "VolumeCap", "FmoSpec", "FmoOptions", "FmoMetrics", "FmoResult",
           "build_fmo_problem", "solve_fmo", "weighted_cvar", "SOLVER_DEFAULTS"]

#: Tolerances passed to each solver (recorded in every result).
SOLVER_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-8, "max_iter": 200},
    "HIGHS": {"primal_feasibility_tolerance": 1e-8, "dual_feasibility_tolerance": 1e-8, "random_seed": 0},
    "OSQP": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iter": 200000, "polish": True},
    "SCS": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 200000},
}


@dataclass(frozen=True, eq=False)
class Region:
    """Voxels of one structure on the dose grid.

    Attributes
    ----------
    name : str
    rows : ndarray of int, shape (n,)
        Flattened (z, y, x) dose-grid indices of voxels with coverage > 0.
    coverage : ndarray, shape (n,), in (0, 1]
    """

    name: str
    rows: np.ndarray
    coverage: np.ndarray


@dataclass(frozen=True, eq=False)
class MaxBound:
    """Hard per-voxel bound on the total SBRT dose of a region (Gy), per row of the region."""

    label: str
    region: str
    limit_gy: np.ndarray
    source_ids: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class VolumeCap:
    """Volume limit: voxels with ``d_v > limit_gy[v]`` must cover less than ``volume_cc``."""

    label: str
    region: str
    limit_gy: np.ndarray
    volume_cc: float
    source_ids: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class FmoSpec:
    """The data of one FMO problem.

    Attributes
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets)
        Gy **per fraction** per unit beamlet weight (dose-grid rows, flattened z, y, x).
    fractions : int
        Total dose = ``fractions · influence_gy @ weights``.
    voxel_volume_cc : float, cm³
    regions : mapping name → Region
    target : str
        Region of the coverage objective (PTVeval).
    prescription_gy : float, Gy total (24 Gy)
    target_max_gy : float or None, Gy total
        Hard bound on every target voxel (the D0.035cc hot-spot goal as a max).
    max_bounds, volume_caps : tuples of MaxBound, VolumeCap
    falloff : MaxBound or None
        Soft per-voxel limit of the fall-off ring (penalized, not enforced).
    """

    influence_gy: Any
    fractions: int
    voxel_volume_cc: float
    regions: Mapping[str, Region]
    target: str
    prescription_gy: float
    target_max_gy: Optional[float] = None
    max_bounds: Tuple[MaxBound, ...] = ()
    volume_caps: Tuple[VolumeCap, ...] = ()
    falloff: Optional[MaxBound] = None

    def __post_init__(self) -> None:
        n_vox = self.influence_gy.shape[0]
        if self.target not in self.regions:
            raise InputError(f"FmoSpec target {self.target!r} is not a region; regions: {sorted(self.regions)}")
        for item in self.max_bounds + self.volume_caps + ((self.falloff,) if self.falloff else ()):
            if item.region not in self.regions:
                raise InputError(f"{item.label!r} names region {item.region!r}; regions: {sorted(self.regions)}")
            if np.shape(item.limit_gy) != np.shape(self.regions[item.region].rows):
                raise InputError(f"{item.label!r}: limit_gy must have one value per region voxel")
        for r in self.regions.values():
            if r.rows.size == 0 or r.rows.max() >= n_vox or r.rows.min() < 0:
                raise InputError(f"region {r.name!r}: rows must be non-empty indices below {n_vox}")


@dataclass(frozen=True)
class FmoOptions:
    """Solver and objective settings (all recorded in the result).

    Attributes
    ----------
    solver : {'CLARABEL', 'HIGHS', 'OSQP', 'SCS'}
    underdose : {'linear', 'quadratic'}
        Linear keeps an LP (HiGHS-capable); quadratic is a QP.
    coverage_headroom_gy : float, Gy
        The under-dose reference is ``R + h`` so voxels the solver brings "to R"
        count in ``V_R`` despite round-off.
    falloff_weight, fluence_weight : float
        λ_f and λ_w of the objective.
    bound_backoff_gy : float, Gy
        ε: hard bounds and CVaR limits are imposed at ``L − ε``.
    objective_truncation : float in [0, 1)
        Influence entries below this fraction of their beamlet's maximum are dropped
        from the *objective* rows (target, ring) only; the dropped dose
        ``(A − A_trunc) w`` of the previous round is added back as a constant
        (PortPy-style correction).  Constraint rows are never truncated.
    screen_fraction : float in [0, 1]
        Constraint screening: a constraint voxel enters the first round when its dose
        at uniform weights (scaled to the prescription) reaches this fraction of its
        limit; after each solve every voxel is checked on the full matrix and the
        violators (or the CVaR tail) are added.  0 keeps every voxel.
    max_rounds : int
        Rounds of screening/correction (each one solve).

    Defaults (no truncation, no screening: one solve on full rows) were chosen by
    measurement (bench/bench_fmo.py, t4t5 4 mm CT / 6 mm dose grid, 2366 voxels x 570
    beamlets, HiGHS): one full-row round 35.9 s against 61.1 s for screening at 0.8 +
    1 % objective truncation with correction (three rounds).
    solver_options : mapping or None
        Overrides of :data:`SOLVER_DEFAULTS`.
    """

    solver: str = "CLARABEL"
    underdose: str = "linear"
    coverage_headroom_gy: float = 0.05
    falloff_weight: float = 0.1
    fluence_weight: float = 1e-3
    bound_backoff_gy: float = 1e-3
    objective_truncation: float = 0.0
    screen_fraction: float = 0.0
    max_rounds: int = 6
    solver_options: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        if self.solver not in SOLVER_DEFAULTS:
            raise InputError(f"solver must be one of {sorted(SOLVER_DEFAULTS)}, got {self.solver!r}")
        if self.underdose not in ("linear", "quadratic"):
            raise InputError(f"underdose must be 'linear' or 'quadratic', got {self.underdose!r}")
        if self.solver == "HIGHS" and self.underdose == "quadratic":
            raise InputError("solver HIGHS takes LPs only: use underdose='linear' or another solver")

    def settings(self) -> Dict[str, Any]:
        s = dict(SOLVER_DEFAULTS[self.solver])
        s.update(self.solver_options or {})
        return s


@dataclass(frozen=True)
class FmoMetrics:
    """Quick metrics of a solution (the exact protocol check is separate).

    Attributes
    ----------
    target_v_rx_percent : float, %  (coverage-weighted volume with d ≥ R)
    target_d95_gy : float, Gy       (computed with :func:`constraints.compute_dvh` rules)
    max_bound_excess_gy : float, Gy
        max over every MaxBound voxel of ``d_v − L_v`` (L without back-off; ≤ 0 = met).
    cvar_gy : tuple of (label, float)
        CVaR of ``d − L`` over each VolumeCap's volume (≤ 0 = restriction met).
    """

    target_v_rx_percent: float
    target_d95_gy: float
    max_bound_excess_gy: float
    cvar_gy: Tuple[Tuple[str, float], ...]


@dataclass(frozen=True, eq=False)
class FmoResult:
    """Outcome of one solve.  ``weights``/``dose_gy`` are None unless ``status == 'optimal'``.

    Attributes
    ----------
    status : str  (cvxpy status)
    solver : str
    solver_settings : tuple of (name, value)
    build_s, solve_s : float, s  (problem construction; solver call incl. canonicalization)
    objective : float or None
    weights : ndarray (n_beamlets,) or None  (per-fraction weights, influence units)
    dose_gy : ndarray (n_voxels,) or None    (total SBRT dose, flattened dose grid)
    metrics : FmoMetrics or None
    n_voxels, n_beamlets, nnz, n_opt_rows : int
    """

    status: str
    solver: str
    solver_settings: Tuple[Tuple[str, Any], ...]
    build_s: float
    solve_s: float
    objective: Optional[float]
    weights: Optional[np.ndarray]
    dose_gy: Optional[np.ndarray]
    metrics: Optional[FmoMetrics]
    n_voxels: int
    n_beamlets: int
    nnz: int
    n_opt_rows: int

    @property
    def has_plan(self) -> bool:
        return self.weights is not None

    def require_plan(self) -> "FmoResult":
        """Return self, or raise InfeasibleError when the solve gave no plan."""
        if not self.has_plan:
            raise InfeasibleError(f"FMO solver {self.solver} ended with status {self.status!r}: no plan. "
                                  "Relax a margin or limit, or try another solver")
        return self


@dataclass(frozen=True, eq=False)
class BuiltProblem:
    """A constructed cvxpy problem and what is needed to read its solution."""

    problem: Any
    y: Any
    scale: float
    build_s: float
    n_opt_rows: int
    opt_nnz: int


def _scale(a_total: Any, target: Region, prescription_gy: float) -> float:
    """Weight scale so that uniform ``y = 1`` gives mean target dose ``R``."""
    per_unit = float(np.asarray(a_total[target.rows].sum(axis=1)).ravel() @ target.coverage / target.coverage.sum())
    if not per_unit > 0:
        raise InputError("the influence matrix gives no dose to the target region: check the beam arrangement")
    return prescription_gy / per_unit


def _truncate(a: Any, fraction: float) -> Any:
    """Drop entries below ``fraction`` of their column (beamlet) maximum."""
    if fraction <= 0:
        return a
    col_max = np.asarray(abs(a).max(axis=0).todense()).ravel()
    t = a.tocoo()
    keep = np.abs(t.data) >= fraction * col_max[t.col]
    import scipy.sparse as sp
    return sp.csr_matrix((t.data[keep], (t.row[keep], t.col[keep])), shape=a.shape)


def _objective_regions(spec: FmoSpec) -> Tuple[str, ...]:
    return (spec.target,) + ((spec.falloff.region,) if spec.falloff is not None else ())


def build_fmo_problem(spec: FmoSpec, options: FmoOptions = FmoOptions(), *,
                      active: Optional[Mapping[str, np.ndarray]] = None,
                      offsets_gy: Optional[Mapping[str, np.ndarray]] = None, scale: Optional[float] = None,
                      a_total: Any = None) -> BuiltProblem:
    """Construct the cvxpy problem of ``spec`` (see the module docstring).

    Parameters
    ----------
    active : mapping region → bool array over the region's rows, optional
        Constraint voxels included (screening); default all.
    offsets_gy : mapping region → ndarray, optional
        Constant dose added to an objective region's truncated dose (correction), Gy.
    """
    import cvxpy as cp
    import scipy.sparse as sp

    from . import _fmo_terms as terms

    t0 = time.perf_counter()
    if a_total is None:
        a_total = sp.csr_matrix(spec.influence_gy, dtype=np.float64) * float(spec.fractions)
    tgt = spec.regions[spec.target]
    if scale is None:
        scale = _scale(a_total, tgt, spec.prescription_gy)
    y = cp.Variable(a_total.shape[1], nonneg=True, name="y")
    eps = options.bound_backoff_gy
    objective_regions = _objective_regions(spec)
    dose: Dict[str, Any] = {}
    cons = []
    n_rows = nnz = 0

    def region_dose(name: str, sel: Optional[np.ndarray]):
        nonlocal n_rows, nnz
        rows = spec.regions[name].rows if sel is None else spec.regions[name].rows[sel]
        a_s = a_total[rows] * scale
        if name in objective_regions:
            a_s = _truncate(a_s, options.objective_truncation)
        n_rows += rows.size
        nnz += a_s.nnz
        d, eq = terms.region_dose(cp, a_s, y, name)
        off = (offsets_gy or {}).get(name)
        if off is not None:
            d_eff = d + (off if sel is None else off[sel])
            return d_eff, eq
        return d, eq

    for name in objective_regions:
        dose[name], eq = region_dose(name, None)
        cons.append(eq)
    w = tgt.coverage / tgt.coverage.sum()
    level = spec.prescription_gy + options.coverage_headroom_gy
    obj = terms.underdose_term(cp, dose[spec.target], w, level, options.underdose)
    if spec.falloff is not None and options.falloff_weight > 0:
        obj = obj + options.falloff_weight * terms.overdose_term(cp, dose[spec.falloff.region], spec.falloff.limit_gy)
    if options.fluence_weight > 0:
        obj = obj + options.fluence_weight * cp.sum(y) / y.shape[0]
    if spec.target_max_gy is not None:
        cons.append(terms.max_bound(cp, dose[spec.target], spec.target_max_gy))
    cdose: Dict[str, Any] = {}
    for item in spec.max_bounds + spec.volume_caps:   # constraint regions: full rows, screened voxels
        sel = None if active is None else active.get(item.region)
        if item.region not in cdose:
            if sel is not None and not sel.any():
                continue
            cdose[item.region], eq = region_dose(item.region, sel)
            cons.append(eq)
        d = cdose[item.region]
        lim = item.limit_gy if sel is None else item.limit_gy[sel]
        if isinstance(item, MaxBound):
            cons.append(terms.max_bound(cp, d, np.maximum(lim - eps, 0.0)))
        else:
            r = spec.regions[item.region]
            cov = r.coverage if sel is None else r.coverage[sel]
            cons += terms.cvar_cap(cp, d, lim - eps, cov * spec.voxel_volume_cc, item.volume_cc,
                                   f"cap{len(cons)}")
    problem = cp.Problem(cp.Minimize(obj), cons)
    return BuiltProblem(problem, y, scale, time.perf_counter() - t0, n_rows, nnz)


def _metrics(spec: FmoSpec, dose_gy: np.ndarray) -> FmoMetrics:
    tgt = spec.regions[spec.target]
    dt, cov = dose_gy[tgt.rows], tgt.coverage
    v_rx = 100.0 * float(cov[dt >= spec.prescription_gy].sum() / cov.sum())
    order = np.argsort(-dt)
    cum = np.cumsum(cov[order])
    j = min(int(np.searchsorted(cum, 0.95 * cov.sum() * (1 - 1e-9))), dt.size - 1)
    d95 = float(dt[order][j])
    excess = -np.inf
    for b in spec.max_bounds:
        excess = max(excess, float((dose_gy[spec.regions[b.region].rows] - b.limit_gy).max()))
    cv = []
    for c in spec.volume_caps:
        r = spec.regions[c.region]
        cv.append((c.label, weighted_cvar(dose_gy[r.rows] - c.limit_gy, r.coverage * spec.voxel_volume_cc,
                                          c.volume_cc)))
    return FmoMetrics(v_rx, d95, excess if np.isfinite(excess) else 0.0, tuple(cv))


def solve_fmo(spec: FmoSpec, options: FmoOptions = FmoOptions()) -> FmoResult:
    """Build and solve ``spec``; see the module docstring for the formulation.

    Rounds (at most ``options.max_rounds`` solves): solve on the screened constraint
    voxels with truncated objective rows; evaluate the dose with the full matrix; add
    every violated constraint voxel (or the CVaR tail) and the truncation correction;
    stop when nothing is violated and the correction has been applied once.

    Returns
    -------
    FmoResult
        With a plan only when cvxpy reports ``'optimal'`` (``'optimal_inaccurate'``
        and every other status carry no plan); ``status = 'screening_not_converged'``
        when violators remain after the last round.  ``build_s``/``solve_s`` sum
        over rounds; ``n_opt_rows``/``nnz`` are those of the last round.

    Raises
    ------
    constraints.errors.InputError
        Invalid spec or options.
    """
    import cvxpy as cp
    import scipy.sparse as sp

    settings = options.settings()
    a = sp.csr_matrix(spec.influence_gy, dtype=np.float64) * float(spec.fractions)
    scale = _scale(a, spec.regions[spec.target], spec.prescription_gy)
    probe = np.asarray(a @ np.full(a.shape[1], scale)).ravel()
    active = initial_active(spec, probe, options.screen_fraction) if options.screen_fraction > 0 else None
    offsets: Optional[Dict[str, np.ndarray]] = None
    build_s = solve_s = 0.0
    status, built, weights, dose = "not_solved", None, None, None
    tol = 1e-6
    added = 0
    for _ in range(max(1, options.max_rounds)):
        built = build_fmo_problem(spec, options, active=active, offsets_gy=offsets, scale=scale, a_total=a)
        build_s += built.build_s
        t0 = time.perf_counter()
        try:
            built.problem.solve(solver=options.solver, **settings)
            status = str(built.problem.status)
        except cp.error.SolverError as exc:
            status = f"solver_error: {exc}".splitlines()[0]
        solve_s += time.perf_counter() - t0
        if status != cp.OPTIMAL:
            weights = dose = None
            break
        weights = np.maximum(np.asarray(built.y.value, dtype=np.float64), 0.0) * scale
        dose = np.asarray(a @ weights).ravel()
        added = add_violators(spec, dose, active, tol) if active is not None else 0
        need_correction = options.objective_truncation > 0 and offsets is None
        if not added and not need_correction:
            break
        if options.objective_truncation > 0:
            offsets = {}
            for name in _objective_regions(spec):
                rows = spec.regions[name].rows
                a_s = a[rows] * scale
                offsets[name] = np.asarray((a_s - _truncate(a_s, options.objective_truncation)) @ (weights / scale)).ravel()
    else:
        if added:
            status, weights, dose = "screening_not_converged", None, None
    common = dict(solver=options.solver, solver_settings=tuple(sorted(settings.items())), build_s=build_s,
                  solve_s=solve_s, n_voxels=a.shape[0], n_beamlets=a.shape[1], nnz=int(a.nnz),
                  n_opt_rows=built.n_opt_rows)
    if weights is None:
        return FmoResult(status=status, objective=None, weights=None, dose_gy=None, metrics=None, **common)
    return FmoResult(status=status, objective=float(built.problem.value), weights=weights, dose_gy=dose,
                     metrics=_metrics(spec, dose), **common)
