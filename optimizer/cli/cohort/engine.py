"""Running tasks on Dask distributed: an embedded local cluster or an existing scheduler.

Default: a :class:`distributed.LocalCluster` of worker *processes* with one thread
each (the mock TPS holds one patient per process), as many as the machine has
cores; ``scheduler`` connects to a running cluster instead (``dask scheduler`` and
``dask worker --nthreads 1`` on each machine; the patients' and the output folder
must be on a file system every worker reads).  Results are handed to a callback as
each task completes, in completion order; a task whose worker died is run again on
another worker by the scheduler (``distributed.scheduler.allowed-failures``), and
one that still fails is reported with its exception, never dropped.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

from constraints.errors import InputError

__all__ = ["EngineOptions", "open_client", "run_tasks", "Task"]

#: (name, function, positional arguments)
Task = Tuple[str, Callable[..., Any], tuple]


@dataclass(frozen=True)
class EngineOptions:
    """Where tasks run.

    Attributes
    ----------
    workers : int or None
        Worker processes of the embedded cluster (default: the machine's cores).
    scheduler : str or None
        Address of an existing scheduler (``tcp://HOST:8786``); excludes ``workers``.
    memory_limit : str
        Per worker of the embedded cluster (Dask syntax, "auto": the machine's memory
        shared equally).
    """

    workers: Optional[int] = None
    scheduler: Optional[str] = None
    memory_limit: str = "auto"

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise InputError("give --workers or --scheduler, not both (the workers of a scheduler are its own)")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or not 1 <= self.workers <= 512):
            raise InputError(f"--workers must be an integer in [1, 512], got {self.workers!r}")
        if self.scheduler is not None and "://" not in self.scheduler and ":" not in self.scheduler:
            raise InputError(f"--scheduler {self.scheduler!r} must be an address like tcp://HOST:8786")


@contextlib.contextmanager
def open_client(options: EngineOptions) -> Iterator[Any]:
    """A :class:`distributed.Client` on the cluster ``options`` asks for.

    The client is closed, and an embedded cluster stopped, on exit.

    Raises
    ------
    constraints.errors.InputError
        The scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {options.scheduler!r} cannot be reached: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = options.workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=options.memory_limit, silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


class Progress:
    """A counter on stderr: ``[elapsed] done/total (failed) name status``."""

    def __init__(self, total: int, what: str, enabled: bool = True) -> None:
        self.total, self.what, self.enabled = total, what, enabled
        self.done = self.failed = 0
        self.t0 = time.perf_counter()

    def update(self, name: str, ok: bool, note: str = "") -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        if self.enabled:
            sys.stderr.write(f"[{time.perf_counter() - self.t0:7.1f} s] {self.done}/{self.total} {self.what}"
                             f"{f' ({self.failed} failed)' if self.failed else ''}: {name} "
                             f"{'done' if ok else 'FAILED'}{(' ' + note) if note else ''}\n")
            sys.stderr.flush()


def run_tasks(client: Any, tasks: Sequence[Task], on_done: Callable[[str, Any, Optional[BaseException]], None]) -> None:
    """Submit ``tasks`` and call ``on_done(name, result, None)`` or ``on_done(name, None, exception)`` as each ends.

    Each task is submitted with a key made from its name, so a scheduler shared by
    several runs keeps them apart; ``pure=False``: a task is never served from
    another run's memory.
    """
    from distributed import as_completed

    futures = {}
    stamp = f"{os.getpid()}-{time.time_ns()}"
    for name, fn, args in tasks:
        fut = client.submit(fn, *args, key=f"reirrad-{name}-{stamp}", pure=False)
        futures[fut] = name
    try:
        for fut in as_completed(list(futures)):
            name = futures[fut]
            if fut.status == "finished":
                on_done(name, fut.result(), None)
            else:
                on_done(name, None, fut.exception())
            fut.release()
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
