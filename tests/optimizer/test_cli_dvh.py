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
