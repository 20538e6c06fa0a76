"""The FMO linear program assembled directly in standard form (private; scipy only).

For the default solver (``SCHUR_IPM``) the problem of :mod:`optimizer._fmo_build` is
written straight into the form the interior point takes::

    minimize  cᵀz   subject to   A z + s = b,   s ≥ 0

instead of being canonicalized by cvxpy: cvxpy's canonicalization of the large constant
influence blocks took 18 % of the time of a solve (2 mm dose grid T4–T5: 39 s of
222 s; default size: 13 of 75 s) and does nothing here that a few sparse stacks do not.
The formulation is the same, term for term (``tests/optimizer/test_fmo.py`` checks that
both give the same optimum); cvxpy keeps building it for every other solver.

Variables ``z`` (in this order):

* ``y`` (n beamlets), ``y ≥ 0``;
* ``t`` per target voxel: the under-dose ``[R + h − d_v]₊`` (epigraph, ``t ≥ 0``);
* ``t`` per ring voxel: the over-dose ``[d_r − F_r]₊``;
* per volume cap ``k``: ``ζ_k`` (free) and ``u_kv ≥ [d_v − L_v − ζ_k]₊`` per screened voxel
  (Rockafellar–Uryasev [1]_).

Rows: the hinge rows ``±(A_s y + offset) ∓ t ≤ ∓level``; the bounds ``t ≥ 0``, ``y ≥ 0``,
``u ≥ 0``; per-voxel bounds ``A_v y ≤ L_v − ε``; per cap ``A_v y − ζ − u_v ≤ L_v − ε`` and
``ζ + Σ_v (w_v / V) u_v ≤ 0``.

References
----------
.. [1] Rockafellar RT, Uryasev S. Optimization of conditional value-at-risk.
   J Risk 2000;2(3):21-41.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

import numpy as np

from ._fmo_build import constraint_items, screened

__all__ = ["FmoLp", "assemble_lp"]


@dataclass(frozen=True, eq=False)
class FmoLp:
    """One round's LP in standard form and what is needed to read its solution.

    Attributes
    ----------
    c : ndarray, shape (n_z,)
    a : scipy.sparse.csr_matrix, shape (m, n_z)
    b : ndarray, shape (m,)
    n_beamlets : int
        ``y = z[:n_beamlets]`` (weights = ``scale · y``).
    assemble_s : float, s
    n_opt_rows, opt_nnz : int
        Influence rows and their non-zeros in the LP (as :class:`~optimizer._fmo_build.BuiltProblem`).
    """

    c: np.ndarray
    a: Any
    b: np.ndarray
    n_beamlets: int
    assemble_s: float
    n_opt_rows: int
    opt_nnz: int


class _Blocks:
    """Rows of the LP collected block by block: (influence part, epigraph part, right-hand side)."""

    def __init__(self, n_beamlets: int) -> None:
        self.n = n_beamlets
        self.rows: List[tuple] = []     # (a_y: sparse (r × n) or None, a_x: sparse (r × n_extra) coo parts, b)
        self.n_extra = 0
        self.c_extra: List[np.ndarray] = []

    def new_vars(self, count: int, cost: Any = 0.0) -> int:
        """``count`` new variables after ``y`` with this cost; returns the first one's offset."""
        first = self.n_extra
        self.n_extra += count
        self.c_extra.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (count,)).copy())
        return first

    def add(self, a_y: Any, extra: "tuple[np.ndarray, np.ndarray, np.ndarray]", b: np.ndarray) -> None:
        """Rows ``a_y y + Σ extra ≤ b``; ``extra = (row, variable offset, value)`` triplets."""
        self.rows.append((a_y, extra, np.asarray(b, dtype=np.float64)))


def _hinge(blocks: _Blocks, a_s: Any, offset: Optional[np.ndarray], level: np.ndarray, sign: float,
           cost: np.ndarray) -> None:
    """``t ≥ sign · (level − A_s y − offset)`` and ``t ≥ 0`` with cost ``cost · t``.

    ``sign = +1``: under-dose ``[level − d]₊``; ``sign = −1``: over-dose ``[d − level]₊``.
    """
    k = a_s.shape[0]
    first = blocks.new_vars(k, cost)
    rows, cols = np.arange(k), first + np.arange(k)
    rhs = level - (offset if offset is not None else 0.0)
    blocks.add(-sign * a_s, (rows, cols, -np.ones(k)), -sign * rhs)    # −sign·(A y + off) − t ≤ −sign·level
    blocks.add(None, (rows, cols, -np.ones(k)), np.zeros(k))                # −t ≤ 0


def assemble_lp(spec: Any, options: Any, *, a_total: Any, scale: float, a_obj: Mapping[str, "tuple[Any, Any]"],
                active: Optional[Mapping[str, np.ndarray]] = None,
                offsets_gy: Optional[Mapping[str, np.ndarray]] = None) -> FmoLp:
    """The LP of ``spec`` for one round (arguments as :func:`optimizer._fmo_build.build_problem`).

    Only the linear under-dose is an LP; the caller checks ``options.underdose``.
    """
    import scipy.sparse as sp

    t0 = time.perf_counter()
    n = a_total.shape[1]
    eps = options.bound_backoff_gy
    blocks = _Blocks(n)
    offsets = offsets_gy or {}
    n_rows = sum(kept.shape[0] for kept, _ in a_obj.values())
    nnz = sum(kept.nnz for kept, _ in a_obj.values())

    tgt = spec.regions[spec.target]
    kept, _ = a_obj[spec.target]
    level = np.full(kept.shape[0], spec.prescription_gy + options.coverage_headroom_gy)
    _hinge(blocks, kept, offsets.get(spec.target), level, 1.0, tgt.coverage / tgt.coverage.sum())
    if spec.falloff is not None and options.falloff_weight > 0:
        kept, _ = a_obj[spec.falloff.region]
        _hinge(blocks, kept, offsets.get(spec.falloff.region), np.asarray(spec.falloff.limit_gy, dtype=np.float64),
               -1.0, np.full(kept.shape[0], options.falloff_weight / max(kept.shape[0], 1)))

    rows_of: dict = {}                           # region → its screened influence rows, counted once
    for it in constraint_items(spec):
        voxels = screened(spec, it, active, eps)
        if voxels is None:
            continue
        rows, lim, volume_cc = voxels
        if it.region not in rows_of:
            rows_of[it.region] = a_total[rows] * scale
            n_rows += rows.size
            nnz += rows_of[it.region].nnz
        a_s = rows_of[it.region]
        if it.volume_cc is None:
            none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
            blocks.add(a_s, none, lim)                                                    # A y ≤ L − ε
            continue
        zeta = blocks.new_vars(1)
        u = blocks.new_vars(rows.size)
        i = np.arange(rows.size)
        blocks.add(a_s, (np.concatenate([i, i]), np.concatenate([np.full(rows.size, zeta), u + i]),
                         -np.ones(2 * rows.size)), lim)                        # A y − ζ − u ≤ L − ε
        blocks.add(None, (i, u + i, -np.ones(rows.size)), np.zeros(rows.size))  # −u ≤ 0
        blocks.add(None, (np.zeros(rows.size + 1, np.int64), np.concatenate([[zeta], u + i]),
                          np.concatenate([[1.0], volume_cc / it.volume_cc])), np.zeros(1))

    parts, b_parts = [], []
    for a_y, (ri, ci, vi), b in blocks.rows:
        m_blk = b.size
        left = sp.csr_matrix(a_y) if a_y is not None else sp.csr_matrix((m_blk, n))
        right = sp.csr_matrix((vi, (ri, ci)), shape=(m_blk, blocks.n_extra))
        parts.append(sp.hstack([left, right], format="csr"))
        b_parts.append(b)
    parts.append(sp.hstack([-sp.identity(n, format="csr"), sp.csr_matrix((n, blocks.n_extra))], format="csr"))
    b_parts.append(np.zeros(n))                                                              # −y ≤ 0
    a = sp.vstack(parts, format="csr")
    c = np.concatenate([np.full(n, options.fluence_weight / n if options.fluence_weight > 0 else 0.0)]
                       + blocks.c_extra)
    return FmoLp(c=c, a=a, b=np.concatenate(b_parts), n_beamlets=n, assemble_s=time.perf_counter() - t0,
                 n_opt_rows=int(n_rows), opt_nnz=int(nnz))
