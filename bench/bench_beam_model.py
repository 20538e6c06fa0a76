"""Beam model bench: per phantom, the exact FMO ceiling, the cord gradient and the dose engine's cost.

For each phantom (default: all four) it builds the phantom with the given beam
model in a fresh matrix cache (so the dose engine really runs), solves the
``exact`` strategy (:func:`optimizer.fmo_strategies.plan_strategy`, SCHUR_IPM) and
prints:

* matrix size (voxels x beamlets, non-zeros) and the dose engine's wall and CPU
  time (the whole phantom build: SBRT beams and the prior courses);
* PTVeval V24Gy (%) and D95 (Gy), every binding constraint passing or not;
* the constraints within 1 % of their limit (what holds the ceiling);
* PTVeval volume and V24Gy by distance from SpinalCord_PRV (0-3, 3-6, > 6 mm);
* the dose gradient between PTVeval and the cord PRV: % of the prescription per
  mm between the 80 % and 50 % isodoses, on radial profiles from the cord centre
  (every 10° over the anterior and lateral half, where the vertebral body and
  pedicles are; the treated levels' mid-planes), median and range.

Usage::

    python bench/bench_beam_model.py [--coarse] [--phantom t4t5_esophageal ...] \
        [--set n_beams=17 arc_deg=240 bixel_mm=5 dose_grid_mm=2]

Times depend on the load of the 2 cores; the CPU time is what the engine costs.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np

COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}
PHANTOMS = ("t4t5_esophageal", "c7t1_head_neck", "c3_cervical", "t8_two_courses")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def cord_gradient(dose_gy: np.ndarray, grid, cord_xy_mm, z_mm, prescription_gy: float):
    """Gradients (% of Rx per mm) between the 80 % and 50 % isodoses on radial profiles.

    Profiles start at the cord centre ``cord_xy_mm`` in the planes ``z_mm`` and run
    outward every 10° from 90° left through anterior to 90° right (toward the
    vertebral body and pedicles), sampled every 0.1 mm (trilinear).  A profile
    counts when it rises through 50 % and then 80 % of ``prescription_gy``.
    """
    from scipy.ndimage import map_coordinates

    r = np.arange(0.0, 30.0, 0.1)
    out = []
    for z in z_mm:
        for ang in np.radians(np.arange(-90.0, 91.0, 10.0)):
            x = cord_xy_mm[0] + r * np.sin(ang)
            y = cord_xy_mm[1] - r * np.cos(ang)
            idx = [(np.full_like(r, z) - grid.corner_mm[2]) / grid.spacing_xyz_mm[2] - 0.5,
                   (y - grid.corner_mm[1]) / grid.spacing_xyz_mm[1] - 0.5,
                   (x - grid.corner_mm[0]) / grid.spacing_xyz_mm[0] - 0.5]
            d = map_coordinates(dose_gy, idx, order=1, mode="nearest") / prescription_gy
            i50 = np.nonzero(d >= 0.5)[0]
            if i50.size == 0:
                continue
            i80 = np.nonzero(d[i50[0]:] >= 0.8)[0]
            if i80.size == 0:
                continue
            dr = r[i50[0] + i80[0]] - r[i50[0]]
            out.append(30.0 / max(dr, 0.1))
    return np.asarray(out)


def run_one(name: str, params: dict, protocol, fresh_cache: bool = True) -> dict:
    from scipy.ndimage import distance_transform_edt

    from constraints.evaluation import organ_structure
    from mock_tps._phantom_regions import REGIONS
    from mock_tps._phantoms import build_phantom
    from optimizer.fmo import FmoOptions
    from optimizer.fmo_case import case_from_phantom_data
    from optimizer.fmo_strategies import plan_strategy

    with tempfile.TemporaryDirectory(prefix="reirrad_bench_") as tmp:
        old = os.environ.get("REIRRAD_CACHE_DIR")
        if fresh_cache:
            os.environ["REIRRAD_CACHE_DIR"] = tmp
        try:
            from mock_tps import dose_engine
            calls = []
            engine = dose_engine.influence_matrix

            def timed(*a, **k):
                t, c = time.perf_counter(), _cpu_s()
                res = engine(*a, **k)
                calls.append((res.matrix_gy.shape[1], time.perf_counter() - t, _cpu_s() - c))
                return res

            dose_engine.influence_matrix = timed
            t0, c0 = time.perf_counter(), _cpu_s()
            try:
                data = build_phantom(name, **params)
            finally:
                dose_engine.influence_matrix = engine
            build_wall, build_cpu = time.perf_counter() - t0, _cpu_s() - c0
        finally:
            if not fresh_cache:
                pass
            elif old is None:
                os.environ.pop("REIRRAD_CACHE_DIR", None)
            else:
                os.environ["REIRRAD_CACHE_DIR"] = old
    fcase = case_from_phantom_data(data, protocol)
    t0 = time.perf_counter()
    plan = plan_strategy(fcase, protocol, "exact", options=FmoOptions())
    solve_wall = time.perf_counter() - t0
    case = fcase.case
    g = case.grid
    dose = plan.result.dose_gy.reshape(g.shape_zyx)
    ptv = np.asarray(organ_structure(case, protocol, protocol.prescription.target).mask) >= 0.5
    prv = np.asarray(organ_structure(case, protocol, "spinal_cord_prv").mask) >= 0.5
    dist = distance_transform_edt(~prv, sampling=tuple(g.spacing_xyz_mm[::-1]))
    rx = fcase.prescription_gy
    bands = []
    for lo, hi in ((0.0, 3.0), (3.0, 6.0), (6.0, 1e9)):
        sel = ptv & (dist > lo) & (dist <= hi)
        n = int(sel.sum())
        bands.append((lo, hi, 100.0 * n / max(int(ptv.sum()), 1),
                      100.0 * float((dose[sel] >= rx).mean()) if n else float("nan")))
    a = REGIONS[name]
    grad = cord_gradient(dose, g, data.params["cord_centre_mm"], a.treated_centres(), rx)
    binding = []
    ev = plan.evaluation
    for c in ev.results:
        if c.limit and c.value is not None and c.value >= 0.99 * c.limit and not getattr(c, "advisory", False):
            binding.append(f"{c.roi_name} {c.metric} {c.domain} {c.value:.1f}/{c.limit:g}"
                           + (" FAIL" if not c.passed else ""))
    A = fcase.influence_gy
    return dict(calls=calls, phantom=name, voxels=A.shape[0], beamlets=A.shape[1], nnz=A.nnz, build_wall_s=build_wall,
                build_cpu_s=build_cpu, solve_s=solve_wall, status=plan.result.status, v24=plan.v_rx_percent,
                d95=plan.d95_gy, all_pass=plan.all_pass, bands=bands, binding=binding,
                grad_median=float(np.median(grad)) if grad.size else float("nan"),
                grad_range=(float(grad.min()), float(grad.max())) if grad.size else (np.nan, np.nan),
                n_profiles=int(grad.size))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantom", nargs="+", default=list(PHANTOMS))
    ap.add_argument("--coarse", action="store_true", help="4 mm CT, 5 mm dose grid, 10 mm beamlets")
    ap.add_argument("--cached", action="store_true",
                    help="use the matrix cache (the build time is then not the dose engine's)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="builder parameters")
    args = ap.parse_args(argv)
    from constraints.protocol import load_protocol

    params = dict(COARSE) if args.coarse else {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        params[k] = _value(v)
    protocol = load_protocol("koide2024")
    print(f"builder parameters: {params or 'defaults'}")
    for name in args.phantom:
        r = run_one(name, params, protocol, fresh_cache=not args.cached)
        print(f"\n{name}: {r['voxels']} voxels x {r['beamlets']} beamlets ({r['nnz'] / 1e6:.1f} M non-zeros); "
              f"phantom build (dose engine) {r['build_wall_s']:.1f} s wall, {r['build_cpu_s']:.1f} s CPU; "
              f"FMO exact {r['solve_s']:.1f} s, {r['status']}")
        print("  dose engine calls (beamlets, wall s, CPU s): SBRT " + ", prior ".join(
            f"({n}, {w:.1f}, {c:.1f})" for n, w, c in r["calls"]))
        print(f"  PTVeval V24Gy {r['v24']:.1f} %, D95 {r['d95']:.2f} Gy, all binding constraints pass: "
              f"{r['all_pass']}")
        print("  by distance from the cord PRV: " + "; ".join(
            f"{lo:g}-{hi:g} mm: {f:.1f} % of PTVeval, V24Gy {v:.1f} %" if hi < 1e8 else
            f"> {lo:g} mm: {f:.1f} %, V24Gy {v:.1f} %" for lo, hi, f, v in r["bands"]))
        print(f"  cord gradient 80 %->50 %: median {r['grad_median']:.1f} %/mm "
              f"(range {r['grad_range'][0]:.1f}-{r['grad_range'][1]:.1f}, {r['n_profiles']} profiles)")
        print("  at their limit: " + ("; ".join(r["binding"]) or "none"))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
