"""OpenBLAS kernels this CPU runs, for tests that repeat a computation on each.

OpenBLAS picks its kernel by the CPU (``DYNAMIC_ARCH``); ``OPENBLAS_CORETYPE`` forces one,
read when the library starts, so each kernel's run is its own process. float32 products
round differently on each, which is what these tests guard against.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

#: kernel name and the CPU flag it needs, oldest first
_KERNELS = (("Sandybridge", "avx"), ("Haswell", "avx2"), ("SkylakeX", "avx512f"))


def blas_kernels() -> List[str]:
    """Names of the OpenBLAS kernels whose instructions this CPU has (empty off Linux)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [name for name, flag in _KERNELS if flag in flags]
