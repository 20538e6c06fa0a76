"""Convex fluence-map optimization (FMO) under per-voxel limits (offline; cvxpy).

The problem, in total SBRT dose (Gy, over all ``fractions``):

    minimize    Σ_v ŵ_v [R + h − d_v]₊               (PTVeval under-dose, volume-weighted)
              + λ_f · mean_r [d_r − F_r]₊             (fall-off ring: conformity)
              + λ_w · mean(y)                          (tie-break: least total fluence)
    subject to  y ≥ 0
                d_T ≤ T_max − ε                        PTVeval hot spot bound
                d_v ≤ L_v − ε     (v in a MaxBound)    per-voxel hard bounds
                CVaR_V(d − L + ε) ≤ 0  (VolumeCap)     volume limits (Rockafellar–Uryasev)

``A_s`` are the rows of ``fractions · influence_gy · scale`` (the influence is Gy per
fraction per unit weight; ``scale`` makes uniform ``y = 1`` give the prescription as
mean target dose, for conditioning); reported weights are ``scale · y``, in the
influence matrix's unit.  ``ε`` (``bound_backoff_gy``) keeps the exact limits
strictly met despite solver tolerance.

The concepts, one module each: the problem's data (:mod:`optimizer._fmo_spec`), the settings
(:mod:`optimizer._fmo_options`), one round's solve (:mod:`optimizer._fmo_rounds`), the outcome
(:mod:`optimizer._fmo_result`); this module runs the rounds.  Why the defaults:
``docs/decisions/``.

What the solver sees (:mod:`optimizer._fmo_build` builds the cvxpy problem; for
``SCHUR_IPM`` the same LP is assembled directly in standard form by
:mod:`optimizer._fmo_lp`, without cvxpy's canonicalization): the influence rows are dense
(scatter tails; 60–95 % filled), and a sparse LP solver pays for every dense row in
every iteration.  The default solver, ``SCHUR_IPM`` (:mod:`optimizer._schur_ipm`, an
interior point that eliminates the hinge variables and factorizes the beamlet-space
normal matrix with one BLAS ``syrk`` per iteration), pays per distinct dense row:
a voxel's influence row enters its normal matrix once, however many LP rows (hinge,
bound, CVaR) use it (:class:`optimizer._schur_ipm.SharedRows`).  Hence

* objective rows (target, ring) are truncated at ``objective_truncation`` of each
  beamlet's maximum, with the dropped dose of the previous round's weights added back
  as a constant (correction) — by default for every solver but ``SCHUR_IPM``, whose
  full objective rows cost no more and need no correction rounds
  (:attr:`FmoOptions.truncation`);
* constraint rows are **full** rows, but only for screened voxels: the first round
  holds none (``screen_fraction = inf``) — with ``SCHUR_IPM`` and full objective rows,
  none but the voxels the objective holds already (``screen_objective_voxels``) — and
  after each round every constraint voxel is checked on the full matrix; violators,
  the CVaR tail and the voxels within ``screen_band_fraction`` of their limits enter
  the next round (row generation).  The plan returned satisfies every per-voxel bound
  and CVaR cap on the full matrix;
* with ``SCHUR_IPM`` and full objective rows, the screening does not wait for the end of a
  round: at relative gap ``screen_check_gap`` the iterate's dose is checked on the full
  matrix, the voxels it finds (band ``screen_check_band``) enter, and the solve goes on
  from that iterate (a warm start, :func:`optimizer._fmo_rounds._warm_start`); a round still
  needed after that starts from the same iterate.  The check is a prediction only: the optimum
  is checked as before.  Without the check every round starts from Mehrotra's point;
* for the cvxpy solvers, a region's dose is a variable ``d_s = A_s y`` only when
  several constraints share it.

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

import logging
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from constraints.errors import InputError

from ._fmo_build import BuiltProblem, build_problem, constraint_items, objective_matrices, objective_regions
from ._fmo_options import CANON_BACKEND, DEFAULT_TRUNCATION, LP_SOLVERS, SOLVER_DEFAULTS, FmoOptions
from ._fmo_result import FmoMetrics, FmoResult, metrics
from ._fmo_rounds import _Point, _solve_cvxpy_round, _solve_lp_round, _warm_start  # noqa: F401 (_warm_start: tests)
from ._fmo_screen import add_violators, initial_active, weighted_cvar
from ._fmo_spec import FmoSpec, MaxBound, Region, VolumeCap
from ._schur_ipm_options import SOLVER_NAME as SCHUR_IPM

_log = logging.getLogger(__name__)

__all__ = ["Region", "MaxBound", "VolumeCap", "FmoSpec", "FmoOptions", "FmoMetrics", "FmoResult",
           "build_fmo_problem", "solve_fmo", "weighted_cvar", "SOLVER_DEFAULTS", "CANON_BACKEND", "DEFAULT_TRUNCATION",
           "LP_SOLVERS"]


def _scale(a_total: Any, target: Region, prescription_gy: float) -> float:
    """Weight scale so that uniform ``y = 1`` gives mean target dose ``R``."""
    per_unit = float(np.asarray(a_total[target.rows].sum(axis=1)).ravel() @ target.coverage / target.coverage.sum())
    if not per_unit > 0:
        raise InputError("the influence matrix gives no dose to the target region: check the beam arrangement")
    return prescription_gy / per_unit


def build_fmo_problem(spec: FmoSpec, options: FmoOptions = FmoOptions(), *,
                      active: Optional[Mapping[str, np.ndarray]] = None,
                      offsets_gy: Optional[Mapping[str, np.ndarray]] = None) -> BuiltProblem:
    """Construct the cvxpy problem of ``spec`` for one round (see the module docstring).

    Parameters
    ----------
    active : mapping region → bool array over the region's rows, optional
        Constraint voxels included (screening); default all.
    offsets_gy : mapping region → ndarray, optional
        Constant dose added to an objective region's truncated dose (correction), Gy.

    Returns
    -------
    optimizer._fmo_build.BuiltProblem
    """
    a, scale, a_obj = _prepare(spec, options)
    return build_problem(spec, options, a_total=a, scale=scale, a_obj=a_obj, active=active, offsets_gy=offsets_gy)


def _prepare(spec: FmoSpec, options: FmoOptions) -> Tuple[Any, float, Dict[str, Tuple[Any, Any]]]:
    """Total-dose influence matrix (CSR), the weight scale and the (truncated, dropped) objective rows."""
    import scipy.sparse as sp

    a = sp.csr_matrix(spec.influence_gy, dtype=np.float64) * float(spec.fractions)
    scale = _scale(a, spec.regions[spec.target], spec.prescription_gy)
    return a, scale, objective_matrices(spec, a, scale, options.truncation)


def _rows_shared(options: FmoOptions) -> bool:
    """Whether a constraint voxel whose full influence row the objective holds adds no dense row:
    ``SCHUR_IPM`` without objective truncation (:class:`optimizer._schur_ipm.SharedRows`)."""
    return options.solver == SCHUR_IPM and options.truncation == 0


def solve_fmo(spec: FmoSpec, options: FmoOptions = FmoOptions()) -> FmoResult:
    """Build and solve ``spec``; see the module docstring for the formulation.

    Rounds (at most ``options.max_rounds`` solves): solve on the screened constraint
    voxels with truncated objective rows; evaluate the dose with the full matrix; add
    every violated constraint voxel (or the CVaR tail) with the voxels near their
    limits, and refresh the truncation correction; stop when nothing is violated and
    the correction has settled (``correction_tol_gy``).

    Returns
    -------
    FmoResult
        With a plan only when the solver reports ``'optimal'`` (cvxpy's status names;
        ``'optimal_inaccurate'`` and every other status carry no plan); ``status = 'screening_not_converged'``
        when violators remain after the last round.  ``build_s``, ``compile_s`` and
        ``solve_s`` sum over rounds; ``n_opt_rows``/``opt_nnz`` are those of the last round.

    Raises
    ------
    constraints.errors.InputError
        Invalid spec or options.
    """
    settings = options.settings()
    t0 = time.perf_counter()
    a, scale, a_obj = _prepare(spec, options)
    items = constraint_items(spec)
    active = None
    if options.screen_fraction > 0:
        probe = np.asarray(a @ np.full(a.shape[1], scale)).ravel()
        active = initial_active(spec, items, probe, options.screen_fraction)
        if options.screen_objective_voxels and _rows_shared(options):
            in_objective = np.zeros(a.shape[0], bool)
            for name in objective_regions(spec):
                in_objective[spec.regions[name].rows] = True
            for region in active:
                active[region] |= in_objective[spec.regions[region].rows]
    build_s = time.perf_counter() - t0
    offsets: Optional[Dict[str, np.ndarray]] = None
    compile_s = solve_s = 0.0
    status, weights, dose, size = "not_solved", None, None, (0, 0)
    truncated = options.truncation > 0
    violated = rounds = 0
    change = 0.0
    resume: Optional[_Point] = None

    def screen(y: np.ndarray) -> bool:
        """Screen an iterate's ``y`` (the mid-round check); True when voxels entered ``active``."""
        before = sum(int(v.sum()) for v in active.values())
        add_violators(spec, items, np.asarray(a @ (np.maximum(y, 0.0) * scale)).ravel(), active,
                      backoff_gy=options.bound_backoff_gy, tol_gy=1e-6, band_fraction=options.screen_check_band)
        return sum(int(v.sum()) for v in active.values()) > before

    use_check = (options.solver == SCHUR_IPM and active is not None and options.screen_check_gap is not None
                 and not truncated)
    check = screen if use_check else None
    for rounds in range(1, max(1, options.max_rounds) + 1):
        if options.solver == SCHUR_IPM:
            status, y, value, size, round_s, round_compile_s, resume = _solve_lp_round(
                spec, options, settings, check, resume, a_total=a, scale=scale, a_obj=a_obj,
                active=active, offsets_gy=offsets)
        else:
            built = build_problem(spec, options, a_total=a, scale=scale, a_obj=a_obj, active=active,
                                  offsets_gy=offsets)
            build_s += built.build_s
            status, y, value, round_s, round_compile_s = _solve_cvxpy_round(built, options)
            size = (built.n_opt_rows, built.opt_nnz)
        solve_s += round_s
        compile_s += round_compile_s
        if status != "optimal":
            weights = dose = None
            break
        t0 = time.perf_counter()
        y = np.maximum(y, 0.0)
        weights = y * scale
        dose = np.asarray(a @ weights).ravel()
        violated = 0
        if active is not None:
            violated = add_violators(spec, items, dose, active, backoff_gy=options.bound_backoff_gy, tol_gy=1e-6,
                                     band_fraction=options.screen_band_fraction)
        if truncated:
            used = offsets
            offsets = {name: np.asarray(dropped @ y).ravel() for name, (_, dropped) in a_obj.items()}
            change = np.inf if used is None else max(float(np.abs(offsets[k] - used[k]).max()) for k in offsets)
        build_s += time.perf_counter() - t0
        _log.info("FMO round %d: %d rows, %d nnz, solve %.1f s, %d violators, correction change %.3g Gy, "
                  "status %s", rounds, size[0], size[1], round_s, violated, change, status)
        if not violated and change <= options.correction_tol_gy:
            break
    else:
        if violated:
            status, weights, dose = "screening_not_converged", None, None
    common = dict(solver=options.solver, solver_settings=tuple(sorted(settings.items())), build_s=build_s,
                  compile_s=compile_s, solve_s=solve_s, rounds=rounds, n_voxels=a.shape[0], n_beamlets=a.shape[1],
                  nnz=int(a.nnz), n_opt_rows=size[0], opt_nnz=size[1],
                  correction_change_gy=float(change) if np.isfinite(change) else float("nan"))
    if weights is None:
        return FmoResult(status=status, objective=None, weights=None, dose_gy=None, metrics=None, **common)
    return FmoResult(status=status, objective=value, weights=weights, dose_gy=dose,
                     metrics=metrics(spec, dose), **common)
