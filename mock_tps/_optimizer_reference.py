"""A reference solution of the mock optimizer's convex problems by cvxpy, and a phantom
problem to compare them on (the objective-gap test and ``bench/bench_optimizer_gap.py``).

Offline only: needs cvxpy (the ``offline`` extra); never imported by the mock's API.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse

from constraints.errors import InputError

from ._tps_function_spec import FunctionSpec
from ._tps_penalties import normalized_weights, penalty_value_and_dose_gradient, reference_level

__all__ = ["CONVEX_TYPES", "ReferenceSolution", "reference_solution", "reference_objective", "gap_problem"]

#: The function types whose penalties are convex in the beamlet weights.
CONVEX_TYPES = ("MinDose", "MaxDose", "UniformDose", "DoseFallOff")
#: A left-out beamlet joins when its reduced gradient is below −this × the sum of the
#: magnitudes it is made of: Clarabel's own KKT residual on the kept beamlets is ~1e-6 of it.
REDUCED_GRADIENT_TOLERANCE = 1e-5
#: Columns per block of Aᵀy, so that a float32 matrix is upcast a block at a time.
_BLOCK_COLUMNS = 256
_MAX_ROUNDS = 10


@dataclass(frozen=True)
class ReferenceSolution:
    """Outcome of :func:`reference_solution`.

    Attributes
    ----------
    objective_gy2 : float
        The exact minimum, Gy².
    weights : ndarray, shape (n_beamlets,)
        The minimizer (0 on left-out beamlets).
    solve_s : float
        Wall time of all rounds, s.
    voxels, beamlets : int
        Influence-matrix rows and columns of the last round's problem.
    rounds : int
        Problems solved (1 without screening).
    lower_bound_gy2 : float
        A lower bound on the whole problem's minimum by weak duality, from the solution's
        dual values alone (see :func:`_dual_lower_bound`): a check independent of the
        solver's tolerances and of the screening.
    """

    objective_gy2: float
    weights: np.ndarray
    solve_s: float
    voxels: int
    beamlets: int
    rounds: int
    lower_bound_gy2: float


def _transpose_times(influence_csc, y: np.ndarray) -> np.ndarray:
    """Aᵀy in float64, a block of columns at a time (no float64 copy of all of A)."""
    out = np.empty(influence_csc.shape[1])
    for start in range(0, out.size, _BLOCK_COLUMNS):
        block = influence_csc[:, start:start + _BLOCK_COLUMNS].astype(np.float64)
        out[start:start + block.shape[1]] = block.T @ y
    return out


def _dose(influence_csc, weights: np.ndarray, fractions: int) -> np.ndarray:
    """Total dose (Gy) on every row, from the columns of positive weight only."""
    on = np.flatnonzero(weights > 0)
    return float(fractions) * (influence_csc[:, on].astype(np.float64) @ weights[on])


def _solve_on(influence_csc, functions: Sequence[FunctionSpec], kept: List[np.ndarray], columns: np.ndarray,
              fractions: int, solver: str, solver_options: dict) -> Tuple[float, np.ndarray, np.ndarray]:
    """Exact minimum with each function's terms on its ``kept`` voxels only (the full
    functions' normalized volume weights) and the beamlets ``columns`` only (the rest
    at 0). Returns the value, the weights of all beamlets and the constraints' dual
    values on all rows (Gy² per Gy, 0 off the kept constraint voxels)."""
    import cvxpy as cp

    rows = np.unique(np.concatenate([spec.voxel_index[k] for spec, k in zip(functions, kept)]))
    matrix = (influence_csc[:, columns].tocsr()[rows] * float(fractions)).astype(np.float64)
    w = cp.Variable(columns.size, nonneg=True)
    d = cp.Variable(rows.size)                 # the dose, so that every term is element-wise
    objective = 0
    constraints = [d == matrix @ w]
    bounds = []
    for spec, keep in zip(functions, kept):
        if not keep.any():
            continue
        local = np.searchsorted(rows, spec.voxel_index[keep])
        v = normalized_weights(spec)[keep]
        level = np.broadcast_to(reference_level(spec), spec.voxel_index.shape)[keep]
        dose = d[local]
        if spec.is_constraint:
            constraints.append(dose <= level)
            bounds.append((spec.voxel_index[keep], constraints[-1]))
            continue
        if spec.function_type in ("MaxDose", "DoseFallOff"):
            residual = cp.pos(dose - level)
        elif spec.function_type == "MinDose":
            residual = cp.pos(level - dose)
        else:
            residual = dose - level
        objective = objective + spec.weight * cp.sum(cp.multiply(v, cp.square(residual)))
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=solver, **solver_options)
    if problem.status != "optimal":
        raise InputError(f"the reference problem is {problem.status} ({solver})")
    weights = np.zeros(influence_csc.shape[1])
    weights[columns] = np.maximum(np.asarray(w.value, dtype=np.float64), 0.0)
    duals = np.zeros(influence_csc.shape[0])
    for index, constraint in bounds:
        np.add.at(duals, index, np.maximum(np.asarray(constraint.dual_value, dtype=np.float64), 0.0))
    return float(problem.value), weights, duals


def _needed(spec: FunctionSpec, dose_gy: np.ndarray, margin_gy: float) -> np.ndarray:
    """Voxels whose term is active (or within ``margin_gy`` of it) at ``dose_gy``."""
    level = np.broadcast_to(reference_level(spec), dose_gy.shape)
    counted = normalized_weights(spec) > 0
    if spec.function_type == "UniformDose":
        return counted
    if spec.function_type == "MinDose":
        return counted & (dose_gy < level + margin_gy)
    return counted & (dose_gy > level - margin_gy)


def _reduced_gradient(influence_csc, functions: Sequence[FunctionSpec], dose_gy: np.ndarray, duals: np.ndarray,
                      fractions: int) -> Tuple[np.ndarray, np.ndarray]:
    """∂L/∂w = n Aᵀ(Σ ω_i ∂f_i/∂d + λ) of the Lagrangian, and n |A|ᵀ|…| (its scale)."""
    y = duals.copy()
    for spec in functions:
        if not spec.is_constraint:
            np.add.at(y, spec.voxel_index, spec.weight * penalty_value_and_dose_gradient(spec, dose_gy)[1])
    n = float(fractions)
    magnitude = influence_csc if influence_csc.data.min() >= 0 else abs(influence_csc)
    return n * _transpose_times(influence_csc, y), n * _transpose_times(magnitude, np.abs(y))


def _dual_lower_bound(influence_csc, functions: Sequence[FunctionSpec], dose_gy: np.ndarray, duals: np.ndarray,
                      fractions: int) -> float:
    """Weak-duality bound :math:`-\\sum_k f_k^*(y_k)` on the whole problem's minimum, Gy².

    :math:`y_k` is objective k's dose gradient ω_k ∂f_k/∂d at ``dose_gy`` and, for the bounds
    d ≤ u, their dual values λ. Since :math:`f_k(d) \\ge y_k \\cdot d - f_k^*(y_k)` for every
    d, the objective is ≥ :math:`c \\cdot w - \\sum_k f_k^*(y_k)` with :math:`c = n A^T
    \\sum_k y_k`, which is the bound wherever c ≥ 0 (w ≥ 0). The conjugate of a one-sided
    or two-sided quadratic :math:`\\omega v (d - \\ell)^2` is :math:`y\\ell + y^2 / (4\\omega v)`
    (MinDose: y ≤ 0, MaxDose and DoseFallOff: y ≥ 0), of a bound :math:`\\lambda u` (λ ≥ 0).
    Where c < 0 (the solver's residual), every y that may grow (all but MinDose; voxels of
    volume ≥ 1e-3 of the function's largest) is raised by the smallest t that makes c ≥ 0;
    −inf when a column with c < 0 reaches none of them.
    """
    n = float(fractions)
    total = duals.copy()
    raisable = np.zeros(duals.size)
    bound = np.full(duals.size, np.inf)
    terms = []
    for spec in functions:
        level = np.broadcast_to(reference_level(spec), spec.voxel_index.shape).astype(np.float64)
        if spec.is_constraint:
            np.minimum.at(bound, spec.voxel_index, level)
            continue
        y = spec.weight * penalty_value_and_dose_gradient(spec, dose_gy)[1]
        curvature = spec.weight * normalized_weights(spec)
        grows = (curvature >= 1e-3 * curvature.max()) & (spec.function_type != "MinDose")   # t²/(4ωv) stays small
        terms.append((y, level, curvature, grows))
        np.add.at(total, spec.voxel_index, y)
        np.add.at(raisable, spec.voxel_index, grows.astype(np.float64))
    raisable[np.isfinite(bound)] += 1.0
    c = n * _transpose_times(influence_csc, total)
    t = 0.0
    if (c < 0).any():
        cover = n * _transpose_times(influence_csc, raisable)
        short = c < 0
        if (cover[short] <= 0).any():
            return -np.inf
        t = float(np.max(-c[short] / cover[short]))
    conjugate = 0.0
    for y, level, curvature, grows in terms:
        y = y + t * grows
        counted = curvature > 0
        conjugate += float(np.sum(y[counted] * level[counted] + y[counted] ** 2 / (4.0 * curvature[counted])))
    bounded = np.isfinite(bound)
    conjugate += float(np.sum((duals[bounded] + t) * bound[bounded]))
    return -conjugate


def reference_solution(influence_gy, functions: Sequence[FunctionSpec], *, fractions: int,
                       solver: str = "CLARABEL", screen_weights: Optional[np.ndarray] = None,
                       screen_margin_gy: float = 1.0, **solver_options) -> ReferenceSolution:
    """Minimum of the mock's objective under its constraints, solved exactly by cvxpy.

    Parameters
    ----------
    influence_gy : scipy.sparse matrix, Gy per fraction per unit weight
    functions : sequence of FunctionSpec
        Objectives and constraints of the types in :data:`CONVEX_TYPES` only
        (constraints: MaxDose or DoseFallOff, i.e. per-voxel upper bounds).
    fractions : int
    solver : str
        A cvxpy solver name (``CLARABEL`` or ``OSQP``).
    screen_weights : ndarray, optional
        Weights (e.g. the mock's) that pick where to start from: the voxels whose one-sided
        term or bound is active, or within ``screen_margin_gy`` of it, there (UniformDose:
        all), and the beamlets of positive weight there. The problem is solved again with
        the voxels whose term the solution makes non-zero or whose bound it breaks, and the
        beamlets whose reduced gradient n Aᵀ(Σ ω_i ∂f_i/∂d + λ) (λ: the solver's dual values
        of the bounds) is below −:data:`REDUCED_GRADIENT_TOLERANCE` of its magnitude, added,
        until none is: the solution then meets the KKT conditions of the whole problem (the
        left-out terms are ≥ 0 everywhere and 0 there, the left-out bounds hold, and no
        left-out beamlet would lower the Lagrangian), so it is its exact minimum. Needed at
        the default size, where the whole problem needs more memory than the machine has.
    **solver_options
        Passed to the solver, e.g. ``direct_solve_method="faer"`` (Clarabel's supernodal
        factorization).

    Returns
    -------
    ReferenceSolution
        :math:`\\min_w \\sum_i \\omega_i f_i(nAw)` over :math:`w \\ge 0` and the constraints
        (the constraints met exactly, no tolerance).

    Raises
    ------
    InputError
        A function outside :data:`CONVEX_TYPES`, or a constraint other than an upper bound;
        the solver finds no optimum; screening does not settle in 10 rounds.
    """
    for position, spec in enumerate(functions):
        if spec.function_type not in CONVEX_TYPES or (
                spec.is_constraint and spec.function_type not in ("MaxDose", "DoseFallOff")):
            raise InputError(f"functions[{position}] {spec.function_type} "
                             f"({'constraint' if spec.is_constraint else 'objective'}) has no convex reference")
    start = time.perf_counter()
    influence = scipy.sparse.csc_matrix(influence_gy)
    columns = np.arange(influence.shape[1])
    if screen_weights is None:
        kept = [normalized_weights(spec) > 0 for spec in functions]
    else:
        screen_weights = np.asarray(screen_weights, dtype=np.float64)
        if screen_weights.shape != (influence.shape[1],):
            raise InputError(f"screen_weights must have shape ({influence.shape[1]},), got {screen_weights.shape}")
        columns = np.flatnonzero(screen_weights > 0) if (screen_weights > 0).any() else columns
        dose = _dose(influence, screen_weights, fractions)
        kept = [_needed(spec, dose[spec.voxel_index], screen_margin_gy) for spec in functions]
    for rounds in range(1, _MAX_ROUNDS + 1):
        value, weights, duals = _solve_on(influence, functions, kept, columns, fractions, solver, solver_options)
        rows = np.unique(np.concatenate([spec.voxel_index[k] for spec, k in zip(functions, kept)]))
        dose = _dose(influence, weights, fractions)
        if screen_weights is None:
            break
        grown = False
        for k, spec in enumerate(functions):
            if (_needed(spec, dose[spec.voxel_index], -1e-6) & ~kept[k]).any():
                kept[k] = kept[k] | _needed(spec, dose[spec.voxel_index], screen_margin_gy)
                grown = True
        gradient, magnitude = _reduced_gradient(influence, functions, dose, duals, fractions)
        joining = gradient < -REDUCED_GRADIENT_TOLERANCE * magnitude
        joining[columns] = False
        if not grown and not joining.any():
            break
        columns = np.union1d(columns, np.flatnonzero(joining))
    else:
        raise InputError(f"the screened reference problem did not settle in {_MAX_ROUNDS} rounds")
    lower = _dual_lower_bound(influence, functions, dose, duals, fractions)
    return ReferenceSolution(value, weights, time.perf_counter() - start, int(rows.size), int(columns.size), rounds,
                             lower)


def reference_objective(influence_gy, functions: Sequence[FunctionSpec], *, fractions: int,
                        solver: str = "CLARABEL", screen_weights: Optional[np.ndarray] = None,
                        screen_margin_gy: float = 1.0, **solver_options) -> Tuple[float, np.ndarray, float]:
    """:func:`reference_solution` as (objective_gy2, weights, solve_s)."""
    solution = reference_solution(influence_gy, functions, fractions=fractions, solver=solver,
                                  screen_weights=screen_weights, screen_margin_gy=screen_margin_gy,
                                  **solver_options)
    return solution.objective_gy2, solution.weights, solution.solve_s


def gap_problem(name: str, **phantom_params) -> Tuple[object, List[FunctionSpec], np.ndarray, int]:
    """A convex planning problem on a built-in phantom, as RunOptimization sees it.

    PTVeval MinDose 24 Gy (weight 100) and MaxDose 28 Gy (20), GTV UniformDose 25 Gy (5),
    a ring PTV+5 mm..PTV+10 mm with a DoseFallOff 24 → 12 Gy over 1 cm (5), and MaxDose
    constraints on the cord PRV (12 Gy) and the esophagus (16 Gy), where present.

    Returns
    -------
    influence_gy, functions, initial_weights, fractions
    """
    from ._loader import load_phantom, unload
    from ._tps_optimizer import FunctionSpec as Spec

    patient = load_phantom(name, initial_plan="none", **phantom_params)
    try:
        case = patient.Cases[0]
        pm = case.PatientModel
        plan = case.TreatmentPlans[0]
        bs = plan.BeamSets[0]
        exam = bs._examination
        names = set(pm.RegionsOfInterest.Keys)
        ring = pm.CreateRoi(Name="rr_gap_ring", Color="Cyan", Type="Control")
        zero = {"Type": "Expand", "Superior": 0.0, "Inferior": 0.0, "Anterior": 0.0, "Posterior": 0.0,
                "Right": 0.0, "Left": 0.0}
        outer = dict(zero, **{k: 1.0 for k in zero if k != "Type"})
        inner = dict(zero, **{k: 0.5 for k in zero if k != "Type"})
        ring.CreateAlgebraGeometry(Examination=exam, Algorithm="Auto",
                                   ExpressionA={"Operation": "Union", "SourceRoiNames": ["PTV"],
                                                "MarginSettings": outer},
                                   ExpressionB={"Operation": "Union", "SourceRoiNames": ["PTV"],
                                                "MarginSettings": inner},
                                   ResultOperation="Subtraction", ResultMarginSettings=zero)
        po = plan.PlanOptimizations[0]
        wanted = [("MinDose", "PTVeval", dict(DoseLevel=2400, Weight=100), False),
                  ("MaxDose", "PTVeval", dict(DoseLevel=2800, Weight=20), False),
                  ("UniformDose", "GTV", dict(DoseLevel=2500, Weight=5), False),
                  ("DoseFallOff", ring.Name, dict(HighDoseLevel=2400, LowDoseLevel=1200, LowDoseDistance=1.0,
                                                  Weight=5), False),
                  ("MaxDose", "SpinalCord_PRV", dict(DoseLevel=1200), True),
                  ("MaxDose", "Esophagus", dict(DoseLevel=1600), True)]
        for ftype, roi, params, constraint in wanted:
            if roi not in names and roi != ring.Name:
                continue
            f = po.AddOptimizationFunction(FunctionType=ftype, RoiName=roi, IsConstraint=constraint)
            for key, value in params.items():
                setattr(f.DoseFunctionParameters, key, value)
        specs, _ = po._function_specs(po._functions(), Spec)      # (specs, owning function of each)
        return bs._influence.value, specs, np.array(bs._initial_weights), bs.FractionationPattern.NumberOfFractions
    finally:
        unload()
