"""Benchmark the mock TPS phantoms and dose engine (pyRadPlan SVD pencil beam).

Prints, per phantom at default size (or ``--coarse``): CT and dose-grid shapes,
influence-matrix shape, nnz, fill, memory, time to build (anatomy + SBRT matrix +
prior-course matrices; a cache hit if the cache is warm) and time to get the SBRT
matrix again from the cache (input hashing + load).

Usage::

    PYTHONPATH=. python bench/bench_dose_engine.py [--coarse] [--fresh] [names ...]

``--fresh`` uses a new empty cache directory (so the first build really
computes); otherwise ``REIRRAD_CACHE_DIR`` (default ``~/.cache/reirrad``) is used.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

COARSE = dict(grid_mm=4.0, dose_grid_mm=5.0, bixel_mm=10.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="phantom names (default: all)")
    ap.add_argument("--coarse", action="store_true", help="4 mm CT, 5 mm dose grid, 10 mm bixels")
    ap.add_argument("--fresh", action="store_true", help="compute into a new, empty cache directory")
    args = ap.parse_args(argv)
    if args.fresh:
        os.environ["REIRRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="rr_bench_cache_")

    from mock_tps import dose_engine
    from mock_tps._phantoms import PHANTOM_BUILDERS

    names = args.names or list(PHANTOM_BUILDERS)
    kw = COARSE if args.coarse else {}
    print(f"cache dir: {dose_engine.cache_dir()}  pyRadPlan {dose_engine.pyradplan_version()}  "
          f"{'coarse ' + str(COARSE) if args.coarse else 'default size'}")
    t0 = time.perf_counter()
    import pyRadPlan  # noqa: F401  (import cost reported separately)
    print(f"import pyRadPlan: {time.perf_counter() - t0:.1f} s")
    hdr = f"{'phantom':18s} {'CT (nz,ny,nx)':>16s} {'dose grid':>14s} {'matrix':>18s} {'nnz':>11s} {'fill':>6s} {'MB':>7s} {'build s':>8s} {'load s':>8s}"
    print(hdr)
    for name in names:
        t0 = time.perf_counter()
        ph = PHANTOM_BUILDERS[name](**kw)
        t_build = time.perf_counter() - t0
        masks = {r.name: r.mask for r in ph.rois}
        t0 = time.perf_counter()
        dose_engine.influence_matrix(
            ph.ct_hu, ph.ct_grid, masks["PTV"], ph.dose_grid, ph.beams, ph.params["bixel_mm"],
            dose_region_mask=masks["Body"],
        )
        t_cached = time.perf_counter() - t0  # hash + load of the SBRT matrix
        A = ph.influence_gy
        mb = (A.data.nbytes + A.indices.nbytes + A.indptr.nbytes) / 2**20
        fill = A.nnz / float(A.shape[0] * A.shape[1])
        print(f"{name:18s} {str(ph.ct_grid.shape_zyx):>16s} {str(ph.dose_grid.shape_zyx):>14s} {str(A.shape):>18s} "
              f"{A.nnz:>11,d} {fill:>6.1%} {mb:>7.1f} {t_build:>8.1f} {t_cached:>8.1f}", flush=True)
        for pc in ph.prior_courses:
            print(f"    prior {pc.name!r}: {pc.fractions} fx, grid {pc.grid.shape_zyx}, max {pc.dose_gy.max():.1f} Gy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
