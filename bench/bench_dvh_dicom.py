"""Bench: ``reirrad dvh`` over every ROI of dicompyler-core's example, against dicompyler-core 0.5.6.

Run: ``python bench/bench_dvh_dicom.py``.  Needs ``<repo>/../shared/data/dicompyler_example``.
dicompyler-core runs in its own venv (it needs pydicom < 3)::

    python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 "pydicom<3"

Both sides are timed in-process after their imports (module import time is printed
apart): ours = ``dvh_report`` (DICOM import into the mock + adapter + compute_dvh
for all ROIs), dicompyler-core = ``dvhcalc.get_dvh`` for every structure.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dicompyler_example"
VENV_PY = Path("/tmp/dcvenv/bin/python")

DC_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from dicompylercore import dicomparser, dvhcalc
t1 = time.perf_counter()
rtss, rtdose = sys.argv[1], sys.argv[2]
out = {}
for k, s in dicomparser.DicomParser(rtss).GetStructures().items():
    d = dvhcalc.get_dvh(rtss, rtdose, k)
    out[s["name"]] = {"volume_cc": float(d.volume), "mean_gy": float(d.mean)}
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "dvh_s": t2 - t1, "rois": out}))
"""


def run_ours(repeat: int) -> tuple:
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    import pydicom  # noqa: F401
    import scipy.ndimage  # noqa: F401

    from optimizer.cli.dvh_cmd import dvh_report
    t_import = time.perf_counter() - t0
    args = argparse.Namespace(rtstruct=str(DATA / "rtss.dcm"), dose=str(DATA / "rtdose.dcm"), ct=None, roi=None,
                              d_percent=[99.0, 95.0, 5.0, 1.0], d_cc=[0.03, 0.035, 1.0], fractions=None,
                              alpha_beta=None, json=True)
    times = []
    rep = None
    for _ in range(repeat):
        t = time.perf_counter()
        rep = dvh_report(args)
        times.append(time.perf_counter() - t)
    return t_import, min(times), rep


def main() -> int:
    if not DATA.is_dir():
        print(f"dicompyler example data not found at {DATA}")
        return 1
    repeat = 3
    t_import, t_ours, rep = run_ours(repeat)
    print(f"reirrad dvh: {len(rep['rois'])} ROIs in {t_ours:.3f} s (best of {repeat}; module imports {t_import:.2f} s)")
    if not VENV_PY.exists():
        print("dicompyler-core venv not found; make it with:\n"
              "  python -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install dicompyler-core==0.5.6 \"pydicom<3\"")
        return 0
    res = subprocess.run([str(VENV_PY), "-c", DC_SCRIPT, str(DATA / "rtss.dcm"), str(DATA / "rtdose.dcm")],
                         capture_output=True, text=True, check=True)
    dc = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"dicompyler-core 0.5.6: {len(dc['rois'])} ROIs in {dc['dvh_s']:.3f} s (module imports {dc['import_s']:.2f} s)")
    print(f"speed ratio (dicompyler-core / reirrad): {dc['dvh_s'] / t_ours:.1f}x")
    print(f"{'ROI':16s} {'ours cc':>10s} {'dc cc':>10s} {'ours mean':>10s} {'dc mean':>10s}")
    for r in rep["rois"]:
        d = dc["rois"].get(r["name"], {})
        print(f"{r['name']:16s} {r.get('volume_cc', float('nan')):10.2f} {d.get('volume_cc', float('nan')):10.2f} "
              f"{r.get('mean_gy', float('nan')):10.3f} {d.get('mean_gy', float('nan')):10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
