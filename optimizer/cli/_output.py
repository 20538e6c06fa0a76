"""Printing helpers shared by the sub-commands: JSON or a plain text table; progress lines."""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import Any, Iterator, Sequence


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    """Print a fixed-width text table; floats with 2 decimals."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out = []
    if title:
        out.append(title)
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    out.append("  ".join("-" * w for w in widths))
    for r in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    sys.stdout.write("\n".join(out) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if value is None:
        return "-"
    return str(value)


class _StderrProgress(logging.Handler):
    def __init__(self, t0: float) -> None:
        super().__init__(logging.INFO)
        self.t0 = t0

    def emit(self, record: logging.LogRecord) -> None:
        say(self.t0, record.getMessage())


def say(t0: float, message: str) -> None:
    """One progress line on stderr, ``[elapsed s] message`` (stdout stays the command's output)."""
    sys.stderr.write(f"[{time.perf_counter() - t0:6.1f} s] {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def progress_to_stderr(t0: float, logger_names: Sequence[str]) -> Iterator[None]:
    """Send the INFO records of ``logger_names`` to stderr as progress lines while the block runs."""
    handler = _StderrProgress(t0)
    loggers = [logging.getLogger(n) for n in logger_names]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
