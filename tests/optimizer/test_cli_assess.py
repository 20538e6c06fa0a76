"""``reirrad assess`` on DICOM exports of a mock patient versus the in-TPS assessment."""
import json
import os
import sys

import pytest

import mock_tps
from optimizer.cli.main import main

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock_tps"))


COARSE = {"grid_mm": 4.0, "dose_grid_mm": 5.0, "bixel_mm": 10.0}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The coarse T4-T5 phantom with its SBRT-only plan: in-TPS assessment, then DICOM export."""
    pytest.importorskip("pyRadPlan")
    from mock_tps.dicom_export import export_patient
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    out = tmp_path_factory.mktemp("assess")
    mock_tps.load_phantom("t4t5_esophageal", initial_plan="sbrt_only", **COARSE)
    try:
        import connect
        _, rec = run_assessment(connect, PluginConfig(output_dir=str(out / "records")))
        files = export_patient(out / "export")
    finally:
        mock_tps.unload()
    return out, files, rec


def test_assess_dicom_matches_in_tps_assessment(exported, capsys):
    """Every constraint value, the near-max of the cord PRV included, within the dose quantization.

    The phantom's ROIs are contours and the mock's coverage is voxelized from them
    (mock_tps._contours), so the re-imported RTSTRUCT gives the same coverage; what
    remains is the RTDOSE quantization (DoseGridScaling) of the plan and prior doses.
    """
    out, files, tps = exported
    code = main(["assess", "--rtstruct", str(files.rtstruct), "--plan-dose", str(files.plan_dose),
                 "--plan", str(files.rtplan), "--ct", str(files.ct_dir),
                 "--prior", f"{files.priors[0][0]}:{files.priors[0][1]}", "--out", str(out / "cli"), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and os.path.exists(d["report"]) and os.path.exists(d["record"])
    assert d["coverage_goals_met"] is tps["evaluation"]["coverage_goals_met"] and isinstance(d["all_pass"], bool)
    assert len(d["rtdose_files"]) >= 4 and all(os.path.exists(p) for p in d["rtdose_files"])
    ref = {(c["roi"], c["metric"], c["domain"]): c["value"] for c in tps["evaluation"]["constraints"]}
    got = {(c["roi"], c["metric"], c["domain"]): c["value"] for c in d["constraints"]}
    assert set(got) == set(ref) and len(got) >= 8
    assert ("SpinalCord_PRV", "D0.035cc", "sbrt_physical") in got
    step_gy = files.dose_scaling_gy
    for key, value in got.items():
        # a BED changes by up to ~5 Gy per Gy of physical dose here: 10 DoseGridScaling steps
        assert value == pytest.approx(ref[key], abs=10 * step_gy + 1e-6), key
    passes = {(c["roi"], c["metric"], c["domain"]): c["pass"] for c in d["constraints"]}
    assert passes == {(c["roi"], c["metric"], c["domain"]): c["pass"] for c in tps["evaluation"]["constraints"]}


@pytest.mark.parametrize("argv, match", [
    (["assess", "--rtstruct", "nope.dcm", "--plan-dose", "x", "--out", "o"], "--rtstruct 'nope.dcm' does not exist"),
    (["assess", "--rtstruct", __file__, "--plan-dose", __file__, "--prior", "rd.dcm", "--out", "o"],
     "must look like RD_PRIOR.dcm:FRACTIONS"),
    (["assess", "--rtstruct", __file__, "--plan-dose", __file__, "--registration", "1,2,3", "--out", "o"],
     "needs 16 numbers"),
    (["assess", "--rtstruct", __file__, "--plan-dose", __file__, "--out", "o"], "is not"),
])
def test_bad_arguments(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
