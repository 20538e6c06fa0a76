"""``reirrad cohort`` without a cluster: patient-folder rules, tables from records, arguments."""
import csv
import os

import pytest

from constraints.errors import DicomImportError, InputError
from optimizer.cli.cohort.page import headline_counts
from optimizer.cli.cohort.layout import read_patient
from optimizer.cli.cohort.outputs import cohort_rows, quartile_summary, strategy_rows, table3_rows, write_tables
from optimizer.cli.cohort.synthetic import synthetic_specs
from optimizer.cli.cohort.task import TaskOptions, task_key
from optimizer.cli.main import main

pydicom = pytest.importorskip("pydicom")


# --------------------------------------------------------------------------- patient folders

def _dicom(path, modality, uid, description="", plan_uid=None):
    """A header-only DICOM file (what the folder rule reads)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.Modality, ds.SOPInstanceUID, ds.SeriesDescription = modality, uid, description
    if plan_uid:
        ref = Dataset()
        ref.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = Sequence([ref])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def folder(tmp_path):
    p = tmp_path / "P1"
    _dicom(str(p / "CT" / "ct1.dcm"), "CT", "1.2.3.1")
    _dicom(str(p / "RS.dcm"), "RTSTRUCT", "1.2.3.2")
    _dicom(str(p / "RP.dcm"), "RTPLAN", "1.2.3.3")
    _dicom(str(p / "RD.dcm"), "RTDOSE", "1.2.3.4", plan_uid="1.2.3.3")
    _dicom(str(p / "RD_prior_1.dcm"), "RTDOSE", "1.2.3.5", "Physical dose: Prior EBRT 60Gy/30fx")
    _dicom(str(p / "old.dcm"), "RTDOSE", "1.2.3.6", "EBRT 2019")
    (p / "reirrad.toml").write_text('[[prior]]\nname = "old.dcm"\nfractions = 10\nrecovery = 0.25\n'
                                    'date = "2019-05-01"\n')
    return p


def test_folder_rule_sorts_plan_dose_and_priors(folder):
    inp = read_patient(str(folder))
    assert os.path.basename(inp.plan_dose) == "RD.dcm"
    assert inp.ct_dir.endswith("CT") and inp.rtplan.endswith("RP.dcm") and inp.registration is None
    by_file = {os.path.basename(p.path): p for p in inp.priors}
    # a configured prior (by file name) keeps its entry; the other takes the count its description states
    assert (by_file["old.dcm"].name, by_file["old.dcm"].fractions, by_file["old.dcm"].recovery,
            by_file["old.dcm"].date) == ("old.dcm", 10, 0.25, "2019-05-01")
    assert (by_file["RD_prior_1.dcm"].fractions, by_file["RD_prior_1.dcm"].recovery) == (30, 0.0)


def test_prior_without_fraction_count_is_refused(folder):
    (folder / "reirrad.toml").unlink()
    with pytest.raises(DicomImportError, match=r"old.dcm.*fraction count is unknown.*\[\[prior\]\]"):
        read_patient(str(folder))


def test_configured_prior_without_file_is_refused(folder):
    (folder / "reirrad.toml").write_text('[[prior]]\nname = "old.dcm"\nfractions = 10\n'
                                         '[[prior]]\nname = "gone.dcm"\nfractions = 5\n')
    with pytest.raises(InputError, match=r"\['gone.dcm'\] name\(s\) no prior RTDOSE"):
        read_patient(str(folder))


def test_plan_dose_must_reference_the_plan(folder):
    _dicom(str(folder / "RD.dcm"), "RTDOSE", "1.2.3.4", plan_uid="9.9.9")
    with pytest.raises(DicomImportError, match="0 of 3 RTDOSE files reference the RTPLAN"):
        read_patient(str(folder))


def test_corrupt_and_duplicate_files_are_refused(folder):
    (folder / "RS2.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(DicomImportError, match="RS2.dcm' is not a DICOM file"):
        read_patient(str(folder))
    (folder / "RS2.dcm").unlink()
    _dicom(str(folder / "RS2.dcm"), "RTSTRUCT", "1.2.3.9")
    with pytest.raises(DicomImportError, match="holds 2 RTSTRUCT files"):
        read_patient(str(folder))


# --------------------------------------------------------------------------- keys and synthetic specs

def test_task_key_changes_with_inputs_and_options_only():
    a = TaskOptions("koide2024", "p" * 64, "0.1.0", "/out/a")
    assert task_key("c1", a) == task_key("c1", TaskOptions("koide2024", "p" * 64, "0.1.0", "/elsewhere"))
    assert len({task_key("c1", a), task_key("c2", a), task_key("c1", TaskOptions("k", "q" * 64, "0.1.0", "/o")),
                task_key("c1", TaskOptions("koide2024", "p" * 64, "0.2.0", "/o")),
                task_key("c1", TaskOptions("koide2024", "p" * 64, "0.1.0", "/o", ("exact",)))}) == 5


def test_synthetic_specs_are_reproducible_and_cover_the_levels():
    a, b = synthetic_specs(8, 1), synthetic_specs(8, 1)
    assert a == b and a != synthetic_specs(8, 2)
    assert sorted(s.phantom for s in a) == sorted(["c3_cervical", "c7t1_head_neck", "t4t5_esophageal",
                                                   "t8_two_courses"] * 2)
    for s in a:  # a prior grid that misses organs comes with the organ_max policy, never silently
        assert (dict(s.params)["prior_covers_oars"]) == (s.unknown_prior == "refuse")
    with pytest.raises(InputError, match="--synthetic"):
        synthetic_specs(0, 1)


# --------------------------------------------------------------------------- tables

def _record(pid, eso_dmax_bed3, breach, v24=None, strategies=None):
    rows = [{"organ": "esophagus", "roi": "Esophagus", "metric": "Dmax", "domain": "cumulative_bed",
             "alpha_beta_gy": 3.0, "value_gy": eso_dmax_bed3},
            {"organ": "esophagus", "roi": "Esophagus", "metric": "D1cc", "domain": "sbrt_physical",
             "alpha_beta_gy": None, "value_gy": eso_dmax_bed3 / 10.0},
            {"organ": "aorta", "roi": "Aorta", "metric": "Dmax", "domain": "cumulative_bed", "alpha_beta_gy": 3.0,
             "value_gy": 100.0}]
    rec = {"patient": pid, "status": "completed", "error": None, "rows": rows,
           "summary": {"all_pass": not breach, "sbrt_only_pass": True, "cumulative_breach": breach,
                       "cumulative_esophagus_breach": breach, "failed_constraints": [], "ptv_v24gy_percent": v24},
           "priors": [], "timing": {"elapsed_s": 1.0, "pid": 1, "peak_rss_mb": 1.0}}
    if strategies:
        rec["strategies"] = strategies
    return rec


RECORDS = [_record("P3", 210.0, True), _record("P1", 180.0, False), _record("P2", 150.0, False),
           _record("P4", 120.0, False),
           {"patient": "P5", "status": "failed", "error": "DicomImportError: RTSTRUCT 'x' is truncated",
            "error_kind": "input"}]


def test_quartiles_by_hand():
    # numpy linear (type 7): positions (n-1)p = 0.75, 1.5, 2.25 of 120, 150, 180, 210
    # Q1 = 120 + 0.75*30 = 142.5; median = 165; Q3 = 180 + 0.25*30 = 187.5
    assert quartile_summary([210.0, 180.0, 150.0, 120.0]) == {"n": 4, "median": 165.0, "q1": 142.5, "q3": 187.5,
                                                              "max": 210.0}
    assert quartile_summary([]) == {"n": 0, "median": None, "q1": None, "q3": None, "max": None}


def test_table3_layout_over_completed_patients():
    rows = table3_rows(RECORDS)
    assert [(r["organ"], r["dose"], r["quantity"], r["alpha_beta_gy"]) for r in rows] == [
        ("esophagus", "SBRT", "physical", None), ("esophagus", "cumulative", "BED", 3.0),
        ("aorta", "cumulative", "BED", 3.0)]  # esophagus first, as the seed's Table 3
    cum = rows[1]
    assert (cum["n"], cum["Dmax_median"], cum["Dmax_q1"], cum["Dmax_q3"], cum["Dmax_max"]) == (
        4, 165.0, 142.5, 187.5, 210.0)
    assert cum["D1cc_median"] is None and rows[0]["D1cc_max"] == pytest.approx(21.0)
    assert cum["unit"] == "Gy3 BED"


def test_cohort_rows_one_per_value_and_error_rows():
    rows = cohort_rows(RECORDS)
    assert [r["patient"] for r in rows] == ["P1"] * 3 + ["P2"] * 3 + ["P3"] * 3 + ["P4"] * 3 + ["P5"]
    assert rows[-1]["status"] == "failed" and "truncated" in rows[-1]["error"] and "organ" not in rows[-1]


def test_strategy_cost_and_headline():
    st = {"exact": {"v24gy_percent": 71.1, "status": "optimal"}, "zones": {"v24gy_percent": 65.9},
          "sbrt-only": {"v24gy_percent": 72.2, "cumulative_esophagus_pass": False}}
    rows = strategy_rows([_record("P1", 1.0, True, 45.7, st)], ("exact", "zones", "sbrt-only"))
    # cost = V24Gy(sbrt-only) - V24Gy(strategy): 72.2 - 71.1 = 1.1 points; 72.2 - 65.9 = 6.3
    assert rows[0]["exact_cost_points"] == pytest.approx(1.1) and rows[0]["zones_cost_points"] == pytest.approx(6.3)
    assert rows[0]["sbrt_only_cumulative_esophagus_pass"] is False
    c = headline_counts(RECORDS)
    assert c == {"patients": 5, "completed": 4, "failed": 1, "sbrt_only_pass": 4,
                 "sbrt_only_pass_but_cumulative_breach": 1, "cumulative_esophagus_breach": 1, "all_pass": 3}


def test_tables_written_and_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")
    paths = write_tables(str(tmp_path), RECORDS, ())
    assert "strategies.csv" not in paths
    with open(paths["cohort.csv"]) as fh:
        csv_rows = list(csv.DictReader(fh))
    t = pa.read_table(paths["cohort.parquet"]).to_pylist()
    assert len(t) == len(csv_rows) == 13
    assert [r["patient"] for r in t] == [r["patient"] for r in csv_rows]
    assert t[0]["value_gy"] == float(csv_rows[0]["value_gy"])


@pytest.mark.parametrize("argv, match", [
    (["cohort", "--out", "o"], "one of the arguments --patients --synthetic is required"),
    (["cohort", "--patients", "nowhere", "--out", "o"], "--patients 'nowhere' is not a folder"),
    (["cohort", "--patients", ".", "--out", "o", "--strategies", "exact,best"], "--strategies: unknown ['best']"),
    (["cohort", "--patients", ".", "--out", "o", "--workers", "0"], "--workers must be an integer in [1, 512]"),
    (["cohort", "--patients", ".", "--out", "o", "--workers", "2", "--scheduler", "tcp://x:8786"], "not allowed with"),
    (["cohort", "--patients", ".", "--out", "o", "--seed", "3"], "--seed applies to --synthetic only"),
    (["cohort", "--synthetic", "0", "--out", "o"], "--synthetic must be a patient count"),
])
def test_bad_arguments_exit_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not os.path.exists(tmp_path / "o")


def test_refusals_write_nothing(folder, capsys):
    cohort = folder.parent
    assert main(["cohort", "--patients", str(cohort), "--out", str(cohort / "run")]) == 2
    assert "lies in --patients" in capsys.readouterr().err and not (cohort / "run").exists()
    before = sorted(os.listdir(cohort))
    assert main(["cohort", "--synthetic", "2", "--out", str(cohort)]) == 2
    assert "not an empty folder" in capsys.readouterr().err and sorted(os.listdir(cohort)) == before
