"""On-disk cache of dose-influence matrices (``dij_<key>.npz`` in :func:`cache_dir`).

A matrix is keyed by a SHA-256 of every input array and parameter plus the engine and
pyRadPlan versions, so a changed input or engine never returns a stale matrix.  The cache
is bounded (:func:`cache_max_bytes`) and evicted least recently used first: at the default
size a matrix takes 0.2-1 GB, and users run all four phantoms.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from constraints.errors import InputError

__all__ = [
    "DEFAULT_CACHE_MAX_GB",
    "cache_dir",
    "cache_max_bytes",
    "evict_cache",
    "matrix_key",
    "matrix_path",
    "load_matrix",
    "save_matrix",
]

#: Default size limit of the matrix cache, GB (the four default-size phantoms with
#: their prior courses take about 3 GB).
DEFAULT_CACHE_MAX_GB = 6.0


def cache_dir() -> Path:
    """Directory of the on-disk matrix cache.

    Read at call time from ``REIRRAD_CACHE_DIR``; defaults to ``~/.cache/reirrad``.
    """
    env = os.environ.get("REIRRAD_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "reirrad"


def cache_max_bytes() -> int:
    """Size limit of the matrix cache in bytes: ``REIRRAD_CACHE_MAX_GB`` (GB, > 0) or the default.

    Raises
    ------
    constraints.errors.InputError
        ``REIRRAD_CACHE_MAX_GB`` is not a positive number.
    """
    env = os.environ.get("REIRRAD_CACHE_MAX_GB")
    if env is None or env.strip() == "":
        return int(DEFAULT_CACHE_MAX_GB * 1e9)
    try:
        gb = float(env)
    except ValueError:
        gb = float("nan")
    if not (gb > 0 and np.isfinite(gb)):
        raise InputError(f"REIRRAD_CACHE_MAX_GB must be a positive number of GB, got {env!r}")
    return int(gb * 1e9)


def evict_cache(keep: Optional[Path] = None, max_bytes: Optional[int] = None) -> List[Path]:
    """Delete the least recently used cached matrices until the cache fits ``max_bytes``.

    Only this module's files (``dij_*.npz`` in :func:`cache_dir`) are considered; a
    cache hit refreshes a file's modification time, so the order is least recently
    *used*.  ``keep`` (the file just written) is never deleted.

    Returns
    -------
    list of Path
        The files deleted.
    """
    limit = cache_max_bytes() if max_bytes is None else int(max_bytes)
    entries = []
    for p in cache_dir().glob("dij_*.npz"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(e[1] for e in entries)
    removed = []
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if keep is not None and p == keep:
            continue
        try:
            p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p)
    return removed


def _hash_update_array(h: "hashlib._Hash", a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())


def matrix_key(meta: Dict[str, Any], arrays: List[np.ndarray]) -> str:
    """32 hex digits of the SHA-256 of ``meta`` (JSON, sorted keys) and ``arrays`` (dtype, shape, bytes)."""
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for a in arrays:
        _hash_update_array(h, a)
    return h.hexdigest()[:32]


def matrix_path(key: str) -> Path:
    """File of the matrix with ``key`` in :func:`cache_dir`."""
    return cache_dir() / f"dij_{key}.npz"


def load_matrix(path: Path) -> Optional[Any]:
    """The cached ``(csc_matrix, beamlet_beam_index)`` at ``path``, or None if absent or unreadable.

    A hit refreshes the file's modification time (most recently used: evicted last).
    """
    import scipy.sparse as sp

    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            a = sp.csc_matrix(
                (f["data"], f["indices"], f["indptr"]), shape=tuple(int(s) for s in f["shape"])
            )
            idx = f["beamlet_beam_index"].astype(np.int64)
    except (OSError, KeyError, ValueError):
        return None
    try:
        os.utime(path)
    except OSError:
        pass
    return a, idx


def save_matrix(path: Path, matrix: Any, beamlet_beam_index: np.ndarray) -> None:
    """Write ``matrix`` (CSC) atomically to ``path`` (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            data=matrix.data,
            indices=matrix.indices,
            indptr=matrix.indptr,
            shape=np.asarray(matrix.shape, dtype=np.int64),
            beamlet_beam_index=beamlet_beam_index,
        )
    os.replace(tmp, path)
