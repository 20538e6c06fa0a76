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
  round: at relative gap :data:`SCREEN_CHECK_GAP` the iterate's dose is checked on the full
  matrix, the voxels it finds (band :data:`SCREEN_CHECK_BAND`) enter, and the solve goes on
  from that iterate (a warm start, :func:`_warm_start`); a round still needed after that starts
  from the same iterate.  The check is a prediction only: the optimum is checked as before.
  With truncation (or no check) the first round is solved to :data:`FIRST_ROUND_TOL` and is
  never the last; each later round starts from the beamlets of the one before
  (:data:`HINT_REDUCED_COST`);
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

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import numpy as np

from constraints.errors import InfeasibleError, InputError

from ._fmo_build import BuiltProblem, build_problem, constraint_items, objective_matrices, objective_regions
from ._fmo_screen import add_violators, initial_active, weighted_cvar
from ._schur_ipm_options import SOLVER_NAME as SCHUR_IPM
from ._schur_ipm_options import IpmOptions, LpStatus

_log = logging.getLogger(__name__)

__all__ = ["Region", "MaxBound", "VolumeCap", "FmoSpec", "FmoOptions", "FmoMetrics", "FmoResult",
           "build_fmo_problem", "solve_fmo", "weighted_cvar", "SOLVER_DEFAULTS"]

#: Tolerances passed to each solver (recorded in every result).
SOLVER_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-8, "max_iter": 200},
    "HIGHS": {"solver": "ipm", "run_crossover": "off", "primal_feasibility_tolerance": 1e-8,
              "dual_feasibility_tolerance": 1e-8, "random_seed": 0, "output_flag": False},
    "SCS": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 200000},
    SCHUR_IPM: {"tol_feas": 1e-8, "tol_gap": 1e-8, "max_iter": 100},
}
#: cvxpy's canonicalization backend: "SCIPY" compiles the large constant influence
#: blocks in half the time of the default (default-size t4t5, 29 M non-zeros: 24 s against 50 s).
CANON_BACKEND = "SCIPY"
#: Objective truncation of the solvers other than ``SCHUR_IPM`` (:attr:`FmoOptions.truncation`).
DEFAULT_TRUNCATION = 0.01
#: Solvers that take LPs only.
LP_SOLVERS = ("HIGHS", SCHUR_IPM)


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
            cov = np.asarray(r.coverage)
            if cov.shape != r.rows.shape or not ((cov > 0) & (cov <= 1)).all():
                raise InputError(f"region {r.name!r}: coverage must have one value in (0, 1] per row "
                                 f"(shape {cov.shape} for {r.rows.size} rows, min {cov.min(initial=np.inf)})")


@dataclass(frozen=True)
class FmoOptions:
    """Solver and objective settings (all recorded in the result).

    Attributes
    ----------
    solver : {'SCHUR_IPM', 'HIGHS', 'CLARABEL', 'SCS'}
        ``SCHUR_IPM`` (default): this project's primal–dual interior point for LPs with
        dense beamlet columns (:mod:`optimizer._schur_ipm`), on the LP assembled directly
        (:mod:`optimizer._fmo_lp`; cvxpy can also drive it as a custom solver); same optimum
        as HiGHS on the same LP (12 coarse phantom × strategy cases, no truncation:
        objectives within 5e-9 relative, the same V24Gy and pass flags; 17.6 s in all against
        152 s), default-size T4–T5 in 29 s against about 9 min.
        ``HIGHS`` is the reference LP solver; ``CLARABEL`` also takes the quadratic
        under-dose.
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
        against 4 rounds with 1 936, 1 146 and 9).  Needs ``screen_fraction > 0``.
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

    Defaults were chosen by measurement (2 shared cores, OPENBLAS_NUM_THREADS=1; coarse
    t4t5: CT 4 mm, dose grid 5 mm, bixel 10 mm: 4352 voxels x 570 beamlets,
    nnz 1.62 M, ``exact`` spec with 6416 constraint+objective rows):

    ====================================================  =======  ========  ======
    formulation / solver                                   rounds   solve s   V24 %
    ====================================================  =======  ========  ======
    full rows, all voxels, HiGHS dual simplex (old CLI)       1      47.1     41.2
    full rows, all voxels, HiGHS IPM no crossover             1      69.0     41.2
    full rows, all voxels, Clarabel (qdldl)                   1     117.9     41.2
    full rows, all voxels, HiGHS PDLP (100 s limit)           1    >100 (not converged)
    row generation + 1 % objective truncation, HiGHS IPM      3      14.4     41.3
      same, HiGHS simplex (3 % truncation)                    4      73.1     40.7
      same, Clarabel faer                                     3      34.2     41.3
      same, 5 % objective truncation, HiGHS IPM               4      46.1     39.8
      same, probe screening at 1.0 (3 %), HiGHS IPM           2      38.7     39.4
    ====================================================  =======  ========  ======

    (cvxpy build + canonicalization: 1.1 s of the 15.8 s wall time of the default.)
    The cost is the dense full constraint rows (60–95 % filled): every violator of the
    first round enters with ~n_beamlets non-zeros.  OSQP on the LP did not converge
    in 90 000 iterations (296 s).

    Also measured and not adopted (default-size t4t5 is CT 2 mm, dose grid 2.5 mm,
    bixel 5 mm: 30 720 voxels x 1 389 beamlets, 32 M nnz):

    * HiGHS dual simplex on the default-size first round (11 822 objective rows,
      2.4 M nnz): 730 s, against 55 s for the IPM.
    * exact aggregation of the hinge terms (target voxels firmly below the level and
      ring voxels firmly above their limit summed into one linear row each, voxels
      near the kink kept as full rows; no truncation): coarse 30 s against 20 s, same
      optimum as untruncated rows; the kink band and the constraint band grow to
      3 400 full rows.
    * warm starts through cvxpy (fixed-size parameter blocks so the structure stays,
      HiGHS seeded by ``setSolution``): a re-solve where only the correction changed
      took 46 s against 12 s cold (coarse).
    * starting the default size from the solution on a 5 mm dose grid with the same
      beamlets: 537 s against about 600 s.
    * looser HiGHS tolerances (1e-6): 19.4 s against 20.2 s (coarse).
    * HiPO, HiGHS's direct-factorization IPM (not in the highspy 1.16 wheel:
      ``solver='hipo'`` is an error there; built from the sdist with
      ``-DHIPO_PYTHON=ON`` and OpenBLAS, 2 threads, presolve off): coarse last round
      3.5 s against 6.6 s for IPX; default-size second round (14 695 rows, 6.1 M nnz)
      314 s against about 250 s.

    ``SCHUR_IPM`` (default since it was built) forms the beamlet-space normal matrix with
    BLAS, as the measurement above suggested: default-size t4t5 ``exact``, 3 rounds, 87 s
    against about 9 min for HiGHS IPM (rounds 17 / 40 / 41 s against 55 / 250 / ... s);
    2 mm dose grid, 4 rounds, 4.5 min (of which cvxpy compilation 42 s), where HiGHS had
    not finished 2 rounds in 19.5 min.  Mehrotra's start took the default-size second
    round from 45 to 35 iterations, Gondzio's correctors from 35 to 28 (32 s to 28 s).
    Objective truncation still pays with it (fewer non-zeros for cvxpy to compile, and
    fewer rounds): without it the default size needed more than 3 rounds and 140 s.
    Column generation inside SCHUR_IPM (zero beamlets leave the system, priced at the
    end) took the default size to 69–80 s (two runs) and the 2 mm grid to 222 s (rounds
    33 / 53 / 67 / 69 s), same objective.  Then the LP assembled directly instead of by cvxpy
    (:mod:`optimizer._fmo_lp`; compilation 39 s → 1 s at 2 mm), products with ``A`` through
    its dense block, leaner Ruiz passes and the restricted structure sub-set instead of
    re-classified: default size 48 s, 2 mm grid 139 s (rounds 28 / 34 / 37 / 40 s), same
    objectives; with the first round solved to 1e-4 (:data:`FIRST_ROUND_TOL`) 45 s and 125 s.
    Then each voxel's row once in the normal matrix (``SharedRows``), full objective rows,
    the constraint voxels of the objective from the first round, and later rounds started
    from the previous round's beamlets: the 2 mm grid in 2 rounds, 56–65 s (rounds 33–36 /
    23–28 s; 22 632 distinct rows against 36 216), objective 1.31236 against 1.32082 with
    truncation (V24Gy 77.3 % against 76.7 %); default size T4–T5 31–33 s, C7–T1 26 s.  With
    the normal matrix summed in float32 while the gap is above 1e-2: 47–51 s (26 / 21 s), T4–T5
    29 s, C7–T1 22 s, C3 6.3 s, T8 16 s.  Then the screening check at gap 0.3 with a warm start
    (:data:`SCREEN_CHECK_GAP`) and the Ruiz passes in float32: one round everywhere; 2 mm grid
    T4–T5 42–43 s (38 s with band 0.15), C7–T1 28 s, T8 21 s, C3 7–8 s (against 50–56, 41–50,
    27, 10 s measured the same day with two rounds); default size T4–T5 25 s, C7–T1 18 s, C3
    5.9 s, T8 16 s.  Then the solves' products with the distinct rows in float32 while ``H`` is
    summed in float32, and two copies of the block less in the setup: 2 mm grid T4–T5 32–36 s
    (the same objective; 47–51 iterations, a count that moves by ±4 with rounding-level
    changes, all of it in the last phase), C7–T1 23 s, T8 19 s, C3 6.3 s; default size T4–T5
    22 s, C7–T1 12 s, C3 5.2 s, T8 12 s.  Then ``H`` in float64 below gap 1e-2 only over the rows
    that carry all but 1e-7 of its trace (float32 over the rest,
    :data:`~optimizer._schur_ipm.DOUBLE_PRECISION_SHARE`; the same iterations, 2 mm T4–T5 40.4 s →
    36.9 s run in turn), drops from gap 0.15 instead of 0.05 and a return by pricing of a few
    beamlets resumed late in the restricted run (:data:`~optimizer._schur_ipm.RESUME_GAP`; C7–T1
    at 2 mm 24.8 s → 20.6 s, default-size T4–T5 23.3 s → 20.3 s).  This machine's speed then
    changed by half within the hour (``bench/machine_speed.py``): 2 mm T4–T5 22.8–29.6 s in seven
    runs when the reference ``syrk`` took 0.36–0.54 s, 33–37 s in the hour before; C7–T1 17.2 s,
    T8 15.5 s, C3 5.6 s; default size T4–T5 17.5 s, C7–T1 10.9 s, C3 5.2 s, T8 12.7 s.  Then a
    restriction written into the previous one's arrays (``_restrict``'s ``recycle``; pages already
    touched): the second restriction of 2 mm T4–T5 0.45 s → 0.24 s, the same iterates bit for bit.
    With SCHUR_IPM, also measured and not adopted:

    * the warm start with the new CVaR excesses at 0 and every new row centred at √μ: the
      excesses' columns were dual infeasible by ``(w/V) λ_cap`` (relative dual residual 0.58)
      and, once made feasible with ``u ≈ μ/τ``, the caps' sum rows moved by 3 Gy (primal 1.1):
      58 s at 2 mm;
    * the check at gap 1.2 (26 000 rows added, 56 s) or 0.1 (μ too small for the new rows:
      59.5 s); at 0.6–0.8 the band 0.15 missed 9 violators;

    * the first round on a seeded random eighth of the voxels (voxel volume × 8): 6.5 s
      instead of 33 s at 2 mm, but its beamlets were a poor start for the full rounds
      (22 violators more, restarts by pricing): 120 s in all;
    * flagging for a drop only columns whose value is below 1e-4 of the largest (against
      drops of columns whose ratio is small because their dual is large, which left a
      primal residual of 0.21 after a badly started round): the first drop of a 2 mm round
      came 6 iterations later (25.5 s against 18.4 s); :data:`~optimizer._schur_ipm.DROP_GAP`
      was kept instead;
    * the next round's beamlets with ``HINT_REDUCED_COST`` 1 (median): 2 mm 56 s, but C7–T1
      missed twice (a restart each); 3: 63 s and 25 s; 2 taken (64 s, 26 s);

    * the beamlets of the previous round as the next round's starting columns: 81 s at the
      default size against 69 s (the guess misses beamlets the new rows need; each return
      by pricing restarts the path);
    * screening the objective's hinge terms (a voxel more than 0.5 Gy from its kink either
      summed into one linear term or left out, a relaxation that is exact once no voxel is on
      the wrong side): 143 s at the default size (5 rounds), 201 s without truncation.
      The first round's solution has no constraint rows, and 9 434 of the 11 822 objective
      voxels were on the wrong side of their kink after the second; re-screening every round
      instead oscillated (8 rounds, still thousands of voxels crossing).  At the optimum only
      69 target and 21 ring voxels are within 0.01 Gy of their kink, so the working set is
      small; finding it in few rounds is what failed;
    * the same with the first rounds on every 4th objective voxel (weights scaled): 8 rounds,
      196 s.
    * Without truncation the optimum of the untruncated objective is 1.1764 against 1.1869
      with 1 % truncation and the 0.1 Gy correction (V24Gy 78.5 % against 78.2 %).  With
      the direct LP (truncation no longer saves compilation) it took 4 rounds, the violators
      settling slowly (914 / 537 / 40 / 0), and 98 s against 61 s; 0.5 % truncation at 2 mm
      still needed 4 rounds (correction changes 0.62 / 0.14 Gy).
    * Each round started from the previous round's iterate before its first drop (rows and
      variables matched by term and voxel, new rows centred at that iterate's μ): the
      default size's second round did not converge in 100 iterations and its third took 41
      against 27.  That iterate's μ (6e-7, scaled) is far below the infeasibility that the
      new rows and offsets bring.  Blended 0.9 with Mehrotra's start: 20–21 iterations, but
      not fewer with every beamlet in (20–30 s against 23 s).
    * The ``syrk`` in float32 while the gap is above 1e-3 (then float64), converting the
      rows every iteration: 0.38 s against 0.51 s per ``syrk`` (17 000 × 1 394), but 27
      iterations against 26 and 24.8 s against 24.3 s for the LP; float32 to the end fails
      near the optimum.  (Later adopted with a float32 copy of the distinct rows kept for
      the solve, while the gap is above 1e-2: ``ssyrk`` 0.46 s against 0.76 s, the same
      iterations, 2 mm grid 59.5 s → 47.7 s; :data:`optimizer._schur_ipm.SINGLE_PRECISION_GAP`.)
    * Path changes on the 2 mm T4–T5 (against 47–51 iterations and 32–40 s on the same code that
      day): σ = (μ_aff/μ)²: 54 iterations; Gondzio's window [0.5, 2] μ: 75; a trial step of
      2 α: 82; 4 or 6 correctors: 47 and 43 iterations in the same time; the float32 sum down to
      gap 1e-3 or 1e-4: 51 iterations, 44 s; ``DROP_GAP`` 0.3 (1 396 → 1 022 → 767 → 540
      beamlets) or ``DROP_MIN_FRACTION`` 0.1: within noise (34 and 32 s); both together: 2 mm
      T4–T5 and C7–T1 1 s faster, but at the default size a dropped beamlet priced back in
      (T4–T5 27.8 s against 23.9 s, C7–T1 18.7 s against 12.1 s).  σ capped at 0.3: 48
      iterations and 35 s against 51 and 39 s, but C7–T1 at 2 mm took 2 rounds and 192
      iterations (67 s against 24 s) and C7–T1 at the default size 89 iterations against 39.
      Two screening checks (gap 0.8 or 2.0, then 0.3): the early one adds 20 000–48 000 rows
      of a rough iterate (66–71 s).
    * Rows that the iterates make inactive left out like the zero beamlets (row generation):
      at a threshold that dropped no row active at the optimum (λ/s below 1e-10 of the
      largest), 8 000–27 000 of the 27 068 distinct rows stay until the last 10 iterations, so
      the ``syrk`` would hardly shrink; at 1e-6, 15 000 rows active at the optimum would have
      been dropped.
    * Measured with the mixed-precision tail and drops from gap 0.15, each run in turn with the
      code as adopted on four cases (2 mm T4–T5 and C7–T1, default-size T4–T5 and C7–T1):
      6 correctors (43 iterations against 48 on 2 mm T4–T5, but C7–T1 43 against 39 with a
      return by pricing); 6 correctors only below gap 1e-2 (2 mm T4–T5 21 factorizations
      against 24 but 120 solves against 91: 0.4 s net), 12 there (44 against 48 iterations on 2 mm
      T4–T5, 50 against 49 at the default size); ``DROP_MIN_FRACTION`` 0.15 (a return by pricing on
      2 mm T4–T5: 61 iterations, 41.6 s against 34.6 s); 2 Ruiz passes instead of 5 (−0.4 to −1 s
      on three cases, +0.3 s on one, the paths changed: within this machine's noise);
      ``screen_fraction`` 0.5 or 0.8 with the check (the uniform-weight probe puts 72 000 or
      112 000 rows in: 73 s and 47 s); hugepages off for numpy's arrays (39–41 s against 34–36 s).
    * The Newton matrix from the 4 000 (8 000) of 16 942 rows with the largest
      ``w_i‖a_i‖²`` in every iteration (constraint reduction): 87 (50) iterations against
      26.  The weights are nearly uniform in the first iterations, which are the expensive
      ones; refining the reduced direction diverged (the spectrum of ``H_Q⁻¹H`` reaches
      beyond 2).
    * Earlier drops (``DROP_RATIO`` 1e-5, ``DROP_MIN_FRACTION`` 0.1): default round 2 17 s
      against 20 s, but the 2 mm round 3 brought 12 beamlets back by pricing and took 63 s
      against 40 s.
    * Leaving out from the start of a round the beamlets that were zero in the previous one
      with a reduced cost above ``κ`` × their median (priced at the end; a wrong guess
      restarts from Mehrotra's point with every beamlet): κ = 2 took the default-size t4t5
      to 40 s against 45 s and the 2 mm grid to 113 s against 125 s, but C7–T1 to 72 s
      against 52 s and C3 to 13 s against 11 s; κ = 0.5 restarted twice on t4t5 (75 s), κ =
      3 and 5 gained 0–1 s.  The beamlets left out after the previous round's first drop
      were wrong in its next round (t4t5, 58 s).
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
    build_s : float, s
        Our construction (matrices, truncation, cvxpy expressions, full-matrix checks).
    compile_s : float, s
        cvxpy canonicalization, or with ``SCHUR_IPM`` the direct assembly of the LP
        (:mod:`optimizer._fmo_lp`); part of ``solve_s``.
    solve_s : float, s
        ``Problem.solve`` calls (canonicalization + solver), or with ``SCHUR_IPM`` assembly +
        solver, summed over rounds.
    rounds : int
        Solves made (screening and truncation-correction rounds).
    objective : float or None
    weights : ndarray (n_beamlets,) or None  (per-fraction weights, influence units)
    dose_gy : ndarray (n_voxels,) or None    (total SBRT dose, flattened dose grid)
    metrics : FmoMetrics or None
    n_voxels, n_beamlets, nnz : int
        Size of the full influence matrix.
    n_opt_rows, opt_nnz : int
        Influence rows and non-zeros in the last round's problem.
    correction_change_gy : float, Gy
        With objective truncation: the largest change of the truncation correction on
        an objective row between the last solve and its solution (the last solve's
        objective rows were off by this much from the full-matrix dose); 0 without.
    """

    status: str
    solver: str
    solver_settings: Tuple[Tuple[str, Any], ...]
    build_s: float
    compile_s: float
    solve_s: float
    rounds: int
    objective: Optional[float]
    weights: Optional[np.ndarray]
    dose_gy: Optional[np.ndarray]
    metrics: Optional[FmoMetrics]
    n_voxels: int
    n_beamlets: int
    nnz: int
    n_opt_rows: int
    opt_nnz: int
    correction_change_gy: float = 0.0

    @property
    def has_plan(self) -> bool:
        return self.weights is not None

    def require_plan(self) -> "FmoResult":
        """Return self, or raise InfeasibleError when the solve gave no plan."""
        if not self.has_plan:
            raise InfeasibleError(f"FMO solver {self.solver} ended with status {self.status!r}: no plan. "
                                  "Relax a margin or limit, or try another solver")
        return self


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


@contextlib.contextmanager
def _solver_output_to_stderr() -> Iterator[None]:
    """Send what native solver code writes to file descriptor 1 (HiGHS prints its banner there
    whatever its options say) to stderr, so that stdout stays the CLI's (``--json``)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):     # no real stdout (embedded interpreter): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _cvxpy_solver(name: str) -> Any:
    """What ``Problem.solve(solver=...)`` takes: the name, or our interior point's instance."""
    if name != SCHUR_IPM:
        return name
    from ._schur_ipm_cvxpy import SchurIpm

    return SchurIpm()


#: cvxpy's status names for :func:`optimizer._schur_ipm.solve_lp`'s.
_LP_STATUS = {LpStatus.OPTIMAL: "optimal", LpStatus.INFEASIBLE: "infeasible", LpStatus.UNBOUNDED: "unbounded",
              LpStatus.ITERATION_LIMIT: "user_limit"}


#: A new CVaR excess below its cap's tail starts at this fraction of its centred value μ/τ.
_BELOW_TAIL = 1e-2


def _warm_start(old: Any, new: Any, point: Tuple[np.ndarray, np.ndarray, np.ndarray]
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``point`` = (z, s, λ), an iterate of the LP ``old``, on the LP ``new`` (by key), as
    :func:`optimizer._schur_ipm.solve_lp`'s ``start``.

    A new CVaR excess ``u_v`` keeps its column dual feasible, ``λ_main + λ_bound = τ = (w_v/V)
    λ_cap``.  In its cap's tail (``r_v = L_v − ε + ζ − d_v ≤ 0``) its rows are centred at the
    iterate's μ, ``λ_main (r_v + u) = λ_bound u = μ``: ``u`` is the root above ``−r_v`` of
    ``τ u² + (τ r − 2μ) u − μ r = 0``.  Below the tail ``u = 0.01 μ/τ`` (:data:`_BELOW_TAIL`):
    thousands of centred ``u ≈ μ/τ`` would move the cap's sum row by whole Gy (2 mm T4–T5:
    3 Gy).  A new cap's ``ζ`` starts at the CVaR minimizer of its voxels' ``d − L``, its dual at
    √μ.  Other new variables
    start at 0; other new rows' slacks and duals are left to the solver (NaN).
    """
    from ._fmo_lp import map_keys

    z_old, s_old, lam_old = point
    vi, ri = map_keys(old.var_keys, new.var_keys), map_keys(old.row_keys, new.row_keys)
    z = np.where(vi >= 0, z_old[vi], 0.0)
    s = np.where(ri >= 0, s_old[ri], np.nan)
    lam = np.where(ri >= 0, lam_old[ri], np.nan)
    known = np.isfinite(s) & np.isfinite(lam)
    mu = float(s[known] @ lam[known]) / max(int(known.sum()), 1)
    fresh = vi[new.cvar_u[:, 0]] < 0
    if not fresh.any() or not mu > 0:
        return z, s, lam
    u_var, main, bound, cap, zeta = new.cvar_u[fresh].T
    coef = new.cvar_coef[fresh]
    root = np.sqrt(mu)
    r = new.b[main] - new.dot(z)[main]              # the row A_v y − ζ − u_v ≤ L_v − ε's slack at u = 0
    for k in np.unique(cap[~known[cap]]):          # a new cap (ζ = 0 so far): ζ at the CVaR minimizer
        sel = cap == k
        excess = -r[sel]                             # d − L + ε
        order = np.argsort(-excess)
        at = min(int(np.searchsorted(np.cumsum(coef[sel][order]), 1.0 - 1e-12)), order.size - 1)
        z[zeta[sel]] = excess[order][at]
        r[sel] += excess[order][at]                  # −ζ in each of its rows
        lam[k] = root
    tau = coef * lam[cap]
    tail = r <= 0
    p = tau * r - 2.0 * mu
    u = np.where(tail, (-p + np.sqrt(np.maximum(p * p + 4.0 * tau * mu * r, 0.0))) / (2.0 * tau),
                 _BELOW_TAIL * mu / tau)
    z[u_var] = u
    s[main], s[bound] = r + u, u
    lam[main] = np.where(tail, mu / (r + u), np.minimum(mu / (r + u), 0.5 * tau))
    lam[bound] = tau - lam[main]
    return z, s, lam


#: A resume point: an FMO LP and an iterate of it (z, s, λ) at :data:`SCREEN_CHECK_GAP`.
_Point = Tuple[Any, Tuple[np.ndarray, np.ndarray, np.ndarray]]


def _solve_lp_round(spec: FmoSpec, options: FmoOptions, settings: Mapping[str, Any], check: Optional[Any] = None,
                    resume: Optional[_Point] = None, **lp_args: Any
                    ) -> Tuple[str, Optional[np.ndarray], Optional[float], Tuple[int, int], float, float, Optional[_Point]]:
    """One round with ``SCHUR_IPM`` on the directly assembled LP (:mod:`optimizer._fmo_lp`).

    From ``resume`` when given (a warm start; no check), else from Mehrotra's point.
    ``check(y) -> bool`` screens the iterate at ``options.screen_check_gap``; when it added
    voxels (to ``lp_args['active']``), the LP is assembled again and the solve goes on from that
    iterate.  Returns status (cvxpy's names), ``y``, objective, (influence rows, non-zeros), the
    round's time (assembly + solve, s), the assembly's (s) and the resume point for a next round
    (the check's iterate, or ``resume``).
    """
    from ._fmo_lp import assemble_lp
    from ._schur_ipm import StructureError, solve_lp

    t0 = time.perf_counter()
    ipm_options = _ipm_options(settings)
    lp = assemble_lp(spec, options, **lp_args)
    assemble_s = lp.assemble_s
    start = None
    if resume is not None:
        start, check = _warm_start(resume[0], lp, resume[1]), None
    while True:
        at_check = None

        def on_check(z: np.ndarray, s: np.ndarray, lam: np.ndarray, lp: Any = lp) -> bool:
            nonlocal at_check
            at_check = (lp, (z, s, lam))
            return bool(check(z[:lp.n_beamlets]))

        try:
            sol = solve_lp(lp.c, lp.a, lp.b, shared=lp.shared, start=start, check=None if check is None else on_check,
                           check_gap=options.screen_check_gap or 0.0, options=ipm_options)
        except StructureError as exc:
            return (f"solver_error: {SCHUR_IPM}: {exc}; use solver HIGHS", None, None, (lp.n_opt_rows, lp.opt_nnz),
                    0.0, assemble_s, None)
        resume = at_check or resume
        if sol.status != LpStatus.INTERRUPTED:
            break
        new = assemble_lp(spec, options, **lp_args)
        assemble_s += new.assemble_s
        _log.info("FMO: screening check at gap %.2g: %d rows → %d, going on from that iterate",
                  sol.gap, lp.b.size, new.b.size)
        start, lp, check = _warm_start(lp, new, (sol.z, sol.s, sol.lam)), new, None
    round_s = time.perf_counter() - t0
    status = _LP_STATUS.get(sol.status, f"solver_error: {SCHUR_IPM} ended with {sol.status}")
    return status, sol.z[:lp.n_beamlets], sol.objective, (lp.n_opt_rows, lp.opt_nnz), round_s, assemble_s, resume


def _ipm_options(settings: Mapping[str, Any]) -> IpmOptions:
    """``SCHUR_IPM``'s settings (:data:`SOLVER_DEFAULTS` and ``solver_options``) as its options."""
    try:
        return IpmOptions(**settings)
    except TypeError as exc:
        raise InputError(f"solver_options for {SCHUR_IPM}: {exc}; the names are the fields of "
                         "optimizer._schur_ipm.IpmOptions") from exc


def _solve_cvxpy_round(built: BuiltProblem, options: FmoOptions
                       ) -> Tuple[str, Optional[np.ndarray], Optional[float], float, float]:
    """One round through cvxpy: status, ``y``, objective, the round's time and cvxpy's compilation time (s)."""
    import cvxpy as cp

    t0 = time.perf_counter()
    try:
        with _solver_output_to_stderr():
            built.problem.solve(solver=_cvxpy_solver(options.solver), canon_backend=CANON_BACKEND,
                                **options.solve_kwargs())
        status = str(built.problem.status)
    except cp.error.SolverError as exc:
        status = f"solver_error: {exc}".splitlines()[0]
    round_s = time.perf_counter() - t0
    compile_s = float(getattr(built.problem, "compilation_time", None) or 0.0)
    if status != cp.OPTIMAL:
        return status, None, None, round_s, compile_s
    return status, np.asarray(built.y.value, dtype=np.float64), float(built.problem.value), round_s, compile_s


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
                     metrics=_metrics(spec, dose), **common)
