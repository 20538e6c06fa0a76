"""The augmented-Lagrangian merit function the mock TPS optimizer minimizes.

:func:`prepare` restricts the influence matrix to the rows the functions use and turns
every :class:`~mock_tps._tps_function_spec.FunctionSpec` into a :class:`Term`; a
:class:`Problem` evaluates the merit (objectives plus the constraints' shifted
penalties), its dose gradient and Gauss-Newton curvature, and updates the multipliers.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
import scipy.sparse

from ._tps_function_spec import POINTWISE, UPPER, FunctionSpec
from ._tps_products import Scratch, matvec, rmatvec, take_rows
from ._tps_penalties import (KERNELS, achieved_violation, function_parameter, normalized_weights, reference_level,
                             uniformity_curvature)

__all__ = ["Term", "Problem", "Derivatives", "prepare", "matvec", "rmatvec"]

_PENALTY_GROWTH = 10.0
# A constraint's penalty starts at this multiple of the objectives' curvature on its beamlets.
_PENALTY_START = 10.0
# A penalty grows at most this much (beyond, the Gauss-Newton systems lose precision).
_PENALTY_MAX_GROWTH = 1e6
# Above this fill the restricted matrix is made dense for the optimization.
_DENSE_FILL = 0.25
_TINY = 1e-300


@dataclass
class Term:
    """One function prepared on the union of rows, with its augmented-Lagrangian state.

    A constraint c enters the merit as ``mu/2 · f_c(d; level ∓ shift)`` with its volume
    weights multiplied by ``factor`` (per voxel for the pointwise types): its own penalty,
    the level moved by the shift σ = λ/(μ·factor) (Gy, per voxel for pointwise types).
    """

    spec: FunctionSpec
    local: np.ndarray            # indices into the union of rows
    v: np.ndarray                # normalized volume weights
    level: object                # D (float) or per-voxel reference (ndarray), Gy
    param: object
    shift: object = 0.0          # σ (Gy): scalar, or per voxel for pointwise constraints
    mu: float = 0.0              # penalty parameter (objective units per Gy²)
    factor: object = 1.0         # per-voxel penalty factor of pointwise constraints (≥ 1)
    backoff_gy: float = 0.0      # constraints aim this far inside their level
    last_violation_gy: object = math.inf

    @property
    def aim(self):
        """The level the constraint aims at: ``backoff_gy`` inside its own (Gy)."""
        ftype = self.spec.function_type
        if ftype == "UniformDose" or not self.spec.is_constraint:
            return self.level
        return self.level - self.backoff_gy if ftype in UPPER else self.level + self.backoff_gy

    def shifted_level(self):
        if self.spec.function_type == "UniformDose" or self.spec.function_type in UPPER:
            return self.aim - self.shift
        return self.aim + self.shift

    def update(self, dose: np.ndarray, tolerance_gy: float) -> None:
        """Multiplier step λ ← (λ + μ g)₊ written for σ; the penalty × 10 where the violation
        did not fall below a quarter of the previous one (per voxel for pointwise types)."""
        ftype = self.spec.function_type
        d = dose[self.local]
        if ftype in POINTWISE:
            if ftype == "UniformDose":
                self.shift = self.shift + (d - self.aim)
                violation = np.abs(d - self.level)
            elif ftype in UPPER:
                self.shift = np.maximum(self.shift + (d - self.aim), 0.0)
                violation = d - self.level
            else:
                self.shift = np.maximum(self.shift + (self.aim - d), 0.0)
                violation = self.level - d
            if not isinstance(self.factor, np.ndarray):
                self.factor = np.ones(d.size)
            stalled = ((violation > tolerance_gy) & (violation > 0.25 * self.last_violation_gy)
                       & (self.factor * _PENALTY_GROWTH <= _PENALTY_MAX_GROWTH))
            self.factor = np.where(stalled, self.factor * _PENALTY_GROWTH, self.factor)
            self.shift = np.where(stalled, self.shift / _PENALTY_GROWTH, self.shift)   # keep λ
        else:
            violation = achieved_violation(ftype, d, self.level, self.v, self.param)
            aimed = achieved_violation(ftype, d, self.aim, self.v, self.param)
            self.shift = max(float(self.shift) + aimed, 0.0)
            if (violation > tolerance_gy and violation > 0.25 * self.last_violation_gy
                    and self.factor * _PENALTY_GROWTH <= _PENALTY_MAX_GROWTH):
                self.factor *= _PENALTY_GROWTH
                self.shift /= _PENALTY_GROWTH
        self.last_violation_gy = violation


def _curvature(ftype: str, value: float, grad: np.ndarray, v: np.ndarray):
    """Gauss-Newton curvature of a kernel in dose space: (diagonal or None, rank-one vector or None).

    The hinge-squared kernels have the generalized Hessian ``2 v̂`` on the voxels whose
    residual is positive (exactly those of non-zero gradient), UniformDose ``2 v̂`` on all;
    the gEUD kernels ``f = r²`` of one scalar r have ``2 ∇r ∇rᵀ = u uᵀ`` with
    ``u = ∇f / √(2 f)`` (UniformityConstraint: :func:`uniformity_curvature`).
    """
    if ftype == "UniformDose":
        return 2.0 * v, None
    if ftype in ("MaxEud", "MinEud"):
        return None, (grad / math.sqrt(2.0 * value) if value > 0 else None)
    return np.where(grad != 0.0, 2.0 * v, 0.0), None


@dataclass
class Derivatives:
    """Dose-space derivatives of the merit: gradient, the diagonal Gauss-Newton curvature of
    the objectives and of the constraints apart, and the rank-one curvature vectors."""

    grad: np.ndarray
    curvature_objectives: np.ndarray
    curvature_constraints: np.ndarray
    rank_one: List[np.ndarray] = field(default_factory=list)


@dataclass
class Problem:
    """The merit function on the union of the functions' rows."""

    matrix: object        # influence on the union rows (CSR or ndarray), Gy per unit of fractions × weight
    matrix_squared: object   # element-wise square of ``matrix`` (Jacobi diagonals)
    objectives: List[Term]
    constraints: List[Term]
    rows: np.ndarray      # the union of rows (sorted influence-matrix rows)
    locked: np.ndarray    # beamlets held at zero (they reach a voxel whose upper bound is ≤ 0)
    source: object = None   # the float64 input rows when ``matrix`` rounds them (float32 copy)
    evaluations: int = 0
    row_major: Optional["RowMajor"] = None   # C-ordered twin of ``matrix`` for row gathers
    scratch: Scratch = field(default_factory=Scratch)   # buffer of the Newton steps' gathers

    def rows_of(self, rows: np.ndarray):
        """``matrix[rows]`` (sorted rows), C-ordered, written into :attr:`scratch` for a dense
        matrix (valid until its next use)."""
        if scipy.sparse.issparse(self.matrix):
            return self.matrix[rows]
        source = self.matrix if self.matrix.flags.c_contiguous else self.row_major.get()
        return take_rows(source, rows, self.scratch.get(rows.size * source.shape[1], source.dtype))

    @property
    def n_rows(self) -> int:
        return int(self.rows.size)

    def dose(self, weights: np.ndarray) -> np.ndarray:
        return matvec(self.matrix, weights)

    def dose_float64(self, weights: np.ndarray, block_rows: int = 4096) -> np.ndarray:
        """The dose with float64 products (reported values: a float32 product's 1e-7 relative
        rounding is 2e-6 Gy at 24 Gy, more than a converged penalty near zero)."""
        if self.source is not None:
            return np.asarray(self.source @ weights, dtype=np.float64)
        if scipy.sparse.issparse(self.matrix):
            return np.asarray(self.matrix.astype(np.float64) @ weights, dtype=np.float64)
        return np.concatenate([self.matrix[k:k + block_rows].astype(np.float64) @ weights
                               for k in range(0, self.matrix.shape[0], block_rows)])

    def objective_from_dose(self, d: np.ndarray, grad_d: Optional[np.ndarray]) -> float:
        total = 0.0
        for term in self.objectives:
            value, grad = KERNELS[term.spec.function_type](d[term.local], term.level, term.v, term.param)
            total += term.spec.weight * value
            if grad_d is not None:
                grad_d[term.local] += term.spec.weight * grad
        return total

    def merit(self, d: np.ndarray, derivatives: bool = False):
        """(merit, objective) at dose ``d``; with ``derivatives`` also a :class:`Derivatives`."""
        self.evaluations += 1
        out = None
        if derivatives:
            out = Derivatives(np.zeros(self.n_rows), np.zeros(self.n_rows), np.zeros(self.n_rows))
        objective = total = 0.0
        for term in self.objectives + self.constraints:
            ftype = term.spec.function_type
            if term.spec.is_constraint:
                per_voxel = isinstance(term.factor, np.ndarray)
                scale = 0.5 * term.mu * (1.0 if per_voxel else term.factor)
                v = term.v * term.factor if per_voxel else term.v
                level = term.shifted_level()
            else:
                scale, v, level = term.spec.weight, term.v, term.level
            value, grad = KERNELS[ftype](d[term.local], level, v, term.param)
            total += scale * value
            if not term.spec.is_constraint:
                objective += scale * value
            if out is None or not scale > 0:
                continue
            out.grad[term.local] += scale * grad
            if ftype == "UniformityConstraint":
                diag, vector = uniformity_curvature(d[term.local], level, v)
            else:
                diag, vector = _curvature(ftype, value, grad, v)
            if diag is not None:
                target = out.curvature_constraints if term.spec.is_constraint else out.curvature_objectives
                target[term.local] += scale * diag
            if vector is not None:
                full = np.zeros(self.n_rows)
                full[term.local] = math.sqrt(scale) * vector
                out.rank_one.append(full)
        return (total, objective, out) if derivatives else (total, objective)

    def update_multipliers(self, d: np.ndarray, tolerance_gy: float) -> None:
        for term in self.constraints:
            term.update(d, tolerance_gy)

    def violations_gy(self, d: np.ndarray) -> List[float]:
        return [achieved_violation(t.spec.function_type, d[t.local], t.level, t.v, t.param)
                for t in self.constraints]


class RowMajor:
    """A C-ordered copy of a dense working matrix, made on first use and kept with it.

    A CSC beamlet matrix gives a Fortran-ordered working copy (every product reads it the
    same way), from which a row subset is gathered element by element, a column's length
    apart; from this twin each row is one contiguous copy, 10-20× faster at the default size
    (docs/decisions/mock-optimizer-speed.md)."""

    def __init__(self, matrix) -> None:
        self._matrix, self._copy = matrix, None

    def get(self) -> np.ndarray:
        if self._copy is None:
            self._copy = np.ascontiguousarray(self._matrix)
            self._copy.flags.writeable = False
        return self._copy


class _WorkingCopy:
    """The last working copy :func:`_restricted_matrix` made, kept for the next run on the same
    matrix object and rows: a plan's optimizations (the closed loop runs several) share one
    beamlet matrix, and making the dense copy and its square is a large part of a run's set-up
    (docs/decisions/mock-optimizer-speed.md)."""

    source: Optional["weakref.ref"] = None   # the input matrix, not kept alive by the cache
    rows: Optional[np.ndarray] = None
    single: Optional[bool] = None
    value: Optional[tuple] = None

    @classmethod
    def get(cls, matrix, rows: np.ndarray, single: bool):
        if (cls.source is not None and cls.source() is matrix and cls.single == single
                and np.array_equal(cls.rows, rows)):
            return cls.value
        return None

    @classmethod
    def put(cls, matrix, rows: np.ndarray, single: bool, value: tuple) -> None:
        cls.source, cls.rows, cls.single, cls.value = weakref.ref(matrix), rows.copy(), single, value


def _restricted_matrix(matrix, rows: np.ndarray, single: bool):
    """(working copy of the rows, its element-wise square, the float64 rows for reporting or None
    when the working copy holds the input's values exactly, its row-major twin when asked). The
    copies are read-only: the next run on the same matrix and rows reuses them."""
    cached = _WorkingCopy.get(matrix, rows, single)
    if cached is not None:
        return cached
    used = matrix if rows.size == matrix.shape[0] else matrix[rows]   # rows are sorted and unique
    dtype = np.float32 if single else np.float64
    exact = np.dtype(dtype) == used.dtype or not single
    if used.nnz >= _DENSE_FILL * used.shape[0] * used.shape[1]:
        # photon beamlet matrices of the phantoms are 65-95 % filled: a dense BLAS product is
        # several times faster than a sparse one; float32 halves the memory traffic of every
        # product (doses and merit values are float64)
        restricted = used.toarray().astype(dtype, copy=False)
        squared = restricted * restricted
        restricted.flags.writeable = False
        squared.flags.writeable = False
    else:
        restricted = used.astype(dtype).tocsr()
        squared = restricted.multiply(restricted).tocsr()
    value = (restricted, squared, (None if exact else used), RowMajor(restricted))
    if not scipy.sparse.issparse(restricted):
        _WorkingCopy.put(matrix, rows, single, value)
    return value


def _locked_beamlets(matrix, constraints: Sequence[Term]) -> np.ndarray:
    """Beamlets that must be zero: those reaching a voxel whose upper-bound constraint
    (MaxDose, DoseFallOff) is ≤ 0 Gy — with non-negative influence and weights, such a
    voxel's dose is zero only if every beamlet reaching it is off."""
    zero_rows = np.zeros(matrix.shape[0], dtype=bool)
    for term in constraints:
        if term.spec.function_type in ("MaxDose", "DoseFallOff"):
            level = np.broadcast_to(term.level, term.local.shape)
            zero_rows[term.local[(level <= 0.0) & (term.v > 0)]] = True
    if not zero_rows.any():
        return np.zeros(matrix.shape[1], dtype=bool)
    block = matrix[np.flatnonzero(zero_rows)]
    return np.asarray((block > 0).sum(axis=0)).ravel() > 0


def prepare(matrix: scipy.sparse.csr_matrix, functions: Sequence[FunctionSpec], *,
            backoff_gy: float = 0.0, single: bool = False) -> Problem:
    """The merit function of ``functions`` on the rows of ``matrix`` they use (a float32 copy
    when ``single``). Its variable is ``fractions × weights``: the total dose is then
    ``matrix @ u``, and a float32 copy of a float32 matrix holds its values exactly.

    A constraint's penalty μ starts at :data:`_PENALTY_START` times the ratio of the
    objectives' curvature to the constraint's on the beamlets, measured by the Jacobi
    diagonals :math:`c_o = (A∘A)^T h_o` (h_o = 2 Σ ω v̂ per voxel) and
    :math:`c_c = (A∘A)^T \\hat v_c`: μ = 10 · (c_o·c_c)/(c_c·c_c), the least-squares fit
    of c_o by μ c_c. Comparing curvatures per beamlet, not per voxel, accounts for the
    thousands of target voxels a beamlet that crosses the constraint's ROI also doses.
    """
    rows = np.unique(np.concatenate([spec.voxel_index for spec in functions]))
    restricted, squared, source, row_major = _restricted_matrix(matrix, rows, single)
    objectives, constraints = [], []
    for spec in functions:
        term = Term(spec=spec, local=np.searchsorted(rows, spec.voxel_index), v=normalized_weights(spec),
                    level=reference_level(spec), param=function_parameter(spec))
        if spec.is_constraint and spec.function_type in POINTWISE:
            # a voxel bound binds whatever the voxel's share of the ROI (a rim voxel covered 1e-6
            # must hold it too), so every counted voxel gets the same penalty weight
            counted = term.v > 0
            term.v = counted / float(np.count_nonzero(counted))
            term.shift = np.zeros(spec.voxel_index.size)
        if spec.is_constraint:
            term.backoff_gy = backoff_gy
            constraints.append(term)
        else:
            objectives.append(term)
    per_voxel = np.zeros(rows.size)
    for term in objectives:
        per_voxel[term.local] += 2.0 * term.spec.weight * term.v
    if constraints:
        columns = np.zeros((rows.size, len(constraints) + 1))
        columns[:, 0] = per_voxel
        for k, term in enumerate(constraints, start=1):
            columns[term.local, k] = term.v
        diagonals = rmatvec(squared, columns)
        c_obj = diagonals[:, 0]
        for k, term in enumerate(constraints, start=1):
            c_con = diagonals[:, k]
            ratio = float(c_obj @ c_con) / max(float(c_con @ c_con), _TINY)
            term.mu = _PENALTY_START * (ratio if ratio > 0 else 1.0)
    return Problem(matrix=restricted, matrix_squared=squared, objectives=objectives, constraints=constraints,
                   rows=rows, locked=_locked_beamlets(restricted, constraints), source=source, row_major=row_major)
