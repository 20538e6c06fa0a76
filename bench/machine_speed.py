"""This machine's speed at the moment, to read the benches' times against.

One float32 ``syrk`` of the shape of the 2 mm dose grid T4–T5 normal matrix (27 067 distinct
rows × 1 394 beamlets, the operation that takes most of an FMO solve), best of ``repeat``, with
the BLAS threads the environment gives (``OPENBLAS_NUM_THREADS``).  The 2-core machine this
project is measured on ran the same 2 mm T4–T5 solve in 24.6 s and in 37 s within one hour; a
bench time is comparable across runs only next to this figure.

Usage::

    OPENBLAS_NUM_THREADS=2 python bench/machine_speed.py
"""
from __future__ import annotations

import time

import numpy as np

#: The reference shape: (rows, columns) of the T4–T5 2 mm normal matrix's float32 sum.
REFERENCE_SHAPE = (27_067, 1_394)


def syrk_reference_s(repeat: int = 3, seed: int = 0) -> float:
    """Seconds of the best of ``repeat`` float32 ``syrk`` of :data:`REFERENCE_SHAPE` (after one warm-up)."""
    from scipy.linalg import blas

    w = np.random.default_rng(seed).random(REFERENCE_SHAPE, dtype=np.float32)
    blas.ssyrk(1.0, w.T, trans=0, lower=0)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        blas.ssyrk(1.0, w.T, trans=0, lower=0)
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    print(f"float32 syrk {REFERENCE_SHAPE[0]} × {REFERENCE_SHAPE[1]}: {syrk_reference_s():.3f} s")
