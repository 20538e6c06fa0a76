"""``reirrad dvh``: JSON and table output, BED/EQD2, empty ROIs, bad arguments (exit 2)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mock_tps"))

from _dicom_builders import PATIENT, Shape, write_case  # noqa: E402

from constraints.lq import bed, eqd2  # noqa: E402
from mock_tps import _dicom_write as w  # noqa: E402
from optimizer.cli.main import main  # noqa: E402

CYL = Shape("cylinder", (0.0, 0.0, 0.0), 10.0, 20.0)


@pytest.fixture
def files(tmp_path):
    """Cylinder r 10 mm, h 20 mm (6.28 cc) in a uniform 20 Gy dose, plus an empty ROI and one outside."""
    rs, rd = write_case(tmp_path, CYL, grid_mm=2.0, axis=0, gradient_gy_per_mm=0.0, base_gy=20.0)
    sq = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float) + 500.0
    rs = w.write_rtstruct(tmp_path / "RS2.dcm", [("Cyl", "Organ", CYL.planes(2.0)), ("Empty", "Organ", []),
                                                 ("Far", "Ptv", [(0.0, [sq]), (2.0, [sq])])],
                          frame_uid="1.2.3.4.5.6", study_uid="1.2", patient=PATIENT)
    return rs, rd


def _run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_physical(files, capsys):
    rs, rd = files
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--json"])
    assert code == 0
    rep = json.loads(out)
    assert rep["dose_file"] == str(rd)
    rois = {r["name"]: r for r in rep["rois"]}
    cyl = rois["Cyl"]
    assert cyl["volume_cc"] == pytest.approx(np.pi * 100 * 20 / 1000, rel=0.01)
    assert cyl["mean_gy"] == pytest.approx(20.0, abs=1e-6) and cyl["max_gy"] == pytest.approx(20.0, abs=1e-6)
    assert set(cyl["d_percent"]) == {"99", "95", "5", "1"} and set(cyl["d_cc"]) == {"0.03", "0.035", "1"}
    assert rois["Empty"]["reason"].startswith("no contours")
    assert rois["Far"]["reason"] == "outside the dose grid"


def test_bed_and_eqd2(files, capsys):
    rs, rd = files
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--roi", "Cyl",
                                 "--fractions", "2", "--alpha-beta", "3", "--json"])
    assert code == 0
    cyl = json.loads(out)["rois"][0]
    # 20 Gy in 2 fx, α/β 3: BED = 20 (1 + 10/3) = 86.67 Gy; EQD2 = 86.67 / (1 + 2/3) = 52 Gy
    assert cyl["mean_gy"] == pytest.approx(float(bed(20.0, 2, 3.0)), rel=1e-9) == pytest.approx(86.6667, rel=1e-4)
    assert cyl["eqd2"]["max_gy"] == pytest.approx(float(eqd2(20.0, 2, 3.0))) == pytest.approx(52.0)


def test_table(files, capsys):
    rs, rd = files
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--d-percent", "50",
                                 "--d-cc", "0.5"])
    assert code == 0
    assert "D50%" in out and "D0.5cc" in out and "Empty: no contours" in out


@pytest.mark.parametrize("extra, message", [
    (["--roi", "Nope"], r"--roi \['Nope'\]: not in RTSTRUCT"),
    (["--alpha-beta", "3"], "--alpha-beta needs --fractions"),
    (["--d-percent", "120"], r"--d-percent 120 must be in \(0, 100\]"),
])
def test_bad_arguments_one_line_exit_2(files, capsys, extra, message):
    import re
    rs, rd = files
    code, out, err = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd)] + extra)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err


def test_bad_files_exit_2(files, tmp_path, capsys):
    rs, rd = files
    code, _, err = _run(capsys, ["dvh", "--rtstruct", str(tmp_path / "missing.dcm"), "--dose", str(rd)])
    assert code == 2 and "missing.dcm" in err and "no such file" in err
    code, _, err = _run(capsys, ["dvh", "--rtstruct", str(rd), "--dose", str(rd)])
    assert code == 2 and err.count("\n") == 1 and "has Modality 'RTDOSE'; expected 'RTSTRUCT'" in err


def test_no_evaluable_roi_is_one_line_and_exit_2(tmp_path, capsys):
    # an RTSTRUCT whose only ROIs have no contours: nothing could be evaluated, so no table and exit 2
    _, rd = write_case(tmp_path, CYL, grid_mm=2.0, axis=0, gradient_gy_per_mm=0.0, base_gy=20.0)
    rs = w.write_rtstruct(tmp_path / "RS_empty.dcm", [("Empty", "Organ", []), ("Empty2", "Organ", [])],
                          frame_uid="1.2.3.4.5.6", study_uid="1.2", patient=PATIENT)
    code, out, err = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd)])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no ROI of RTSTRUCT" in err and "'Empty' no contours" in err and "'Empty2' no contours" in err


def test_only_unevaluable_rois_chosen_is_exit_2(files, capsys):
    # the file has a good ROI, but the ones asked for cannot be evaluated: no contours, outside the dose grid
    rs, rd = files
    code, out, err = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--roi", "Empty", "Far"])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "'Empty' no contours" in err and "'Far' outside the dose grid" in err


def test_help_states_the_rule(capsys):
    assert main(["dvh", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Sub-voxel rule" in out and "differs from the assessment" in out


def test_json_keys_exactly(files, capsys):
    rs, rd = files
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--json"])
    rep = json.loads(out)
    assert set(rep) == {"dose_file", "rtstruct", "quantity", "fractions", "fractions_source", "dose_summation", "rois"}
    cyl = rep["rois"][0]
    assert set(cyl) == {"name", "volume_cc", "roi_volume_cc", "min_gy", "max_gy", "mean_gy", "d_percent", "d_cc"}
    assert [r["name"] for r in rep["rois"]] == ["Cyl", "Empty", "Far"]
    assert set(rep["rois"][2]) == {"name", "roi_volume_cc", "reason"}
    assert rep["rois"][2]["roi_volume_cc"] == pytest.approx(4 * 4 * 4 / 1000)     # 2 planes × 2 mm slabs


def test_d_cc_in_a_gradient_is_not_rounded_to_a_voxel(tmp_path, capsys):
    """Cylinder r 10 mm, h 20 mm, dose 20 Gy + 1 Gy/mm along z on a 2 mm grid: the top 0.035 cc is a
    disc π·10² mm² × 0.111 mm, so D0.035cc = 30 − 35/(100 π) = 29.889 Gy (a voxel-centre rule gives
    29 Gy, the centre of the top slice); D5% = 30 − 1 = 29 Gy; mean 20 Gy."""
    rs, rd = write_case(tmp_path, CYL, grid_mm=2.0, axis=2, gradient_gy_per_mm=1.0, base_gy=20.0)
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--d-percent", "5",
                                 "--d-cc", "0.035", "--json"])
    r = json.loads(out)["rois"][0]
    assert r["d_cc"]["0.035"] == pytest.approx(30.0 - 35.0 / (100 * np.pi), abs=0.03)
    assert r["d_percent"]["5"] == pytest.approx(29.0, abs=0.03)
    assert r["mean_gy"] == pytest.approx(20.0, abs=0.01)
    assert r["max_gy"] == pytest.approx(30.0, abs=0.3) and r["min_gy"] == pytest.approx(10.0, abs=0.3)


def test_bed_mean_over_the_spread(tmp_path, capsys):
    """Same cylinder, BED in 2 fractions at α/β 3: the dose is uniform on [10, 30] Gy over the
    volume, so mean BED = E[D] + E[D²]/(n α/β) = 20 + (10² + 10·30 + 30²)/3 / 6 = 92.22 Gy; D_V of
    the BED is the BED of D_V (a monotone map)."""
    rs, rd = write_case(tmp_path, CYL, grid_mm=2.0, axis=2, gradient_gy_per_mm=1.0, base_gy=20.0)
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--d-cc", "0.035",
                                 "--fractions", "2", "--alpha-beta", "3", "--json"])
    r = json.loads(out)["rois"][0]
    assert r["mean_gy"] == pytest.approx(20 + (100 + 300 + 900) / 3 / 6, rel=2e-3)
    d035 = 30.0 - 35.0 / (100 * np.pi)
    assert r["d_cc"]["0.035"] == pytest.approx(float(bed(d035, 2, 3.0)), abs=0.15)
    assert r["eqd2"]["d_cc"]["0.035"] == pytest.approx(float(eqd2(d035, 2, 3.0)), abs=0.1)


def test_roi_partly_outside_the_dose_grid_warns(tmp_path, capsys):
    """A 20 × 20 mm square prism, 10 planes 2 mm apart (8 cc), half of it beyond the dose grid's
    edge in x: volume_cc is the part inside, roi_volume_cc the whole contour stack."""
    rs, rd = write_case(tmp_path, CYL, grid_mm=2.0, axis=0, gradient_gy_per_mm=0.0, base_gy=20.0)
    import pydicom
    ds = pydicom.dcmread(str(rd))
    x_edge = float(ds.ImagePositionPatient[0]) - 1.0 + 2.0 * int(ds.Columns)         # outer edge of the grid
    sq = np.array([[-10, -10], [10, -10], [10, 10], [-10, 10]], float) + [x_edge, 0.0]
    planes = [(z, [sq]) for z in np.arange(-9.0, 10.0, 2.0)]
    rs2 = w.write_rtstruct(tmp_path / "RS3.dcm", [("Half", "Organ", planes)], frame_uid="1.2.3.4.5.6",
                           study_uid="1.2", patient=PATIENT)
    code, out, _ = _run(capsys, ["dvh", "--rtstruct", str(rs2), "--dose", str(rd), "--json"])
    r = json.loads(out)["rois"][0]
    assert r["roi_volume_cc"] == pytest.approx(8.0, rel=1e-9)
    assert r["volume_cc"] == pytest.approx(4.0, rel=0.01)
    assert r["warning"].startswith("50.0 % of the ROI lies outside the dose grid")
    assert r["mean_gy"] == pytest.approx(20.0, abs=1e-5)


def test_ct_gives_the_same_metrics_and_a_foreign_frame_is_refused(files, tmp_path, capsys):
    """The CT only names the planning frame (the ROIs are voxelized on the dose grid's sub-grid)."""
    rs, rd = files
    ct = tmp_path / "CT"
    w.write_ct_slices(ct, np.zeros((16, 20, 20)), (-19.0, -19.0, -15.0), (2.0, 2.0, 2.0), frame_uid="1.2.3.4.5.6",
                      study_uid="1.2", patient=PATIENT)
    _, plain, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--roi", "Cyl", "--json"])
    code, with_ct, _ = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--roi", "Cyl", "--ct", str(ct),
                                     "--json"])
    assert code == 0 and json.loads(with_ct)["rois"] == json.loads(plain)["rois"]
    other = tmp_path / "CT2"
    w.write_ct_slices(other, np.zeros((4, 4, 4)), (0.0, 0.0, 0.0), (2.0, 2.0, 2.0), frame_uid="9.9.9",
                      study_uid="1.2", patient=PATIENT)
    code, _, err = _run(capsys, ["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--ct", str(other)])
    assert code == 2 and "export the structure set drawn on this CT" in err


#: Modules ``reirrad dvh`` has no use for: protocols and evaluation, the optimizer, plotting and
#: solvers, pydicom's downloader extras (``import_pydicom_without_extras``) and numpy's masked
#: arrays (which ``np.unique`` imports).
_NOT_IMPORTED_BY_DVH = ("constraints.evaluation", "constraints.protocol", "constraints.eligibility",
                        "optimizer.limit_map", "optimizer.fmo", "tps_scripts.config", "scipy", "cvxpy",
                        "matplotlib", "requests", "tqdm", "urllib.request", "http.client", "importlib.metadata",
                        "pydicom.examples", "numpy.ma")


def _fresh_process_env():
    """(repository root, environment) for a fresh interpreter that imports this tree."""
    import os
    root = Path(__file__).resolve().parents[2]
    return root, dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))


def _last_json_line_of_fresh_python(code: str):
    """Run ``code`` in a fresh interpreter on this tree; its last stdout line, parsed as JSON."""
    import subprocess
    root, env = _fresh_process_env()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(root),
                         timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_dvh_process_imports_only_what_it_uses(files):
    """A fresh ``reirrad dvh`` process imports none of _NOT_IMPORTED_BY_DVH (the whole-process speed
    of bench/bench_dvh_process.py), and leaves requests, urllib.request, importlib.metadata and
    pydicom.examples importable afterwards, pydicom's version the one importlib.metadata reads."""
    rs, rd = files
    code = ("import io, json, sys, contextlib\n"
            "from optimizer.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['dvh', '--rtstruct', {str(rs)!r}, '--dose', {str(rd)!r}, '--json'])\n"
            f"loaded = [m for m in {_NOT_IMPORTED_BY_DVH!r} if m in sys.modules]\n"
            "hidden = [m for m in ('requests', 'tqdm') if sys.modules.get(m, 0) is None]\n"
            "import urllib.request, importlib.metadata, pydicom.examples\n"
            "real = (callable(getattr(urllib.request, 'urlopen', None)) and callable(pydicom.examples.get_path)\n"
            "        and pydicom.__version__ == importlib.metadata.version('pydicom'))\n"
            "print(json.dumps([rc, loaded, hidden, real]))\n")
    rc, loaded, hidden, real = _last_json_line_of_fresh_python(code)
    assert rc == 0
    assert loaded == []
    assert hidden == []            # no None placeholders left in sys.modules
    assert real                    # the real modules import afterwards, not the placeholders


def test_import_pydicom_without_extras_is_a_no_op_once_imported(monkeypatch):
    import pydicom  # noqa: F401 - already imported by the fixture-less tests above or here

    from optimizer.cli.dvh_imports import import_pydicom_without_extras
    monkeypatch.delitem(sys.modules, "requests", raising=False)
    import_pydicom_without_extras()
    assert "requests" not in sys.modules or sys.modules["requests"] is not None


def test_installed_version_reads_the_dist_info_beside_the_package(tmp_path, monkeypatch):
    """The placeholder's ``version`` reads ``Version:`` of the one ``<name>-*.dist-info`` beside the
    package; with none, two, or another name in it, it asks the real importlib.metadata."""
    import importlib.metadata
    import types

    from optimizer.cli.dvh_imports import _dist_info_version, _installed_version
    for name in ("pydicom", "numpy"):
        __import__(name)
        assert _installed_version(name) == importlib.metadata.version(name)
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    module = types.ModuleType("fakepkg")
    module.__file__ = str(pkg / "__init__.py")
    monkeypatch.setitem(sys.modules, "fakepkg", module)
    assert _dist_info_version("fakepkg") is None                     # no dist-info
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        _installed_version("fakepkg")                                # asked the real importlib.metadata
    info = tmp_path / "fakepkg-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.2.3\n\nVersion: 9\n")
    assert _dist_info_version("fakepkg") == "1.2.3"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other\nVersion: 1.2.3\n")
    assert _dist_info_version("fakepkg") is None
    (info / "METADATA").write_text("Name: fakepkg\nVersion: 1.2.3\n")
    (tmp_path / "fakepkg-1.2.4.dist-info").mkdir()
    assert _dist_info_version("fakepkg") is None                     # two: which one is installed?


def test_installed_version_falls_back_to_one_real_importlib_metadata():
    """Without a dist-info to read, pydicom's version comes from the real importlib.metadata,
    which stays the one module of that name (no placeholder left, no second copy)."""
    code = ("import sys, importlib, json\n"
            "import optimizer.cli.dvh_imports as di\n"
            "di._dist_info_version = lambda name: None\n"
            "di.import_pydicom_without_extras()\n"
            "import pydicom, importlib.metadata as m\n"
            "print(json.dumps([pydicom.__version__ == m.version('pydicom'), importlib.metadata is m,\n"
            "                  m.version is not di._installed_version]))\n")
    assert _last_json_line_of_fresh_python(code) == [True, True, True]


def test_dvh_process_output_and_status_survive_the_fast_exit(files):
    """``python -m optimizer.cli.main dvh`` ends without the interpreter's teardown
    (``FAST_EXIT_COMMANDS``): its piped JSON is complete and equals the in-process report,
    and an error still exits 2 with its one line on stderr."""
    import subprocess

    rs, rd = files
    root, env = _fresh_process_env()
    env.pop("PYTHONUNBUFFERED", None)                  # stdout block-buffered, as in a pipe by default
    cmd = [sys.executable, "-m", "optimizer.cli.main", "dvh", "--rtstruct", str(rs), "--dose", str(rd)]
    res = subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env, cwd=str(root), timeout=300)
    assert res.returncode == 0, res.stderr
    from optimizer.cli.dvh_cmd import dvh_report
    from optimizer.cli.main import build_parser
    expected = dvh_report(build_parser().parse_args(["dvh", "--rtstruct", str(rs), "--dose", str(rd), "--json"]))
    assert json.loads(res.stdout) == json.loads(json.dumps(expected))
    bad = subprocess.run(cmd + ["--d-cc", "-1"], capture_output=True, text=True, env=env, cwd=str(root), timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["reirrad: error: --d-cc -1 must be > 0 cm³"]


def test_keep_freed_memory_sets_glibc_thresholds():
    """On glibc both mallopt calls succeed (the short dvh process keeps freed blocks for reuse);
    elsewhere the function changes nothing and says so."""
    import platform

    from optimizer.cli.dvh_process import keep_freed_memory
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert keep_freed_memory() is True
