"""Products with the mock optimizer's working matrix, on up to two threads.

A dense working matrix of at least :data:`SPLIT_ROWS` rows is always cut into the same two
row halves, whatever the number of cores: ``A @ x`` joins the halves' products and
``Aᵀ y`` and ``AᵀA`` add them in a fixed order, so a result is the same to the bit on
one core or two; the halves run on two threads where the machine has two cores (BLAS
itself stays on one thread, see :func:`mock_tps._tps_optimizer._one_blas_thread`: its
own threading would change the rounding with the core count). A matrix-vector product
reads the whole matrix from memory once, and one core does not use all of the memory
bandwidth.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional

import numpy as np
import scipy.sparse

__all__ = ["matvec", "rmatvec", "gram", "gather", "take_rows", "Scratch", "SPLIT_ROWS"]

#: Dense matrices of at least this many rows are multiplied as two row halves.
SPLIT_ROWS = 8192
# Up to this many right-hand columns, ``rmatvec`` of a dense matrix runs one product per column.
_GEMV_COLUMNS = 3

_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                 else (os.cpu_count() or 1)))
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reirrad-mock-optimizer")
        return _POOL


def _halves(n_rows: int) -> List[slice]:
    return [slice(0, n_rows // 2), slice(n_rows // 2, n_rows)]


def _split(matrix: Any) -> bool:
    return isinstance(matrix, np.ndarray) and matrix.shape[0] >= SPLIT_ROWS


def _on_halves(fn: Callable[[slice], Any], n_rows: int) -> List[Any]:
    return list(_pool().map(fn, _halves(n_rows)))


def matvec(matrix: Any, x: np.ndarray) -> np.ndarray:
    """``matrix @ x`` in the matrix's precision, returned as float64."""
    x = x.astype(matrix.dtype, copy=False)
    if not _split(matrix):
        return np.asarray(matrix @ x, dtype=np.float64)
    return np.concatenate(_on_halves(lambda rows: np.asarray(matrix[rows] @ x, dtype=np.float64),
                                     matrix.shape[0]))


def _rmatvec_rows(matrix: Any, y: np.ndarray) -> np.ndarray:
    if y.ndim == 1 or scipy.sparse.issparse(matrix):
        return np.asarray(matrix.T @ y, dtype=np.float64)
    if y.shape[1] <= _GEMV_COLUMNS:
        # BLAS's matrix-matrix path on a thin operand is slower than the products it replaces
        # (docs/decisions/mock-optimizer-speed.md)
        return np.column_stack([np.asarray(matrix.T @ y[:, k], dtype=np.float64) for k in range(y.shape[1])])
    return np.asarray((y.T @ matrix).T, dtype=np.float64)


def rmatvec(matrix: Any, y: np.ndarray) -> np.ndarray:
    """``matrix.T @ y`` in the matrix's precision, returned as float64 (y may be 2-D)."""
    y = y.astype(matrix.dtype, copy=False)
    if not _split(matrix):
        return _rmatvec_rows(matrix, y)
    first, second = _on_halves(lambda rows: _rmatvec_rows(matrix[rows], y[rows]), matrix.shape[0])
    return first + second


class Scratch:
    """One reusable buffer for the row/column gathers of an optimization: a fresh array of
    hundreds of MB per Newton iteration costs more in page faults than the copy itself.  A
    view it returns is valid until the next :meth:`get`."""

    def __init__(self) -> None:
        self._buffer: Optional[np.ndarray] = None

    def get(self, size: int, dtype: np.dtype) -> np.ndarray:
        """A flat array of ``size`` elements of ``dtype`` (contents undefined)."""
        dtype = np.dtype(dtype)
        nbytes = size * dtype.itemsize
        if self._buffer is None or self._buffer.size < nbytes:
            self._buffer = np.empty(nbytes, dtype=np.uint8)
        return self._buffer[:nbytes].view(dtype)


def gather(matrix: np.ndarray, rows: np.ndarray, columns: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``matrix[np.ix_(rows, columns)]`` of a dense ``matrix``; a Fortran-ordered one is written
    into the flat array ``out`` as a Fortran-ordered block (returned), a C-ordered one indexed
    as usual.

    Column by column: each column of the matrix is contiguous, so a gather reads it once,
    where ``np.ix_`` on a Fortran-ordered matrix jumps a column's length per element, 10-20×
    slower at the default size (docs/decisions/mock-optimizer-speed.md)."""
    if not matrix.flags.f_contiguous:
        return matrix[np.ix_(rows, columns)]
    block = out[:rows.size * columns.size].reshape(columns.size, rows.size)
    for k, column in enumerate(columns):
        np.take(matrix[:, column], rows, out=block[k], mode="clip")     # rows are valid indices
    return block.T


def take_rows(matrix: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``matrix[rows]`` of a C-ordered ``matrix`` (valid row indices), written into the flat
    array ``out`` (returned as the C-ordered block), half by half on the two threads."""
    block = out[:rows.size * matrix.shape[1]].reshape(rows.size, matrix.shape[1])
    if not (_split(matrix) and rows.size >= SPLIT_ROWS):
        np.take(matrix, rows, axis=0, out=block, mode="clip")
        return block
    _on_halves(lambda part: np.take(matrix, rows[part], axis=0, out=block[part], mode="clip"), rows.size)
    return block


def gram(matrix: Any, rows: np.ndarray, columns: np.ndarray, row_scale: np.ndarray,
         scratch: Optional[Scratch] = None) -> np.ndarray:
    """``Bᵀ B`` (float64) for ``B = diag(row_scale) · matrix[rows][:, columns]``, B made and
    multiplied half by half (rows of ``matrix`` sorted); from a Fortran-ordered dense matrix B
    is gathered into ``scratch``."""
    flat = None
    if not scipy.sparse.issparse(matrix):
        flat = (scratch or Scratch()).get(rows.size * columns.size, matrix.dtype)

    def half(part: slice) -> np.ndarray:
        if scipy.sparse.issparse(matrix):
            block = matrix[rows[part]][:, columns].toarray()
        else:
            block = gather(matrix, rows[part], columns, flat[part.start * columns.size:])
        block *= row_scale[part].astype(block.dtype)[:, None]
        return np.asarray(block.T @ block, dtype=np.float64)
    if not (_split(matrix) and rows.size >= SPLIT_ROWS):
        return half(slice(0, rows.size))
    first, second = _on_halves(half, rows.size)
    return first + second
