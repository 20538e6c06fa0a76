"""Memory settings of a short ``reirrad dvh`` process.

``reirrad dvh`` makes and frees a few dozen arrays of 2-20 MB (copies of the dose through
the scripting API, the body's coverage on the dose grid).  glibc's malloc serves blocks of
that size by ``mmap`` and returns them to the system on ``free`` (or trims them off the top
of the heap), so the next array touches fresh pages, each a page fault, and system time is
the part of the process that grows most with the machine's load.  :func:`keep_freed_memory`
sets both of glibc's thresholds so that freed blocks stay in the heap and are reused (a
short process exits soon anyway); one alone is slower than neither, as any ``mallopt``
switches off glibc's adaptive thresholds.  Measurements: ``docs/decisions/dvh-process-speed.md``.
"""
from __future__ import annotations

#: ``mallopt`` parameters (glibc ``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap (glibc's largest allowed value on 64-bit: 32 MiB).
MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory at the top of the heap kept, not returned to the system.
TRIM_THRESHOLD_BYTES = 1 << 30

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES"]


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MiB for reuse (module doc); True when
    set, False where there is no glibc ``mallopt`` (macOS, Windows): nothing changes then."""
    try:
        import ctypes
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    except (ImportError, OSError, TypeError):
        return False
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
