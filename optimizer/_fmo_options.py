"""Settings of the offline FMO: solver, objective weights, screening (frozen, all recorded)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from constraints.errors import InputError

from ._schur_ipm_options import SOLVER_NAME as SCHUR_IPM

__all__ = ["SOLVER_DEFAULTS", "CANON_BACKEND", "DEFAULT_TRUNCATION", "LP_SOLVERS", "FmoOptions"]

#: Tolerances passed to each solver (recorded in every result).
SOLVER_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-8, "max_iter": 200},
    "HIGHS": {"solver": "ipm", "run_crossover": "off", "primal_feasibility_tolerance": 1e-8,
              "dual_feasibility_tolerance": 1e-8, "random_seed": 0, "output_flag": False},
    "SCS": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 200000},
    SCHUR_IPM: {"tol_feas": 1e-8, "tol_gap": 1e-8, "max_iter": 100},
}
#: cvxpy's canonicalization backend: "SCIPY" compiles the large constant influence blocks in half
#: the time of the default.
CANON_BACKEND = "SCIPY"
#: Objective truncation of the solvers other than ``SCHUR_IPM`` (:attr:`FmoOptions.truncation`).
DEFAULT_TRUNCATION = 0.01
#: Solvers that take LPs only.
LP_SOLVERS = ("HIGHS", SCHUR_IPM)


@dataclass(frozen=True)
class FmoOptions:
    """Solver and objective settings (all recorded in the result).

    Attributes
    ----------
    solver : {'SCHUR_IPM', 'HIGHS', 'CLARABEL', 'SCS'}
        ``SCHUR_IPM`` (default): this project's primal–dual interior point for LPs with
        dense beamlet columns (:mod:`optimizer._schur_ipm`), on the LP assembled directly
        (:mod:`optimizer._fmo_lp`): HiGHS's optimum (tested) in a fraction of its time, since
        it factorizes in beamlet space.  ``HIGHS`` is the reference LP solver; ``CLARABEL``
        also takes the quadratic under-dose.  Measurements: ``docs/decisions/fmo-formulation-and-solver.md``.
    underdose : {'linear', 'quadratic'}
        Linear keeps an LP (HiGHS-capable); quadratic is a QP.
    coverage_headroom_gy : float, Gy
        The under-dose reference is ``R + h`` so voxels the solver brings "to R"
        count in ``V_R`` despite round-off.
    falloff_weight, fluence_weight : float
        λ_f and λ_w of the objective.
    bound_backoff_gy : float, Gy
        ε: hard bounds and CVaR limits are imposed at ``L − ε``.
    objective_truncation : float in [0, 1) or None
        Influence entries below this fraction of their beamlet's maximum are dropped
        from the *objective* rows (target, ring) only; the dropped dose
        ``(A − A_trunc) w`` of the previous round is added back as a constant
        (PortPy-style correction).  Constraint rows are never truncated.  None
        (default): 0 for ``SCHUR_IPM``, :data:`DEFAULT_TRUNCATION` for the others
        (:attr:`truncation`).
    screen_fraction : float, >= 0
        Constraint screening (row generation).  ``inf`` (default): the first round
        holds the objective only; a finite value puts in the first round the
        constraint voxels whose dose at uniform weights (scaled to the prescription)
        reaches this fraction of their limit; 0 keeps every voxel (no screening).
        After each round every constraint voxel is checked on the full matrix.
    screen_band_fraction : float in [0, 1)
        When a round has violators, inactive voxels with ``d > (L − ε)(1 − band)``
        enter too (fewer rounds).
    screen_objective_voxels : bool
        With ``SCHUR_IPM`` and full objective rows: the constraint voxels inside the
        target or ring enter from the first round, since their rows are in the LP
        already (2 mm dose grid T4–T5: 2 rounds with 26 violators after the first,
        against 4 rounds; ``docs/decisions/fmo-shared-rows-and-direct-lp.md``).  Needs ``screen_fraction > 0``.
    screen_check_gap : float or None
        With ``SCHUR_IPM``, screening and full objective rows: when a round's relative gap
        first reaches this, the full-matrix dose of its iterate is screened like a solution's;
        the voxels it finds enter and the solve goes on from that iterate (a warm start), so
        most cases need one round.  None: no mid-round check.
    screen_check_band : float in [0, 1)
        The band of that check (wider than ``screen_band_fraction``: the iterate's dose is not
        yet the optimum's).
    max_rounds : int
        Rounds of screening/correction (each one solve).
    correction_tol_gy : float, Gy
        With truncation, rounds go on until the correction the last solve used differs
        from the one of its solution by at most this on every objective row (the
        objective then sees the full-matrix dose within this tolerance).  Default 0.1 Gy
        (0.4 % of 24 Gy): it affects the objective only, never a bound, and each extra
        round costs a whole solve (5 min at the default T4–T5 size).

    solver_options : mapping or None
        Overrides of :data:`SOLVER_DEFAULTS`.
    """

    solver: str = SCHUR_IPM
    underdose: str = "linear"
    coverage_headroom_gy: float = 0.05
    falloff_weight: float = 0.1
    fluence_weight: float = 1e-3
    bound_backoff_gy: float = 1e-3
    objective_truncation: Optional[float] = None
    screen_fraction: float = float("inf")
    screen_band_fraction: float = 0.05
    screen_objective_voxels: bool = True
    screen_check_gap: Optional[float] = 0.3
    screen_check_band: float = 0.3
    max_rounds: int = 12
    correction_tol_gy: float = 0.1
    solver_options: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        if self.solver not in SOLVER_DEFAULTS:
            raise InputError(f"solver must be one of {sorted(SOLVER_DEFAULTS)}, got {self.solver!r}")
        if self.underdose not in ("linear", "quadratic"):
            raise InputError(f"underdose must be 'linear' or 'quadratic', got {self.underdose!r}")
        if self.solver in LP_SOLVERS and self.underdose == "quadratic":
            raise InputError(f"solver {self.solver} takes LPs only: use underdose='linear' or another solver")
        if self.screen_check_gap is not None and not self.screen_check_gap > 0:
            raise InputError(f"screen_check_gap must be > 0 or None, got {self.screen_check_gap!r}")
        for name in ("objective_truncation", "screen_band_fraction", "screen_check_band"):
            value = getattr(self, name)
            if not (value is None and name == "objective_truncation") and not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {value!r}")
        if not self.screen_fraction >= 0:
            raise InputError(f"screen_fraction must be >= 0 (inf: start from the objective only), "
                             f"got {self.screen_fraction!r}")
        if self.max_rounds < 1:
            raise InputError(f"max_rounds must be >= 1, got {self.max_rounds!r}")
        if not self.correction_tol_gy > 0:
            raise InputError(f"correction_tol_gy must be > 0 Gy, got {self.correction_tol_gy!r}")

    @property
    def truncation(self) -> float:
        """``objective_truncation``, or its default for the solver when None: 0 for ``SCHUR_IPM``
        (whose voxel rows are shared, so full objective rows cost nothing more and need no
        correction rounds), :data:`DEFAULT_TRUNCATION` for the others."""
        if self.objective_truncation is not None:
            return float(self.objective_truncation)
        return 0.0 if self.solver == SCHUR_IPM else DEFAULT_TRUNCATION

    def settings(self) -> Dict[str, Any]:
        """The solver's settings: :data:`SOLVER_DEFAULTS` updated by ``solver_options``."""
        s = dict(SOLVER_DEFAULTS[self.solver])
        s.update(self.solver_options or {})
        return s

    def solve_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``cvxpy.Problem.solve`` (HiGHS options travel in ``highs_options``,
        since HiGHS's own ``solver`` option would clash with cvxpy's)."""
        s = self.settings()
        return {"highs_options": s} if self.solver == "HIGHS" else s
