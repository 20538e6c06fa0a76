"""Throughput of the foundation's hot paths: the per-voxel limit map and the DVH.

Run:  python bench/bench_foundation.py
Prints voxels per second; no assertion (speed is measured here, not in tests).
"""
from __future__ import annotations

import time

import numpy as np

from constraints import DoseCourse, Grid, Structure, compute_dvh
from optimizer import sbrt_limit_map


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_limit_map(n_side: int) -> None:
    grid = Grid((0, 0, 0), (2.0, 2.0, 2.0), (n_side, n_side, n_side))
    rng = np.random.default_rng(0)
    c1 = DoseCourse(rng.uniform(0, 66, grid.shape_zyx), grid, 30, "prior 1")
    c2 = DoseCourse(rng.uniform(0, 20, grid.shape_zyx), grid, 5, "prior 2", recovery=0.25)
    t = best_of(lambda: sbrt_limit_map([c1, c2], alpha_beta_gy=3, cumulative_limit_bed_gy=203, fractions=2,
                                       cap_gy=20))
    print(f"limit map, 2 prior courses, {grid.n_voxels:>10,d} voxels: {t * 1e3:8.1f} ms "
          f"({grid.n_voxels / t / 1e6:6.1f} M voxels/s)")


def bench_dvh(n_side: int, fill: float) -> None:
    grid = Grid((0, 0, 0), (2.5, 2.5, 2.5), (n_side, n_side, n_side))
    rng = np.random.default_rng(1)
    dose = rng.uniform(0, 30, grid.shape_zyx)
    zz, yy, xx = np.indices(grid.shape_zyx)
    c = (n_side - 1) / 2
    r = np.sqrt((zz - c) ** 2 + (yy - c) ** 2 + (xx - c) ** 2)
    radius = c * fill ** (1 / 3) * (6 / np.pi) ** (1 / 3) if fill < 1 else np.inf
    mask = np.clip(radius + 0.5 - r, 0, 1)       # sphere with a one-voxel partial rim
    s = Structure("organ", "oar", mask, grid)
    n_in = int(np.count_nonzero(mask))

    def all_metrics():
        h = compute_dvh(dose, s)
        h.metrics(d_percent=(99, 95, 50, 5, 1), d_cc=(0.035, 1.0))
        h.v_cc(20.0)
        h.curve(np.linspace(0, 30, 301))

    t = best_of(all_metrics)
    print(f"DVH + all metrics, grid {grid.n_voxels:>10,d} voxels, structure {n_in:>9,d} voxels: {t * 1e3:8.1f} ms "
          f"({n_in / t / 1e6:6.1f} M structure voxels/s)")


if __name__ == "__main__":
    for n in (64, 100, 160):
        bench_limit_map(n)
    for fill in (0.05, 0.3, 1.0):
        bench_dvh(100, fill)
