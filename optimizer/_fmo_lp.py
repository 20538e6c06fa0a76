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

Every variable and row carries a **key** (:attr:`FmoLp.var_keys`, :attr:`FmoLp.row_keys`): its
kind and the voxel or beamlet it belongs to, the same in every round.  A round whose LP gained
voxels maps the previous round's iterate onto the new LP by these keys (a warm start).

The influence parts ``± A_v`` of those rows are not written into the CSR matrix: each voxel's
full row (× ``scale``) is stored once in a dense block, and the rows that use it name it with a
factor ±1 (:class:`optimizer._schur_ipm.SharedRows`).  A voxel of the target with a hot-spot
bound, or of the ring inside an organ with a CVaR cap, thus adds one row to the interior
point's normal matrix, not two or five.  Truncated objective rows (``objective_truncation >
0``) are rows of their own.

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
from ._schur_ipm import SharedRows

__all__ = ["FmoLp", "assemble_lp", "map_keys"]


@dataclass(frozen=True, eq=False)
class FmoLp:
    """One round's LP in standard form and what is needed to read its solution.

    ``A = a + shared``: every influence row is given once in ``shared.block`` (a voxel's
    full row serves its hinge, bound and CVaR rows alike; truncated objective rows are rows
    of their own), and ``a`` holds the rest.

    Attributes
    ----------
    c : ndarray, shape (n_z,)
    a : scipy.sparse.csr_matrix, shape (m, n_z)
    b : ndarray, shape (m,)
    shared : optimizer._schur_ipm.SharedRows
        The influence rows (× ``scale``), on the columns of ``y``.
    n_beamlets : int
        ``y = z[:n_beamlets]`` (weights = ``scale · y``).
    assemble_s : float, s
    n_opt_rows, opt_nnz : int
        Influence rows and their non-zeros in the LP (as :class:`~optimizer._fmo_build.BuiltProblem`).
    cvar_u : ndarray of int64, shape (k, 5)
        Per CVaR excess variable ``u_v``: its index in ``z``, its row ``A_v y − ζ − u_v ≤ …``,
        its row ``−u_v ≤ 0``, its cap's row ``ζ + Σ (w/V) u ≤ 0`` and its cap's ``ζ`` in ``z``.
    cvar_coef : ndarray, shape (k,)
        ``w_v / V`` of each.
    var_keys : ndarray of int64, shape (n_z,)
    row_keys : ndarray of int64, shape (m,)
        One key per variable and per row, ``kind · stride + index`` (index: the voxel's dose-grid
        row, the beamlet or 0), equal for the same variable or row of any round's LP
        (:func:`map_keys`).
    """

    c: np.ndarray
    a: Any
    b: np.ndarray
    shared: SharedRows
    n_beamlets: int
    assemble_s: float
    n_opt_rows: int
    opt_nnz: int
    cvar_u: np.ndarray
    cvar_coef: np.ndarray
    var_keys: np.ndarray
    row_keys: np.ndarray

    def dot(self, z: np.ndarray) -> np.ndarray:
        """``A z`` (without writing ``A`` out)."""
        out = np.asarray(self.a @ z).ravel()
        sh = self.shared
        return out + np.bincount(sh.rows, sh.factor * (sh.block @ z[sh.cols])[sh.group], minlength=out.size)

    def matrix(self) -> Any:
        """The whole ``A`` as one CSR matrix (for other LP solvers and for checks)."""
        return (self.a + self.shared.tocsr(self.a.shape)).tocsr()


class _Blocks:
    """Rows of the LP collected block by block, and the distinct influence rows they use."""

    def __init__(self, a_total: Any, scale: float) -> None:
        self.n = a_total.shape[1]
        self.stride = max(a_total.shape) + 1          # key = kind · stride + index
        self.var_keys: List[np.ndarray] = [np.arange(self.n, dtype=np.int64)]    # y: kind 0
        self.cvar: List[tuple] = []     # (u in z, main rows, bound rows, sum row, ζ in z, w/V) per cap voxel
        self.row_keys: List[np.ndarray] = []
        self.a_total, self.scale = a_total, scale
        self.m = 0
        self.rows: List[tuple] = []     # (extra: coo parts (row, variable offset, value), b)
        self.n_extra = 0
        self.c_extra: List[np.ndarray] = []
        self.shared: List[tuple] = []   # (LP rows, block rows, factors)
        self.parts: List[Any] = []      # the block's rows: (sparse rows, factor) pieces
        self.n_unique = 0
        self.of_voxel = np.full(a_total.shape[0], -1, dtype=np.int64)

    def key(self, kind: int, index: Any) -> np.ndarray:
        """Keys of variables or rows of this kind (index: voxel, beamlet or 0)."""
        return kind * self.stride + np.asarray(index, dtype=np.int64)

    def new_vars(self, count: int, cost: Any = 0.0, *, keys: Any) -> int:
        """``count`` new variables after ``y`` with this cost and these keys; returns the first one's offset."""
        first = self.n_extra
        self.var_keys.append(np.broadcast_to(np.asarray(keys, dtype=np.int64), (count,)))
        self.n_extra += count
        self.c_extra.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (count,)).copy())
        return first

    def voxel_rows(self, voxels: np.ndarray) -> np.ndarray:
        """Block rows of the full influence rows of ``voxels`` (each voxel's row stored once)."""
        new = np.unique(voxels[self.of_voxel[voxels] < 0])
        if new.size:
            self.of_voxel[new] = self.n_unique + np.arange(new.size)
            self.parts.append((self.a_total[new], self.scale))
            self.n_unique += new.size
        return self.of_voxel[voxels]

    def own_rows(self, rows: Any) -> np.ndarray:
        """Block rows for influence rows used by one LP row each (truncated objective rows)."""
        first = self.n_unique
        self.parts.append((rows, 1.0))
        self.n_unique += rows.shape[0]
        return first + np.arange(rows.shape[0])

    def add(self, y_rows: Optional[np.ndarray], sign: float, extra: "tuple[np.ndarray, np.ndarray, np.ndarray]",
            b: np.ndarray, keys: Any) -> None:
        """Rows ``sign · u[y_rows] y + Σ extra ≤ b`` with these keys; ``extra = (row, variable offset, value)``
        triplets."""
        b = np.asarray(b, dtype=np.float64)
        self.row_keys.append(np.broadcast_to(np.asarray(keys, dtype=np.int64), b.shape))
        if y_rows is not None:
            self.shared.append((self.m + np.arange(b.size), y_rows, np.full(b.size, sign)))
        self.rows.append((extra, b))
        self.m += b.size

    def block(self) -> SharedRows:
        """The distinct influence rows as one dense block, with the LP rows that use them."""
        import scipy.sparse as sp

        dense = np.empty((self.n_unique, self.n))
        first = 0
        for rows, factor in self.parts:          # written in place (2 mm, both LPs of a round: 1.8 s → 0.8 s
            part = dense[first:first + rows.shape[0]]                # against vstack + toarray)
            sp.csr_matrix(rows, dtype=np.float64).toarray(out=part)
            if factor != 1.0:
                part *= factor
            first += rows.shape[0]
        cat = (lambda i: np.concatenate([t[i] for t in self.shared]) if self.shared else np.zeros(0))  # noqa: E731
        return SharedRows(block=dense, rows=cat(0).astype(np.int64), group=cat(1).astype(np.int64),
                          factor=cat(2).astype(np.float64), cols=np.arange(self.n))


def _hinge(blocks: _Blocks, y_rows: np.ndarray, offset: Optional[np.ndarray], level: np.ndarray, sign: float,
           cost: np.ndarray, voxels: np.ndarray, kind: int) -> None:
    """``t ≥ sign · (level − u[y_rows] y − offset)`` and ``t ≥ 0`` with cost ``cost · t``.

    ``sign = +1``: under-dose ``[level − d]₊``; ``sign = −1``: over-dose ``[d − level]₊``.  Keys: ``t``
    of kind ``kind``, the rows of kinds ``2 kind − 2`` and ``2 kind − 1``, by voxel.
    """
    k = y_rows.size
    first = blocks.new_vars(k, cost, keys=blocks.key(kind, voxels))
    rows, cols = np.arange(k), first + np.arange(k)
    rhs = level - (offset if offset is not None else 0.0)
    blocks.add(y_rows, -sign, (rows, cols, -np.ones(k)), -sign * rhs,
               blocks.key(2 * kind - 2, voxels))                     # −sign·(A y + off) − t ≤ −sign·level
    blocks.add(None, 0.0, (rows, cols, -np.ones(k)), np.zeros(k), blocks.key(2 * kind - 1, voxels))   # −t ≤ 0


def _objective_rows(blocks: _Blocks, spec: Any, options: Any, region: str, kept: Any) -> np.ndarray:
    """Block rows of an objective region: its voxels' full rows when nothing is truncated, else its own."""
    if options.truncation > 0:
        return blocks.own_rows(kept)
    return blocks.voxel_rows(spec.regions[region].rows)


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
    blocks = _Blocks(a_total, scale)
    offsets = offsets_gy or {}
    n_rows = sum(kept.shape[0] for kept, _ in a_obj.values())
    nnz = sum(kept.nnz for kept, _ in a_obj.values())

    tgt = spec.regions[spec.target]
    kept, _ = a_obj[spec.target]
    level = np.full(kept.shape[0], spec.prescription_gy + options.coverage_headroom_gy)
    _hinge(blocks, _objective_rows(blocks, spec, options, spec.target, kept), offsets.get(spec.target), level, 1.0,
           tgt.coverage / tgt.coverage.sum(), tgt.rows, 1)
    if spec.falloff is not None and options.falloff_weight > 0:
        kept, _ = a_obj[spec.falloff.region]
        _hinge(blocks, _objective_rows(blocks, spec, options, spec.falloff.region, kept),
               offsets.get(spec.falloff.region), np.asarray(spec.falloff.limit_gy, dtype=np.float64), -1.0,
               np.full(kept.shape[0], options.falloff_weight / max(kept.shape[0], 1)),
               spec.regions[spec.falloff.region].rows, 2)

    counted: set = set()                          # regions whose screened rows are counted once
    items = constraint_items(spec)
    for k, it in enumerate(items):                # keys: variables 3 + 2k (ζ), 4 + 2k (u); rows 4 + 3k ...
        row_kind, var_kind = 4 + 3 * k, 3 + 2 * k
        voxels = screened(spec, it, active, eps)
        if voxels is None:
            continue
        rows, lim, volume_cc = voxels
        if it.region not in counted:
            counted.add(it.region)
            n_rows += rows.size
            nnz += int(np.diff(a_total.indptr)[rows].sum())             # a_total is CSR: no row copy
        y_rows = blocks.voxel_rows(rows)
        if it.volume_cc is None:
            none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
            blocks.add(y_rows, 1.0, none, lim, blocks.key(row_kind, rows))                # A y ≤ L − ε
            continue
        zeta = blocks.new_vars(1, keys=blocks.key(var_kind, 0))
        u = blocks.new_vars(rows.size, keys=blocks.key(var_kind + 1, rows))
        i = np.arange(rows.size)
        blocks.cvar.append((n + u + i, blocks.m + i, blocks.m + rows.size + i,
                            np.full(rows.size, blocks.m + 2 * rows.size), np.full(rows.size, n + zeta),
                            volume_cc / it.volume_cc))
        blocks.add(y_rows, 1.0, (np.concatenate([i, i]), np.concatenate([np.full(rows.size, zeta), u + i]),
                                 -np.ones(2 * rows.size)), lim,
                   blocks.key(row_kind, rows))                                   # A y − ζ − u ≤ L − ε
        blocks.add(None, 0.0, (i, u + i, -np.ones(rows.size)), np.zeros(rows.size),
                   blocks.key(row_kind + 1, rows))                                                 # −u ≤ 0
        blocks.add(None, 0.0, (np.zeros(rows.size + 1, np.int64), np.concatenate([[zeta], u + i]),
                               np.concatenate([[1.0], volume_cc / it.volume_cc])), np.zeros(1),
                   blocks.key(row_kind + 2, 0))                                  # ζ + Σ w u / V ≤ 0

    parts, b_parts = [], []
    for (ri, ci, vi), b in blocks.rows:
        parts.append(sp.csr_matrix((vi, (ri, n + ci)), shape=(b.size, n + blocks.n_extra)))
        b_parts.append(b)
    parts.append(sp.hstack([-sp.identity(n, format="csr"), sp.csr_matrix((n, blocks.n_extra))], format="csr"))
    b_parts.append(np.zeros(n))                                                              # −y ≤ 0
    a = sp.vstack(parts, format="csr")
    c = np.concatenate([np.full(n, options.fluence_weight / n if options.fluence_weight > 0 else 0.0)]
                       + blocks.c_extra)
    row_keys = np.concatenate(blocks.row_keys + [blocks.key(4 + 3 * len(items), np.arange(n))])
    cvar = [np.concatenate(part) for part in zip(*blocks.cvar)] if blocks.cvar else [np.zeros(0)] * 6
    return FmoLp(c=c, a=a, b=np.concatenate(b_parts), shared=blocks.block(), n_beamlets=n,
                 assemble_s=time.perf_counter() - t0, n_opt_rows=int(n_rows), opt_nnz=int(nnz),
                 cvar_u=np.stack(cvar[:5], axis=1).astype(np.int64), cvar_coef=np.asarray(cvar[5], dtype=np.float64),
                 var_keys=np.concatenate(blocks.var_keys), row_keys=row_keys)


def map_keys(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """For each of ``new``'s keys, its index in ``old`` (-1 when absent); keys are unique."""
    if old.size == 0:
        return np.full(new.size, -1, dtype=np.int64)
    order = np.argsort(old, kind="stable")
    at = order[np.clip(np.searchsorted(old, new, sorter=order), 0, old.size - 1)]
    return np.where(old[at] == new, at, -1)
