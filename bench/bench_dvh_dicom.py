"""Bench: ``reirrad dvh`` over every ROI of dicompyler-core's example, against dicompyler-core 0.5.6.

Run: ``python bench/bench_dvh_dicom.py``.  Needs ``dicompyler_example`` in ``$REIRRAD_SHARED_DATA``
(default ``<repo>/../shared/data``).
dicompyler-core runs in its own venv (it needs pydicom < 3)::

    python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 "pydicom<3"

Both sides are timed in-process after their imports (module import time is printed
apart): ours = ``dvh_report`` (reading the files with the mock's DICOM readers,
voxelizing each ROI on its sub-voxel grid and the sub-voxel DVH of
:mod:`constraints.dvh_subvoxel`, all ROIs and metrics), dicompyler-core =
``dvhcalc.get_dvh`` for every structure (its default: dose-grid resolution, no
interpolation).  Wall-clock and CPU seconds (``time.process_time``) are both
printed: on a shared machine the CPU ratio is the steadier one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REIRRAD_SHARED_DATA") or ROOT.parent / "shared" / "data") / "dicompyler_example"
VENV_PY = Path("/tmp/dcvenv/bin/python")

DC_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from dicompylercore import dicomparser, dvhcalc
t1 = time.perf_counter()
c1 = time.process_time()
rtss, rtdose = sys.argv[1], sys.argv[2]
out = {}
for k, s in dicomparser.DicomParser(rtss).GetStructures().items():
    d = dvhcalc.get_dvh(rtss, rtdose, k)
    out[s["name"]] = {"volume_cc": float(d.volume), "mean_gy": float(d.mean), "max_gy": float(d.max)}
t2 = time.perf_counter()
c2 = time.process_time()
print(json.dumps({"import_s": t1 - t0, "dvh_s": t2 - t1, "dvh_cpu_s": c2 - c1, "rois": out}))
"""


def run_ours(repeat: int) -> tuple:
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    import pydicom  # noqa: F401

    from optimizer.cli.dvh_cmd import dvh_report
    t_import = time.perf_counter() - t0
    args = argparse.Namespace(rtstruct=str(DATA / "rtss.dcm"), dose=str(DATA / "rtdose.dcm"), ct=None, roi=None,
                              d_percent=[99.0, 95.0, 5.0, 1.0], d_cc=[0.03, 0.035, 1.0], fractions=None,
                              alpha_beta=None, json=True)
    times, cpus = [], []
    rep = None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        rep = dvh_report(args)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return t_import, min(times), min(cpus), sorted(times)[len(times) // 2], rep


def main() -> int:
    if not DATA.is_dir():
        print(f"dicompyler example data not found at {DATA}")
        return 1
    repeat = 5
    t_import, t_ours, c_ours, t_median, rep = run_ours(repeat)
    print(f"reirrad dvh (sub-voxel DVH): {len(rep['rois'])} ROIs in {t_ours:.3f} s wall, {c_ours:.3f} s CPU "
          f"(best of {repeat}; median {t_median:.3f} s wall; module imports {t_import:.2f} s)")
    if not VENV_PY.exists():
        print("dicompyler-core venv not found; make it with:\n"
              "  python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 \"pydicom<3\"")
        return 0
    res = subprocess.run([str(VENV_PY), "-c", DC_SCRIPT, str(DATA / "rtss.dcm"), str(DATA / "rtdose.dcm")],
                         capture_output=True, text=True, check=True)
    dc = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"dicompyler-core 0.5.6: {len(dc['rois'])} ROIs in {dc['dvh_s']:.3f} s wall, {dc['dvh_cpu_s']:.3f} s CPU "
          f"(module imports {dc['import_s']:.2f} s)")
    print(f"speed ratio (dicompyler-core / reirrad): {dc['dvh_s'] / t_ours:.1f}x wall, "
          f"{dc['dvh_cpu_s'] / c_ours:.1f}x CPU, {dc['dvh_s'] / t_median:.1f}x wall against our median "
          "(dicompyler-core runs once)")
    nan = float("nan")
    print(f"{'ROI':16s} {'ours cc':>10s} {'dc cc':>10s} {'ours mean':>10s} {'dc mean':>10s} {'ours max':>9s} "
          f"{'dc max':>9s} {'ours D0.035cc':>14s}")
    for r in rep["rois"]:
        d = dc["rois"].get(r["name"], {})
        d035 = (r.get("d_cc") or {}).get("0.035")
        print(f"{r['name']:16s} {r.get('volume_cc', nan):10.2f} {d.get('volume_cc', nan):10.2f} "
              f"{r.get('mean_gy', nan):10.3f} {d.get('mean_gy', nan):10.3f} {r.get('max_gy', nan):9.3f} "
              f"{d.get('max_gy', nan):9.3f} {d035 if d035 is not None else nan:14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
