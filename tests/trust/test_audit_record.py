"""Audit records: every assessment and optimization writes inputs (TPS object identities
and dose digests, or input-file SHA-256), the protocol's name, version and hash, α/β and
recovery used, the software version and the results — without the patient's name or ID
unless asked — and two runs on the same inputs give identical records apart from time
(``created`` and the time-stamped folder name)."""
from __future__ import annotations

import json
import os

import pytest

import mock_tps
from _mock_synthetic import make_phantom_data
from constraints.protocol import load_protocol

PATIENT_NAME, PATIENT_ID = make_phantom_data().patient_name, make_phantom_data().patient_id


def _common_checks(rec):
    p = load_protocol("koide2024")
    assert rec["protocol"] == {"name": p.name, "version": p.version, "sha256": p.sha256,
                               "alpha_beta_gy": {k: o.alpha_beta_gy for k, o in p.organs.items()}}
    assert rec["software_version"]
    assert all("recovery" in pr and "fractions" in pr for pr in rec["inputs"]["priors"])
    assert rec["evaluation"]["constraints"]
    text = json.dumps(rec)
    assert PATIENT_NAME not in text and PATIENT_ID not in text
    assert "patient_name" not in rec["inputs"]["tps_objects"] and "patient_id" not in rec["inputs"]["tps_objects"]


def _strip(rec):
    rec = dict(rec)
    rec.pop("created")
    return rec


def test_assessment_records_identical_apart_from_time(tmp_path):
    from mock_tps import connect
    from tps_scripts.assess import run_assessment
    from tps_scripts.config import PluginConfig
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    try:
        cfg = PluginConfig(output_dir=str(tmp_path / "records"))
        pa, a = run_assessment(api=connect, config=cfg)
        pb, b = run_assessment(api=connect, config=cfg)
    finally:
        mock_tps.unload()
    assert pa != pb
    ja, jb = json.load(open(pa)), json.load(open(pb))
    _common_checks(ja)
    assert ja["inputs"]["sbrt"]["dose_digest"] and ja["inputs"]["priors"][0]["dose_digest"]
    assert _strip(ja) == _strip(jb)


def test_optimization_records_identical_apart_from_time(tmp_path):
    from mock_tps import connect
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import TuningSettings, run_optimization
    recs = []
    for k in range(2):          # the synthetic patient, reloaded: the same inputs
        mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
        try:
            path, _ = run_optimization(api=connect, config=PluginConfig(output_dir=str(tmp_path / f"r{k}")),
                                       settings=TuningSettings(max_iterations=30))
        finally:
            mock_tps.unload()
        recs.append(json.load(open(path)))
    a, b = recs
    _common_checks(a)
    assert a["kind"] == "optimization" and a["tuning_log"] and a["zones"]
    assert _strip(a) == _strip(b)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("pydicom")
    from mock_tps.dicom_export import export_patient
    out = tmp_path_factory.mktemp("audit_dicom")
    mock_tps.load_patient_data(make_phantom_data(), initial_plan="sbrt_only")
    try:
        files = export_patient(out / "export")
    finally:
        mock_tps.unload()
    return out, files


def test_reirrad_assess_on_dicom_records_identical_and_hash_the_input_files(exported, capsys):
    from optimizer.cli.main import main
    out, files = exported
    recs = []
    for k in range(2):
        argv = ["assess", "--rtstruct", str(files.rtstruct), "--plan-dose", str(files.plan_dose),
                "--plan", str(files.rtplan), "--ct", str(files.ct_dir),
                "--prior", f"{files.priors[0][0]}:{files.priors[0][1]}", "--out", str(out / f"cli{k}"), "--json"]
        assert main(argv) == 0
        d = json.loads(capsys.readouterr().out)
        recs.append(json.load(open(d["record"])))
        mock_tps.unload()
    a, b = recs
    _common_checks(a)
    f = a["inputs"]["files"]
    import hashlib
    assert f["rtstruct"]["sha256"] == hashlib.sha256(open(files.rtstruct, "rb").read()).hexdigest()
    assert f["plan_dose"]["sha256"] and f["rtplan"]["sha256"] and len(f["priors"]) == 1
    assert f["priors"][0]["sha256"] == hashlib.sha256(open(files.priors[0][0], "rb").read()).hexdigest()
    assert len(f["ct"]["files"]) == len(os.listdir(files.ct_dir))
    assert _strip(a) == _strip(b)
