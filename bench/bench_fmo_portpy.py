"""Bench: our FMO formulation and PortPy's on the same influence matrix, same solver, one run.

Usage (PortPy 1.2.0 needs Python ≥ 3.12 — its ``vmat_scp`` module uses PEP 701 f-strings —
so it runs in its own venv, in a subprocess of this script)::

    python3.12 -m venv /tmp/ppvenv312 && /tmp/ppvenv312/bin/pip install portpy==1.2.0 highspy
    python bench/bench_fmo_portpy.py [--phantom t4t5_esophageal] [--coarse] [--solver CLARABEL]
                                     [--portpy-python /tmp/ppvenv312/bin/python]

The common problem is the part of our ``exact`` strategy (:func:`optimizer.fmo_strategies.build_spec`)
that PortPy's ``Optimization`` expresses with its own API:

- objective: PTVeval quadratic under-dose to the prescription, ``(1/n) Σ [R − d_v]₊²``
  (PortPy ``'quadratic-underdose'``, weight 1; it works in dose per fraction, so its value
  is ours / fractions²);
- per-voxel hard bounds of every ``MaxBound`` (cord PRV, esophagus cumulative maps, ...):
  PortPy ``Optimization.add_constraints([A[rows] @ x <= L / fractions])``;
- volume caps with a constant limit (SBRT-only D0.035cc ≤ 20 Gy organs) as CVaR
  constraints: PortPy's clinical-criteria DVH table with ``dvh_method = 'cvar'``.

Dropped from both sides: the cumulative esophagus volume caps (their limit is a per-voxel
map, which PortPy's DVH table cannot take), the fall-off ring, the fluence tie-break and the
PTV hot-spot bound.  PortPy runs as shipped; it is driven through small stand-ins for its
``Plan``, ``InfluenceMatrix`` and ``ClinicalCriteria`` (which it otherwise reads from its
HDF5 patient data), so its own ``create_cvxpy_problem`` builds the objective and CVaR
constraints.  No PortPy code is copied (Apache-2.0 + Commons Clause).

Prints, for each formulation (ours with and without objective-row truncation, PortPy's):
build and solve seconds, status, the solver's objective (ours' units), the objective
recomputed on the full matrix, PTVeval V24Gy of the solution and its worst per-voxel bound
excess.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


def common_spec(spec):
    """Our spec reduced to what PortPy expresses (see the module doc); target coverage = 1."""
    from optimizer.fmo import FmoSpec, Region

    tgt = spec.regions[spec.target]
    regions = dict(spec.regions)
    regions[spec.target] = Region(tgt.name, tgt.rows, np.ones_like(tgt.coverage))
    caps = tuple(c for c in spec.volume_caps if np.ptp(c.limit_gy) == 0.0)
    return FmoSpec(spec.influence_gy, spec.fractions, spec.voxel_volume_cc, regions, spec.target,
                   spec.prescription_gy, None, spec.max_bounds, caps, None)


PORTPY_SCRIPT = r"""
import contextlib, io, json, sys, time
import numpy as np, pandas as pd, scipy.sparse as sp, cvxpy as cp
from portpy.photon.optimization import Optimization

f = np.load(sys.argv[1], allow_pickle=False)
solver = sys.argv[2]
a = sp.csr_matrix((f["a_data"], f["a_indices"], f["a_indptr"]), shape=tuple(f["a_shape"]))
fx, rx, cc = int(f["fractions"]), float(f["prescription_gy"]), float(f["voxel_cc"])
names = [str(n) for n in f["region_names"]]
rows = {n: f[f"rows_{k}"] for k, n in enumerate(names)}
cov = {n: f[f"cov_{k}"] for k, n in enumerate(names)}

class Structures:            # PortPy's Structures interface
    def get_structures(self): return list(names)
    def get_fraction_of_vol_in_calc_box(self, name): return 1.0

class InfluenceMatrix:       # PortPy's InfluenceMatrix interface
    A = a
    def get_opt_voxels_idx(self, name): return rows[name]
    def get_opt_voxels_volume_cc(self, name): return cov[name] * cc
    def get_fraction_of_vol_in_calc_box(self, name): return 1.0

class Criteria:              # PortPy's ClinicalCriteria interface
    dvh_table = pd.DataFrame([{"structure_name": str(n), "dose_gy": float(d), "volume_perc": float(v),
                               "dvh_type": "constraint", "dvh_method": "cvar", "bound_type": "upper"}
                              for n, d, v in zip(f["cap_regions"], f["cap_limit_gy"], f["cap_volume_perc"])])
    def get_num_of_fractions(self): return fx
    def get_prescription(self): return rx
    def get_criteria(self): return []
    def check_criterion_exists(self, criterion, return_ind=False): return (False, None) if return_ind else False

class Plan:
    structures, inf_matrix, clinical_criteria = Structures(), InfluenceMatrix(), Criteria()

t0 = time.perf_counter()
opt = Optimization(Plan(), opt_params={"objective_functions": [
    {"type": "quadratic-underdose", "structure_name": str(f["target"]), "dose_gy": rx, "weight": 1.0}],
    "constraints": []})
with contextlib.redirect_stdout(io.StringIO()):
    opt.create_cvxpy_problem()
x = opt.vars["x"]
for n, lim in zip(f["bound_regions"], [f[f"bound_{k}"] for k in range(len(f["bound_regions"]))]):
    opt.add_constraints([a[rows[str(n)], :] @ x <= lim / fx])
build_s = time.perf_counter() - t0
t0 = time.perf_counter()
try:
    with contextlib.redirect_stdout(io.StringIO()):
        sol, prob = opt.solve(return_cvxpy_prob=True, solver=solver)
    status, value = prob.status, prob.value
except cp.error.SolverError as exc:
    status, value = "solver_error: " + str(exc).splitlines()[0], None
solve_s = time.perf_counter() - t0
w = x.value
np.save(sys.argv[3], np.zeros(0) if w is None else np.maximum(np.asarray(w), 0.0))
print(json.dumps({"status": status, "build_s": build_s, "solve_s": solve_s,
                  "objective_per_fraction": None if value is None else float(value)}))
"""


def write_problem(path: Path, spec) -> None:
    """The common problem as plain arrays for the PortPy subprocess."""
    import scipy.sparse as sp

    a = sp.csr_matrix(spec.influence_gy, dtype=np.float64)
    names = list(spec.regions)
    arrays = {"a_data": a.data, "a_indices": a.indices, "a_indptr": a.indptr, "a_shape": np.asarray(a.shape),
              "fractions": spec.fractions, "prescription_gy": spec.prescription_gy,
              "voxel_cc": spec.voxel_volume_cc, "region_names": np.asarray(names), "target": spec.target,
              "bound_regions": np.asarray([b.region for b in spec.max_bounds]),
              "cap_regions": np.asarray([c.region for c in spec.volume_caps]),
              "cap_limit_gy": np.asarray([float(c.limit_gy[0]) for c in spec.volume_caps]),
              "cap_volume_perc": np.asarray([100.0 * c.volume_cc / float(spec.regions[c.region].coverage.sum()
                                                                        * spec.voxel_volume_cc)
                                             for c in spec.volume_caps])}
    for k, n in enumerate(names):
        arrays[f"rows_{k}"] = spec.regions[n].rows
        arrays[f"cov_{k}"] = spec.regions[n].coverage
    for k, b in enumerate(spec.max_bounds):
        arrays[f"bound_{k}"] = b.limit_gy
    np.savez(path, **arrays)


def run_portpy(spec, solver: str, python: str) -> dict:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        prob, wfile = Path(tmp) / "problem.npz", Path(tmp) / "weights.npy"
        write_problem(prob, spec)
        proc = subprocess.run([python, "-c", PORTPY_SCRIPT, str(prob), solver, str(wfile)], capture_output=True,
                              text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if proc.returncode != 0:
            return {"formulation": "portpy", "status": "failed: " + proc.stderr.strip().splitlines()[-1],
                    "build_s": float("nan"), "solve_s": float("nan")}
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        w = np.load(wfile)
    fx = spec.fractions
    out = {"formulation": "portpy", "status": r["status"], "build_s": round(r["build_s"], 2),
           "solve_s": round(r["solve_s"], 2),
           "objective": None if r["objective_per_fraction"] is None else r["objective_per_fraction"] * fx * fx}
    if w.size:
        out.update(_solution_figures(spec, np.asarray(spec.influence_gy @ w).ravel() * fx))
    return out


def run_ours(spec, solver: str, truncation: float) -> dict:
    """Our solve_fmo (row generation; objective rows truncated at ``truncation`` with correction)."""
    from optimizer.fmo import FmoOptions, solve_fmo

    opts = FmoOptions(solver=solver, underdose="quadratic", coverage_headroom_gy=0.0, falloff_weight=0.0,
                      fluence_weight=0.0, bound_backoff_gy=0.0, objective_truncation=truncation)
    res = solve_fmo(spec, opts)
    out = {"formulation": f"reirrad (truncation {truncation:g})", "status": res.status,
           "build_s": round(res.build_s, 2), "solve_s": round(res.solve_s, 2), "rounds": res.rounds,
           "objective": res.objective}
    if res.dose_gy is not None:
        out.update(_solution_figures(spec, res.dose_gy))
    return out


def _solution_figures(spec, dose_gy: np.ndarray) -> dict:
    tgt = spec.regions[spec.target]
    d = dose_gy[tgt.rows]
    under = np.maximum(spec.prescription_gy - d, 0.0)
    excess = max(float((dose_gy[spec.regions[b.region].rows] - b.limit_gy).max()) for b in spec.max_bounds)
    return {"objective_recomputed": float((under ** 2).mean()),
            "v24gy_percent": 100.0 * float((d >= spec.prescription_gy * (1 - 1e-9)).mean()),
            "max_bound_excess_gy": excess}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantom", default="t4t5_esophageal")
    ap.add_argument("--coarse", action="store_true", help="4 mm CT, 5 mm dose grid, 10 mm beamlets")
    ap.add_argument("--solver", default="CLARABEL")
    ap.add_argument("--portpy-python", default="/tmp/ppvenv312/bin/python",
                    help="a Python >= 3.12 with portpy 1.2.0 installed")
    args = ap.parse_args()
    from constraints.protocol import load_protocol
    from optimizer.cli.phantom_case import case_from_phantom
    from optimizer.fmo_strategies import build_spec

    protocol = load_protocol("koide2024")
    fcase = case_from_phantom(args.phantom, protocol, **(COARSE if args.coarse else {}))
    spec = common_spec(build_spec(fcase, protocol, "exact"))
    a = spec.influence_gy
    n_rows = sum(r.rows.size for r in spec.regions.values())
    head = {"phantom": args.phantom, "coarse": args.coarse, "solver": args.solver, "voxels": a.shape[0],
            "beamlets": a.shape[1], "nnz": int(a.nnz), "problem_rows": n_rows,
            "max_bounds": [b.label for b in spec.max_bounds], "cvar_caps": [c.label for c in spec.volume_caps]}
    print(json.dumps(head), flush=True)
    results = [run_ours(spec, args.solver, 0.01), run_ours(spec, args.solver, 0.0),
               run_portpy(spec, args.solver, args.portpy_python)]
    for r in results:
        print(json.dumps(r), flush=True)
    print(f"\n{'formulation':26s} {'status':10s} {'build s':>8s} {'solve s':>8s} {'objective':>12s} "
          f"{'on full A':>10s} {'V24Gy %':>8s} {'bound excess Gy':>16s}")
    for r in results:
        obj = "-" if r.get("objective") is None else f"{r['objective']:.5g}"
        v = "-" if "v24gy_percent" not in r else f"{r['v24gy_percent']:.1f}"
        e = "-" if "max_bound_excess_gy" not in r else f"{r['max_bound_excess_gy']:.2e}"
        full = "-" if "objective_recomputed" not in r else f"{r['objective_recomputed']:.5g}"
        print(f"{r['formulation']:26s} {r['status']:10s} {r['build_s']:8.2f} {r['solve_s']:8.2f} {obj:>12s} "
              f"{full:>10s} {v:>8s} {e:>16s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
