"""The mock TPS optimizer: beamlet-weight optimization with RayStation's optimization
functions and constraints (``PlanOptimization.RunOptimization()`` of the mock).

This module knows nothing of the mock object model: it takes an influence matrix
(Gy per fraction per unit beamlet weight) and a sequence of :class:`FunctionSpec`,
and returns an :class:`OptimizationResult`. The parts: the functions
(:mod:`._tps_function_spec`, :mod:`._tps_penalties`), the augmented-Lagrangian merit
(:mod:`._tps_merit`), one Gauss-Newton iteration (:mod:`._tps_newton`), and here the
outer loop.

All dose levels are TOTAL planned doses in Gy (all fractions), as RayStation's
optimization functions refer to the beam set's total dose; the planned total dose
is ``fractions * influence_gy @ weights``.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse

from constraints.errors import InputError

from ._tps_function_spec import FUNCTION_TYPES, FunctionSpec, read_only, real_in_range
from ._tps_merit import prepare, rmatvec
from ._tps_newton import Iterate, NewtonOptions, newton_step
from ._tps_penalties import constraint_violation_gy, penalty_value_and_dose_gradient

__all__ = [
    "FUNCTION_TYPES",
    "FunctionSpec",
    "OptimizationResult",
    "penalty_value_and_dose_gradient",
    "constraint_violation_gy",
    "objective_value_and_gradient",
    "optimize_beamlet_weights",
    "NewtonOptions",
]

_LOG = logging.getLogger(__name__)

# Outer (augmented-Lagrangian) loops are capped, whatever the iteration budget.
_MAX_OUTER_LOOPS = 30
# Constraints aim this fraction of the constraint tolerance inside their levels.
_BACKOFF = 0.5
_FIRST_INNER_TOLERANCE = 1e-2
_INNER_TOLERANCE_DECAY = 0.1
_TINY = 1e-300


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    """Outcome of :func:`optimize_beamlet_weights`.

    Attributes
    ----------
    weights : ndarray of float, shape (n_beamlets,)
        Optimized beamlet weights (≥ 0, read-only), same unit as the input weights.
    iterations : int
        Total Gauss-Newton iterations over all outer loops (≤ ``max_iterations``).
    function_evaluations : int
        Number of objective-and-gradient evaluations.
    outer_iterations : int
        Number of augmented-Lagrangian outer loops (1 without constraints).
    objective_values : tuple of float
        Objective Σ weight_i f_i (objectives only, Gy²) at the initial weights, then
        after every iteration: ``len == iterations + 1``.
    function_values : tuple of float
        Penalty value f_i (Gy², unweighted) of every function, input order.
    constraint_violations_gy : tuple of float
        Violation of every function read as a constraint (Gy, input order; ≤ 0 means
        met exactly), see :func:`constraint_violation_gy`.
    constraint_satisfied : tuple of (bool or None)
        For constraints: violation ≤ ``constraint_tolerance_gy``; None for objectives.
    converged : bool
        The last subproblem met the optimality tolerance and every constraint is satisfied.
    message : str
        Why the optimization stopped, naming violated constraints.
    time_s : float
        Wall-clock time of the call in seconds.
    """

    weights: np.ndarray
    iterations: int
    function_evaluations: int
    outer_iterations: int
    objective_values: Tuple[float, ...]
    function_values: Tuple[float, ...]
    constraint_violations_gy: Tuple[float, ...]
    constraint_satisfied: Tuple[Optional[bool], ...]
    converged: bool
    message: str
    time_s: float


def _validate_problem(influence_gy, functions, fractions, initial_weights, max_iterations,
                      optimality_tolerance, constraint_tolerance_gy) -> Tuple[scipy.sparse.spmatrix, np.ndarray]:
    if not scipy.sparse.issparse(influence_gy) or len(influence_gy.shape) != 2:
        raise InputError(f"influence_gy must be a 2-D scipy.sparse matrix (voxels × beamlets, Gy per fraction "
                         f"per unit weight), got {type(influence_gy).__name__}")
    matrix = influence_gy   # float32/64 is used as is (the mock's matrices are float32 CSC)
    if matrix.dtype not in (np.float32, np.float64):
        matrix = scipy.sparse.csr_matrix(influence_gy, dtype=np.float64)
    if not np.all(np.isfinite(matrix.data)):
        raise InputError("influence_gy contains non-finite values")
    n_voxels, n_beamlets = matrix.shape
    if isinstance(fractions, bool) or not isinstance(fractions, (int, np.integer)) or fractions < 1:
        raise InputError(f"fractions must be an integer >= 1, got {fractions!r}")
    weights = np.asarray(initial_weights, dtype=np.float64)
    if weights.shape != (n_beamlets,):
        raise InputError(f"initial_weights must have shape ({n_beamlets},) (one per beamlet column of "
                         f"influence_gy), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or weights.min(initial=0.0) < 0:
        raise InputError("initial_weights must be finite and >= 0")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)) or max_iterations < 1:
        raise InputError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    real_in_range("optimality_tolerance", optimality_tolerance, low=0.0, low_open=True)
    real_in_range("constraint_tolerance_gy", constraint_tolerance_gy, low=0.0, low_open=True, unit="Gy")
    if isinstance(functions, (str, bytes)) or not hasattr(functions, "__len__"):
        raise InputError(f"functions must be a sequence of FunctionSpec, got {type(functions).__name__}")
    if len(functions) == 0:
        raise InputError("functions must hold at least one FunctionSpec, got none")
    for position, spec in enumerate(functions):
        if not isinstance(spec, FunctionSpec):
            raise InputError(f"functions[{position}] must be a FunctionSpec, got {type(spec).__name__}")
        if spec.voxel_index.max() >= n_voxels:
            raise InputError(f"functions[{position}].voxel_index reaches row {int(spec.voxel_index.max())}, "
                             f"but influence_gy has {n_voxels} rows")
    return matrix, weights


def _one_blas_thread():
    """Context in which BLAS runs on one thread: a product's rounding depends on how many
    threads share it, and the optimizer's active sets amplify rounding into different plans
    (coarse T4-T5: 0.8 Gy apart with 2 threads), so the thread count is fixed, not inherited.
    Without threadpoolctl the environment's count applies."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:    # pragma: no cover - threadpoolctl comes with the offline extra
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _augmented_lagrangian(problem, weights: np.ndarray, max_iterations: int, optimality_tolerance: float,
                          constraint_tolerance_gy: float, progress, newton: NewtonOptions):
    """Outer loop: subproblems by Newton steps, then multiplier updates, until the constraints
    hold and the last subproblem is solved, or the budget is spent."""
    weights = np.where(problem.locked, 0.0, weights)
    d = problem.dose(weights)
    merit, objective = problem.merit(d)
    x = Iterate(weights, d, merit, objective)
    objective_values = [objective]
    iterations, outer, inner_solved, all_satisfied = 0, 0, False, True
    while iterations < max_iterations and outer < _MAX_OUTER_LOOPS:
        outer += 1
        remaining = max_iterations - iterations
        budget = remaining if not problem.constraints else min(remaining, max(10, max_iterations // 4))
        inner_solved = False
        # early subproblems are solved loosely: their multipliers are provisional
        tolerance = max(optimality_tolerance, _FIRST_INNER_TOLERANCE * _INNER_TOLERANCE_DECAY ** (outer - 1))
        if not problem.constraints:
            tolerance = optimality_tolerance
        for _ in range(budget):
            before = x.merit
            x, predicted = newton_step(problem, x, newton)
            iterations += 1
            objective_values.append(x.objective)
            if progress is not None:
                progress(iterations, x.objective)
            scale = max(abs(before), _TINY)
            if predicted <= tolerance * scale or before - x.merit <= tolerance * scale:
                inner_solved = tolerance <= optimality_tolerance or predicted <= optimality_tolerance * scale
                break
        if not problem.constraints:
            break
        violations = problem.violations_gy(x.dose)
        all_satisfied = all(v <= constraint_tolerance_gy for v in violations)
        if all_satisfied and inner_solved:
            break
        problem.update_multipliers(x.dose, constraint_tolerance_gy)
        x = Iterate(x.weights, x.dose, *problem.merit(x.dose))   # the merit function changed
    return x, iterations, outer, inner_solved, objective_values


def objective_value_and_gradient(influence_gy, functions: Sequence[FunctionSpec], weights: np.ndarray, *,
                                 fractions: int) -> Tuple[float, np.ndarray]:
    """Objective Σ weight_i f_i over the non-constraint functions, and its weight gradient.

    Parameters
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets), Gy per fraction per unit weight
    functions : sequence of FunctionSpec
    weights : ndarray of float, shape (n_beamlets,), ≥ 0
    fractions : int, ≥ 1

    Returns
    -------
    value_gy2 : float
        :math:`F(w) = \\sum_i \\omega_i f_i(n A w)` in Gy² (ω_i the weights, n fractions).
    gradient : ndarray of float, shape (n_beamlets,)
        :math:`\\nabla F = n A^T \\sum_i \\omega_i \\nabla_d f_i`.

    Raises
    ------
    InputError
        As :func:`optimize_beamlet_weights`.
    """
    matrix, weights = _validate_problem(influence_gy, functions, fractions, weights, 1, 1.0, 1.0)
    problem = prepare(matrix, functions)
    d = problem.dose(fractions * weights)
    grad_d = np.zeros(problem.n_rows)
    value = problem.objective_from_dose(d, grad_d)
    return value, fractions * rmatvec(problem.matrix, grad_d)


def optimize_beamlet_weights(influence_gy, functions: Sequence[FunctionSpec], *, fractions: int,
                             initial_weights: np.ndarray, max_iterations: int = 100,
                             optimality_tolerance: float = 1e-6, constraint_tolerance_gy: float = 0.05,
                             progress: Optional[Callable[[int, float], None]] = None,
                             newton: NewtonOptions = NewtonOptions()) -> OptimizationResult:
    """Optimize non-negative beamlet weights against penalty functions and constraints.

    Parameters
    ----------
    influence_gy : scipy.sparse matrix, shape (n_voxels, n_beamlets), Gy per fraction per unit weight
        Rows are flattened dose-grid voxels. The total planned dose is
        ``fractions * influence_gy @ weights``.
    functions : sequence of FunctionSpec
        Objectives (``is_constraint=False``) and constraints; dose levels are total Gy.
    fractions : int
        Number of fractions of the beam set, ≥ 1.
    initial_weights : ndarray of float, shape (n_beamlets,)
        Start point (≥ 0), e.g. the current plan's weights or zeros.
    max_iterations : int
        Cap on the TOTAL number of (Newton) iterations over all outer loops
        (RayStation's ``MaxNumberOfIterations``), ≥ 1.
    optimality_tolerance : float
        A subproblem is solved when one iteration lowers its merit function by less than
        this fraction (relative), or predicts less.
    constraint_tolerance_gy : float
        A constraint is satisfied when its violation (see :func:`constraint_violation_gy`)
        is ≤ this, in Gy (> 0).
    progress : callable (iteration, objective_value_gy2) -> None, optional
        Called after every iteration with the running iteration count (1-based) and
        the objective value, as RayStation's ``ProgressOfOptimization``.
    newton : NewtonOptions
        How each iteration's Newton system is solved (exact or by conjugate gradients).

    Returns
    -------
    OptimizationResult
        Unconverged or infeasible runs are returned, not raised: ``converged`` is False,
        ``constraint_satisfied`` and ``message`` say which constraint fails.

    Raises
    ------
    InputError
        A wrong type, shape or value of any argument, or a function's ``voxel_index``
        beyond the rows of ``influence_gy``.

    Notes
    -----
    Minimizes :math:`F(w) = \\sum_{i \\in obj} \\omega_i f_i(d)`, :math:`d = n A w`, subject to
    :math:`w \\ge 0` and the constraints, by an augmented Lagrangian [1]_ whose subproblems
    are solved by projected Gauss-Newton steps [2]_ (RayStation uses SQP; both reach a KKT
    point of the same problem, and on the convex functions — MinDose, MaxDose,
    UniformDose, DoseFallOff — its minimum).
    A constraint c enters the subproblem as :math:`\\tfrac{\\mu_c}{2} f_c(d; D_c \\mp \\sigma_c)`,
    its own penalty with the level shifted by :math:`\\sigma_c` (per voxel for MaxDose,
    MinDose, UniformDose and DoseFallOff, so that each voxel bound :math:`d_v \\le r_v` has
    its own multiplier :math:`\\lambda_v = \\mu_c \\kappa_v \\hat w_v \\sigma_v`; one scalar for
    DVH, EUD and uniformity). After every subproblem :math:`\\sigma \\leftarrow (\\sigma + g)_+`
    (:math:`g` the violation of the aimed level) and the penalty factor :math:`\\kappa`
    grows ten-fold — per voxel for the pointwise types — where the violation did not fall
    below a quarter of its previous value: the voxels next to a target need a far stiffer
    penalty than the rest of the organ, and one factor per function would make them all
    that stiff. :math:`\\mu_c` starts at ten times the objectives' curvature on the
    constraint's beamlets (:func:`mock_tps._tps_merit.prepare`).

    One iteration (:func:`mock_tps._tps_newton.newton_step`): the Gauss-Newton model of the
    merit (the penalties are piecewise quadratic in dose: curvature :math:`2\\hat w_v` where
    a residual is positive; gEUD and uniformity terms rank one) is minimized over the
    beamlets not held at zero — exactly when at most 1200 are free, else by preconditioned
    conjugate gradients — and the merit minimized along the step. Each subproblem gets at
    most a quarter of ``max_iterations`` (at least 10) while constraints remain violated.
    The optimization runs on a float32 copy of the influence rows the functions use (half
    the memory traffic); doses, merit values and all decisions are float64. BLAS threading
    changes a result only by rounding (``tests/mock_tps/test_tps_optimizer_threads.py``).

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer (2006), ch. 17.
    .. [2] D. P. Bertsekas, "Projected Newton methods for optimization problems with simple
       constraints", SIAM J. Control Optim. 20(2), 221-246 (1982).

    Examples
    --------
    >>> import scipy.sparse
    >>> influence = scipy.sparse.identity(2, format="csr")      # 1 Gy per fraction per unit weight
    >>> specs = [FunctionSpec("MinDose", np.array([0]), np.ones(1), dose_level_gy=24.0),
    ...          FunctionSpec("MaxDose", np.array([1]), np.ones(1), dose_level_gy=6.0)]
    >>> result = optimize_beamlet_weights(influence, specs, fractions=2, initial_weights=np.zeros(2))
    >>> np.round(result.weights, 3).tolist()   # 24 Gy / 2 fx on voxel 0; voxel 1 stays at 0
    [12.0, 0.0]
    """
    start = time.perf_counter()
    matrix, weights = _validate_problem(influence_gy, functions, fractions, initial_weights, max_iterations,
                                        optimality_tolerance, constraint_tolerance_gy)
    with _one_blas_thread():
        problem = prepare(matrix, functions, backoff_gy=_BACKOFF * constraint_tolerance_gy, single=True)
        # the variable is fractions × weights (see prepare)
        x, iterations, outer, inner_solved, objective_values = _augmented_lagrangian(
            problem, fractions * weights, max_iterations, optimality_tolerance, constraint_tolerance_gy,
            progress, newton)
        full_dose = np.zeros(matrix.shape[0])
        full_dose[problem.rows] = problem.dose_float64(x.weights)
    weights = x.weights / fractions
    function_values = tuple(float(penalty_value_and_dose_gradient(s, full_dose)[0]) for s in functions)
    violations_gy = tuple(constraint_violation_gy(s, full_dose) for s in functions)
    satisfied = tuple((v <= constraint_tolerance_gy) if s.is_constraint else None
                      for s, v in zip(functions, violations_gy))
    failed = [f"functions[{i}] {s.function_type} (violation {v:.4g} Gy > {constraint_tolerance_gy:g} Gy)"
              for i, (s, v, ok) in enumerate(zip(functions, violations_gy, satisfied)) if ok is False]
    converged = inner_solved and not failed
    if failed:
        message = ("constraints not satisfied after "
                   f"{iterations} of {max_iterations} iterations: " + "; ".join(failed))
        _LOG.warning(message)
    elif inner_solved:
        message = f"converged after {iterations} iterations ({outer} outer loops)"
    else:
        message = f"stopped after {iterations} of {max_iterations} iterations (iteration limit)"
    return OptimizationResult(
        weights=read_only(weights), iterations=iterations, function_evaluations=problem.evaluations,
        outer_iterations=outer, objective_values=tuple(float(v) for v in objective_values),
        function_values=function_values, constraint_violations_gy=violations_gy, constraint_satisfied=satisfied,
        converged=converged, message=message, time_s=time.perf_counter() - start)
