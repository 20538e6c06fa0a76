"""The dense-column interior point (:mod:`optimizer._schur_ipm`) as a cvxpy solver (private).

cvxpy accepts a :class:`cvxpy.reductions.solvers.conic_solvers.conic_solver.ConicSolver`
instance as ``Problem.solve(solver=...)``: cvxpy canonicalizes the problem as for
any conic solver (``A z + s = b``, ``s`` in the cones) and this class solves it.
Only linear programs with inequality rows are taken (nonnegative cone): equality rows
are a :class:`cvxpy.error.SolverError` saying so; other cones and quadratic objectives
cvxpy itself refuses ("cannot solve").
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import cvxpy.settings as s
from cvxpy.error import SolverError
from cvxpy.reductions.solvers.conic_solvers.conic_solver import ConicSolver

from constraints.errors import InputError

from ._schur_ipm import SOLVER_NAME, IpmOptions, LpStatus, StructureError, solve_lp

__all__ = ["SchurIpm"]

_STATUS = {LpStatus.OPTIMAL: s.OPTIMAL, LpStatus.INFEASIBLE: s.INFEASIBLE, LpStatus.UNBOUNDED: s.UNBOUNDED,
           LpStatus.ITERATION_LIMIT: s.USER_LIMIT, LpStatus.NUMERICAL_ERROR: s.SOLVER_ERROR}


class SchurIpm(ConicSolver):
    """cvxpy interface of :func:`optimizer._schur_ipm.solve_lp` (solver options: the fields of
    :class:`optimizer._schur_ipm.IpmOptions`)."""

    MIP_CAPABLE = False

    def name(self) -> str:
        return SOLVER_NAME

    def cite(self, data: Any) -> str:
        """The method's reference (Mehrotra 1992; the code is this project's)."""
        return ("@article{mehrotra1992, author={Mehrotra, Sanjay}, title={On the implementation of a "
                "primal-dual interior point method}, journal={SIAM J Optim}, volume={2}, number={4}, "
                "pages={575--601}, year={1992}}")

    def import_solver(self) -> None:
        import scipy.linalg  # noqa: F401  (numpy and scipy are all it needs)

    def solve_via_data(self, data: Dict[str, Any], warm_start: bool, verbose: bool, solver_opts: Dict[str, Any],
                       solver_cache: Any = None) -> Dict[str, Any]:
        n_eq = data[ConicSolver.DIMS].zero      # other cones: cvxpy refuses before (not supported)
        if n_eq:
            raise SolverError(f"{SOLVER_NAME} solves LPs with inequality rows only; the problem has {n_eq} "
                              "equality rows. Use HIGHS or CLARABEL")
        try:
            options = IpmOptions(**solver_opts)
        except (TypeError, InputError) as exc:
            raise SolverError(f"{SOLVER_NAME}: {exc}; the options are the fields of IpmOptions") from exc
        try:
            sol = solve_lp(data[s.C], data[s.A], data[s.B], options=options)
        except StructureError as exc:
            raise SolverError(f"{SOLVER_NAME}: {exc}. Use HIGHS") from exc
        return {"status": _STATUS[sol.status], "value": sol.objective, "primal": sol.z,
                "eq_dual": np.zeros(0), "ineq_dual": sol.lam, "solution": sol}

    def invert(self, solution: Dict[str, Any], inverse_data: Any) -> Any:
        out = super().invert(solution, inverse_data)
        sol = solution["solution"]
        out.attr = dict(out.attr or {})
        out.attr.update({s.SOLVE_TIME: sol.solve_s, s.NUM_ITERS: sol.iterations})
        return out
