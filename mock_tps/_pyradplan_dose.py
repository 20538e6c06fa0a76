"""pyRadPlan calls behind :func:`mock_tps.dose_engine.influence_matrix`: beam groups, worker processes.

The matrix is computed in groups of beams (pyRadPlan's working arrays then hold one group
at a time) and the groups run in parallel worker processes, one per core up to
:func:`dose_workers`; the columns are joined in beam order, so the matrix is the same,
entry for entry, whatever the grouping and the number of workers.

pyRadPlan 0.5.0 validates every ray twice with pydantic (building the steering
information, then again per beam in its ray tracer), and pydantic-core formats a numpy
``repr`` of each ray's four coordinate arrays on the way; :func:`_short_array_repr`
makes that formatting cheap while pyRadPlan runs (measured: 3.5 ms → 0.5 ms per ray).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from constraints.errors import InputError
from mock_tps._phantom_data import BeamSpec, GridSpec
from mock_tps._pyradplan_kernel import fast_svdpb_engine

__all__ = ["BEAMS_PER_CALL", "compute_matrix", "dose_workers", "beam_groups", "gather"]

#: Most beams per pyRadPlan call.  Measured peak memory, 2 mm T4–T5, 17 beams, 116 M
#: non-zeros: 8.2 GB RSS in one call; the whole default demo with 4 beams per call: 5.3 GB.
BEAMS_PER_CALL = 4

#: Most worker processes by default (each holds one beam group's pyRadPlan arrays).
MAX_DEFAULT_WORKERS = 2


def dose_workers() -> int:
    """Worker processes for the dose engine: ``REIRRAD_DOSE_WORKERS`` (>= 1) or min(CPUs, 2).

    Raises
    ------
    InputError
        ``REIRRAD_DOSE_WORKERS`` is not a positive integer.
    """
    env = os.environ.get("REIRRAD_DOSE_WORKERS")
    if env is None or env.strip() == "":
        return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"REIRRAD_DOSE_WORKERS must be a positive integer, got {env!r}")
    return n


def beam_groups(n_beams: int, beams_per_call: int, workers: int) -> List[Tuple[int, int]]:
    """Consecutive ``(start, stop)`` beam ranges of near-equal size, each <= ``beams_per_call``.

    At least ``workers`` groups when there are that many beams, so every worker gets one:
    17 beams, 4 per call, 2 workers → 5 groups of 4, 4, 3, 3, 3.
    """
    n = int(n_beams)
    k = max(math.ceil(n / max(1, int(beams_per_call))), min(max(1, int(workers)), n))
    q, r = divmod(n, k)
    sizes = [q + 1] * r + [q] * (k - r)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [(int(starts[i]), int(starts[i + 1])) for i in range(k) if sizes[i] > 0]


def _short_repr(a: np.ndarray) -> str:
    if a.size <= 16:
        return f"array({a.tolist()!r})"
    return f"array(<{a.dtype} {a.shape}>)"


@contextlib.contextmanager
def _short_array_repr() -> Iterator[None]:
    """numpy ``repr`` without array2string's formatting machinery (numpy >= 2), for this block."""
    try:
        ctx = np.printoptions(override_repr=_short_repr)
        ctx.__enter__()
    except TypeError:  # numpy < 2: no override_repr
        yield
        return
    try:
        yield
    finally:
        ctx.__exit__(None, None, None)


@contextlib.contextmanager
def _quiet_pyradplan() -> Iterator[None]:
    """pyRadPlan warns about every overridden default and numpy about 0/0 in air: silence both."""
    prp_logger = logging.getLogger("pyRadPlan")
    old_level = prp_logger.level
    prp_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), _short_array_repr():
            warnings.simplefilter("ignore")
            yield
    finally:
        prp_logger.setLevel(old_level)


def _import_pyradplan() -> Any:
    try:
        import pyRadPlan  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mock_tps.dose_engine needs pyRadPlan: pip install pyradplan==0.5.0 'pydantic<2.13' "
            f"({exc})"
        ) from exc
    return pyRadPlan


class _Setup:
    """The pyRadPlan CT and structure set of one matrix, and what each call needs."""

    def __init__(self, hu: np.ndarray, ct_grid: GridSpec, tgt: np.ndarray, region: np.ndarray,
                 dose_grid: GridSpec, beams: Tuple[BeamSpec, ...], bixel_mm: float,
                 options: Dict[str, Any], fast_kernel_lookup: bool = True) -> None:
        _import_pyradplan()
        from pyRadPlan.cst import StructureSet, create_voi
        from pyRadPlan.ct import create_ct

        self.dose_grid, self.beams, self.bixel_mm, self.options = dose_grid, beams, bixel_mm, options
        self.fast_kernel_lookup = bool(fast_kernel_lookup)
        sp_ct = np.asarray(ct_grid.spacing_xyz_mm, dtype=float)
        origin_ct = np.asarray(ct_grid.corner_mm, dtype=float) + sp_ct / 2.0
        with _quiet_pyradplan():
            self.ct = create_ct(
                {
                    "cube_hu": np.ascontiguousarray(hu, dtype=np.float64),
                    "origin": tuple(float(v) for v in origin_ct),
                    "resolution": {"x": sp_ct[0], "y": sp_ct[1], "z": sp_ct[2]},
                }
            )
            v_t = create_voi(voi_type="TARGET", name="TARGET", ct_image=self.ct, mask=tgt.astype(np.uint8))
            v_r = create_voi(voi_type="OAR", name="DOSE_REGION", ct_image=self.ct, mask=region.astype(np.uint8))
            self.cst = StructureSet(vois=[v_t, v_r], ct_image=self.ct)

    def group(self, start: int, stop: int) -> Tuple[Any, List[int]]:
        """Matrix columns (CSC, float32, canonical) and beamlet counts of beams ``start:stop``."""
        import scipy.sparse as sp
        from pyRadPlan import PhotonPlan
        from pyRadPlan.dose.engines import get_engine
        from pyRadPlan.stf import get_generator, validate_stf

        group = self.beams[start:stop]
        sp_d = np.asarray(self.dose_grid.spacing_xyz_mm, dtype=float)
        origin_d = np.asarray(self.dose_grid.corner_mm, dtype=float) + sp_d / 2.0
        nz, ny, nx = (int(n) for n in self.dose_grid.shape_zyx)
        pln = PhotonPlan(machine="Generic")
        pln.prop_stf = {
            "gantry_angles": [float(b.gantry_deg) for b in group],
            "couch_angles": [float(b.couch_deg) for b in group],
            "bixel_width": self.bixel_mm,
            "iso_center": [[float(c) for c in b.isocenter_mm] for b in group],
            "generator": "photonIMRT",
        }
        pdc = {
            "engine": "SVDPB",
            "dose_grid": {
                "resolution": {"x": sp_d[0], "y": sp_d[1], "z": sp_d[2]},
                "dimensions": (nx, ny, nz),
                "origin": origin_d,
                "direction": np.eye(3).ravel(),
            }
        }
        pdc.update(self.options)
        with _quiet_pyradplan():
            pln.prop_dose_calc = pdc
            stf_gen = get_generator(pln)
            stf_gen.console_progress = False
            stf = validate_stf(stf_gen.generate(self.ct, self.cst))
            engine = fast_svdpb_engine(pln) if self.fast_kernel_lookup else get_engine(pln)
            engine.console_progress = False  # no tqdm bars on stderr
            if engine.short_name != "SVDPB":  # pragma: no cover
                raise RuntimeError(f"pyRadPlan chose dose engine {engine.short_name!r}, expected 'SVDPB'")
            try:
                dij = engine.calc_dose_influence(self.ct, self.cst, stf)
            except ValueError as exc:
                if "broadcast" not in str(exc):
                    raise
                # pyRadPlan 0.5.0 _compute_ssd fails when a ray misses the patient
                raise InputError(
                    "some beamlets do not hit the patient (pyRadPlan 0.5.0 cannot handle that): keep "
                    "target_mask at least one bixel inside the CT volume and the body "
                    f"({exc})"
                ) from exc
        g = dij.dose_grid
        if tuple(int(v) for v in g.dimensions) != (nx, ny, nz) or not np.allclose(g.origin[:3], origin_d, atol=1e-3):
            raise RuntimeError(  # pragma: no cover - guards a pyRadPlan behaviour change
                f"pyRadPlan changed the dose grid: dims {g.dimensions} origin {g.origin}, "
                f"asked {(nx, ny, nz)} {tuple(origin_d)}"
            )
        a = sp.csc_matrix(dij.physical_dose.flat[0], dtype=np.float32)
        del dij
        a.sum_duplicates()
        a.eliminate_zeros()
        counts = [int(b.total_number_of_bixels) for b in stf.beams]
        if sum(counts) != a.shape[1]:  # pragma: no cover
            raise RuntimeError(f"beamlet count mismatch: {sum(counts)} vs {a.shape[1]} columns")
        return a, counts


#: The worker process's setup (built once per worker by :func:`_worker_init`).
_WORKER_SETUP: Optional[_Setup] = None


def _worker_init(*args: Any) -> None:
    import signal

    global _WORKER_SETUP
    # Ctrl-C is the parent's to handle: it terminates the workers (a terminal sends it to all)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_SETUP = _Setup(*args)


def _worker_group(bounds: Tuple[int, int]) -> Tuple[Any, List[int]]:
    assert _WORKER_SETUP is not None
    return _WORKER_SETUP.group(*bounds)


#: Seconds between the parent's checks for Ctrl-C while the workers compute.
POLL_S = 0.2


def gather(pool: Any, fn: Any, items: Sequence[Any]) -> List[Any]:
    """``[fn(x) for x in items]`` on ``pool``, in order; Ctrl-C or a worker's error ends it at once.

    SIGINT is held while the pool forks its workers (a Ctrl-C handled inside the parent's
    at-fork hooks is swallowed by CPython), and the parent then waits in slices of
    :data:`POLL_S` rather than blocking on one result (a SIGINT the kernel hands to a helper
    thread is read by the main thread only when it next runs Python code). On any exception
    the pool is shut down and its workers terminated before it propagates.
    """
    import signal
    import threading
    from concurrent.futures import FIRST_EXCEPTION, wait

    # SIGINT held while the workers fork: a Ctrl-C that lands in the parent's at-fork hooks
    # (logging's lock release) is otherwise reported as "Exception ignored" and lost
    hold = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hold else None
        try:
            futures = [pool.submit(fn, x) for x in items]
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held Ctrl-C is raised here
        while wait(futures, timeout=POLL_S, return_when=FIRST_EXCEPTION)[1]:
            if any(f.done() and f.exception() is not None for f in futures):
                break
        results = [f.result() for f in futures]
    except BaseException:  # Ctrl-C or a worker's error: stop the workers now, not after their groups
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown()
    return results


def _fork_context() -> Optional[Any]:
    import multiprocessing

    # a daemonic process (a Dask or multiprocessing worker) may not have children: run in turn
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return None
    return multiprocessing.get_context("fork")


def compute_matrix(
    hu: np.ndarray,
    ct_grid: GridSpec,
    tgt: np.ndarray,
    region: np.ndarray,
    dose_grid: GridSpec,
    beams: Sequence[BeamSpec],
    bixel_mm: float,
    options: Dict[str, Any],
    *,
    beams_per_call: int = BEAMS_PER_CALL,
    workers: Optional[int] = None,
    fast_kernel_lookup: bool = True,
) -> Tuple[Any, np.ndarray]:
    """Beamlet dose-influence matrix of ``beams`` by pyRadPlan's SVDPB engine.

    Inputs are validated by the caller (:func:`mock_tps.dose_engine.influence_matrix`).
    ``workers`` (default :func:`dose_workers`) processes compute the beam groups of
    :func:`beam_groups` in parallel (forked from this one, so pyRadPlan is imported once);
    where ``fork`` is unavailable, or with one worker or one group, they run here in turn.
    ``fast_kernel_lookup`` uses :func:`mock_tps._pyradplan_kernel.fast_svdpb_engine`
    (the same dose up to float32 rounding); False runs pyRadPlan's engine as shipped.

    Returns
    -------
    (scipy.sparse.csc_matrix, ndarray of int64)
        The matrix (float32, canonical, columns in beam order) and each column's beam index.
    """
    import scipy.sparse as sp

    beams = tuple(beams)
    n_workers = dose_workers() if workers is None else max(1, int(workers))
    groups = beam_groups(len(beams), beams_per_call, n_workers)
    args = (hu, ct_grid, tgt, region, dose_grid, beams, float(bixel_mm), dict(options), bool(fast_kernel_lookup))
    ctx = _fork_context() if n_workers > 1 and len(groups) > 1 else None
    if ctx is None:
        setup = _Setup(*args)
        results = [setup.group(*g) for g in groups]
    else:
        from concurrent.futures import ProcessPoolExecutor

        _import_pyradplan()  # once, before the fork: the workers inherit it
        pool = ProcessPoolExecutor(max_workers=min(n_workers, len(groups)), mp_context=ctx,
                                   initializer=_worker_init, initargs=args)
        results = gather(pool, _worker_group, groups)
    blocks = [r[0] for r in results]
    counts = [c for r in results for c in r[1]]
    del results
    a = blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csc", dtype=np.float32)
    del blocks
    idx = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    a = sp.csc_matrix(a)
    if a.nnz < np.iinfo(np.int32).max:  # pyRadPlan's int64 indices: half the memory as int32
        a.indices = a.indices.astype(np.int32, copy=False)
        a.indptr = a.indptr.astype(np.int32, copy=False)
    return a, idx
