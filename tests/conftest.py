"""Test-wide settings.

BLAS threading: on a 2-core machine, OpenBLAS threads slow the small dense products
of L-BFGS-B by 2.5-10x (measured by bench/bench_tps_optimizer.py), so tests run
single-threaded BLAS unless the caller chose otherwise.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
