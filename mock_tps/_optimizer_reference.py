"""A reference solution of the mock optimizer's convex problems by cvxpy, and a phantom
problem to compare them on (the objective-gap test and ``bench/bench_optimizer_gap.py``).

Offline only: needs cvxpy (the ``offline`` extra); never imported by the mock's API.
"""
from __future__ import annotations

import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse

from constraints.errors import InputError

from ._tps_function_spec import FunctionSpec
from ._tps_penalties import normalized_weights, reference_level

__all__ = ["CONVEX_TYPES", "reference_objective", "gap_problem"]

#: The function types whose penalties are convex in the beamlet weights.
CONVEX_TYPES = ("MinDose", "MaxDose", "UniformDose", "DoseFallOff")


def _dose_at(influence_gy, rows: np.ndarray, weights: np.ndarray, fractions: int) -> np.ndarray:
    return float(fractions) * np.asarray(scipy.sparse.csr_matrix(influence_gy)[rows].astype(np.float64) @ weights)


def _solve_on(influence_gy, functions: Sequence[FunctionSpec], kept: List[np.ndarray], fractions: int,
              solver: str, solver_options: dict) -> Tuple[float, np.ndarray]:
    """Exact minimum with each function's terms on its ``kept`` voxels only (the full
    functions' normalized volume weights)."""
    import cvxpy as cp

    rows = np.unique(np.concatenate([spec.voxel_index[k] for spec, k in zip(functions, kept)]))
    matrix = (scipy.sparse.csr_matrix(influence_gy)[rows] * float(fractions)).toarray()
    w = cp.Variable(matrix.shape[1], nonneg=True)
    d = cp.Variable(rows.size)                 # the dose, so that every term is element-wise
    objective = 0
    constraints = [d == matrix @ w]
    for spec, keep in zip(functions, kept):
        if not keep.any():
            continue
        local = np.searchsorted(rows, spec.voxel_index[keep])
        v = normalized_weights(spec)[keep]
        level = np.broadcast_to(reference_level(spec), spec.voxel_index.shape)[keep]
        dose = d[local]
        if spec.is_constraint:
            constraints.append(dose <= level)
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
    return float(problem.value), np.asarray(w.value, dtype=np.float64)


def _needed(spec: FunctionSpec, dose_gy: np.ndarray, margin_gy: float) -> np.ndarray:
    """Voxels whose term is active (or within ``margin_gy`` of it) at ``dose_gy``."""
    level = np.broadcast_to(reference_level(spec), dose_gy.shape)
    counted = normalized_weights(spec) > 0
    if spec.function_type == "UniformDose":
        return counted
    if spec.function_type == "MinDose":
        return counted & (dose_gy < level + margin_gy)
    return counted & (dose_gy > level - margin_gy)


def reference_objective(influence_gy, functions: Sequence[FunctionSpec], *, fractions: int,
                        solver: str = "CLARABEL", screen_weights: Optional[np.ndarray] = None,
                        screen_margin_gy: float = 1.0, **solver_options) -> Tuple[float, np.ndarray, float]:
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
        Weights (e.g. the mock's) that pick the voxels to start from: those whose one-sided
        term or bound is active, or within ``screen_margin_gy`` of it, there (UniformDose:
        all). The rest join when the solution makes their term non-zero or breaks their
        bound, and the problem is solved again, until none does: the result is then the
        exact minimum of the whole problem (the left-out terms are ≥ 0 everywhere and 0 at
        the solution; the left-out bounds hold there). Needed at the default size, where
        the whole problem needs more memory than the machine has.
    **solver_options
        Passed to the solver, e.g. ``direct_solve_method="faer"`` (Clarabel's supernodal
        factorization).

    Returns
    -------
    objective_gy2 : float
        :math:`\\min_w \\sum_i \\omega_i f_i(nAw)` over :math:`w \\ge 0` and the constraints
        (the constraints met exactly, no tolerance).
    weights : ndarray
    solve_s : float

    Raises
    ------
    InputError
        A function outside :data:`CONVEX_TYPES`, or a constraint other than an upper bound;
        the solver finds no optimum; screening does not settle in 6 rounds.
    """
    for position, spec in enumerate(functions):
        if spec.function_type not in CONVEX_TYPES or (
                spec.is_constraint and spec.function_type not in ("MaxDose", "DoseFallOff")):
            raise InputError(f"functions[{position}] {spec.function_type} "
                             f"({'constraint' if spec.is_constraint else 'objective'}) has no convex reference")
    start = time.perf_counter()
    if screen_weights is None:
        kept = [normalized_weights(spec) > 0 for spec in functions]
    else:
        kept = [_needed(spec, _dose_at(influence_gy, spec.voxel_index, screen_weights, fractions), screen_margin_gy)
                for spec in functions]
    for _ in range(6):
        value, weights = _solve_on(influence_gy, functions, kept, fractions, solver, solver_options)
        if screen_weights is None:
            return value, weights, time.perf_counter() - start
        grown = False
        for k, spec in enumerate(functions):
            missing = _needed(spec, _dose_at(influence_gy, spec.voxel_index, weights, fractions), -1e-6) & ~kept[k]
            if missing.any():
                kept[k] = kept[k] | _needed(spec, _dose_at(influence_gy, spec.voxel_index, weights, fractions),
                                            screen_margin_gy)
                grown = True
        if not grown:
            return value, weights, time.perf_counter() - start
    raise InputError("the screened reference problem did not settle in 6 rounds")


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
