"""``reirrad cohort`` on a real ``distributed.LocalCluster`` with worker processes.

Three synthetic patients (coarse phantoms: T4–T5 abutting esophagus after 60 Gy/30 fx,
C3 after 50 Gy/25 fx, T8 after two courses with a prior grid that misses organs and
``unknown_prior = "organ_max"``) plus two that must fail: a truncated RTSTRUCT, and the
T8 patient with ``unknown_prior = "refuse"`` (its prior dose grid misses organs).
"""
import csv
import json
import os
import shutil
import signal

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyRadPlan")

from optimizer.cli.cohort.engine import EngineOptions  # noqa: E402
from optimizer.cli.cohort.run import CohortOptions, run_cohort  # noqa: E402
from optimizer.cli.cohort.synthetic import COARSE, SyntheticPatient, write_patient  # noqa: E402
from optimizer.cli.main import main  # noqa: E402

pytestmark = pytest.mark.slow

SPECS = (
    SyntheticPatient("P0001", "t4t5_esophageal", tuple(sorted(dict(COARSE, esophagus_gap_mm=0.0, prior_dose_gy=60.0,
                                                                   prior_fractions=30).items())), 0.0, "refuse"),
    SyntheticPatient("P0002", "c3_cervical", tuple(sorted(dict(COARSE, esophagus_gap_mm=2.0).items())), 0.1,
                     "refuse"),
    SyntheticPatient("P0003", "t8_two_courses", tuple(sorted(dict(COARSE, esophagus_gap_mm=3.0,
                                                                  prior_covers_oars=False).items())), 0.0,
                     "organ_max"),
)
TABLES = ("cohort.csv", "table3.csv", "patients.csv")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """{'good': the 3 patients, 'mixed': the 3 plus P0004 (truncated RTSTRUCT) and P0005 (refused prior)}."""
    root = tmp_path_factory.mktemp("cohort")
    good, mixed = root / "good", root / "mixed"
    good.mkdir()
    mixed.mkdir()
    for s in SPECS:
        write_patient(s, str(good))
        os.symlink(good / s.patient_id, mixed / s.patient_id)
    shutil.copytree(good / "P0002", mixed / "P0004")
    rs = mixed / "P0004" / "RS.dcm"
    rs.write_bytes(rs.read_bytes()[: rs.stat().st_size // 2])
    shutil.copytree(good / "P0003", mixed / "P0005")
    toml = mixed / "P0005" / "reirrad.toml"
    toml.write_text(toml.read_text().replace('unknown_prior = "organ_max"', 'unknown_prior = "refuse"'))
    return {"good": str(good), "mixed": str(mixed), "root": root}


@pytest.fixture(scope="module")
def two_worker_run(cohort):
    """The issue's command on the mixed cohort: 2 workers, --json."""
    out = str(cohort["root"] / "r2")
    import io
    from contextlib import redirect_stdout
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["cohort", "--patients", cohort["mixed"], "--out", out, "--workers", "2", "--json",
                     "--no-progress"])
    return code, json.loads(buf.getvalue()), out


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_failing_patients_are_error_rows_and_the_others_complete(two_worker_run):
    code, summary, out = two_worker_run
    assert code == 1
    assert {k: summary[k] for k in ("patients", "completed", "failed")} == {"patients": 5, "completed": 3, "failed": 2}
    assert set(summary) >= {"patients", "completed", "failed", "outputs", "wall_s"}
    assert sorted(summary["failures"]) == ["P0004", "P0005"]
    assert summary["failures"]["P0004"].startswith("DicomImportError: RTSTRUCT") and "RS.dcm" in \
        summary["failures"]["P0004"]
    assert summary["failures"]["P0005"].startswith("TpsStateError: prior course 'RD_prior_") and \
        "does not cover ROI" in summary["failures"]["P0005"]
    for name in TABLES + ("cohort.parquet", "cohort.html"):
        assert os.path.isfile(summary["outputs"][name]), name
    rows = _read(summary["outputs"]["cohort.csv"])
    assert [r for r in rows if r["patient"] == "P0004"] == [
        dict({k: "" for k in rows[0]}, patient="P0004", status="failed", error=summary["failures"]["P0004"])]
    # 3 completed patients x organs x (2 scopes x (1 physical + 2 kinds x 3 a/b)) x 3 metrics
    per_patient = {}
    for r in rows:
        per_patient.setdefault(r["patient"], set()).add((r["organ"], r["domain"], r["alpha_beta_gy"], r["metric"]))
    assert all(len(v) % (2 * 7 * 3) == 0 and len(v) >= 42 * 4 for p, v in per_patient.items()
               if p not in ("P0004", "P0005"))
    patients = {r["patient"]: r for r in _read(summary["outputs"]["patients.csv"])}
    # the seed's failure on the T4-T5 phantom: the esophagus meets its SBRT-only limit (D0.035cc <= 20 Gy)
    # and breaches a cumulative one
    rec = json.load(open(os.path.join(out, "records", "P0001.json")))
    eso = {c["domain"]: c["pass"] for c in rec["constraints"] if c["organ"] == "esophagus" and c["pass"] is not None
           and c["domain"] == "sbrt_physical"}
    assert eso == {"sbrt_physical": True} and patients["P0001"]["cumulative_esophagus_breach"] == "True"
    # patients.csv states what the records' constraints say
    for pid in ("P0001", "P0002", "P0003"):
        cons = json.load(open(os.path.join(out, "records", f"{pid}.json")))["constraints"]
        sbrt = all(c["pass"] for c in cons if c["domain"].startswith("sbrt_") and not c["advisory"])
        assert patients[pid]["sbrt_only_pass"] == str(sbrt)
    html = open(summary["outputs"]["cohort.html"], encoding="utf-8").read()
    assert "data:image/png;base64," in html and "P0004" in html and "truncated" in html


def test_one_and_two_workers_give_identical_tables(cohort, two_worker_run):
    _, _, out2 = two_worker_run
    out1 = str(cohort["root"] / "r1")
    s = run_cohort(CohortOptions(cohort["mixed"], out1, progress=False), EngineOptions(workers=1))
    assert (s["completed"], s["failed"]) == (3, 2)
    for name in TABLES:
        assert open(os.path.join(out1, name)).read() == open(os.path.join(out2, name)).read(), name
    pq = pytest.importorskip("pyarrow.parquet")
    one, two = (pq.read_table(os.path.join(o, "cohort.parquet")) for o in (out1, out2))
    assert one.equals(two)


def test_killed_worker_loses_no_patient(cohort, two_worker_run):
    from distributed import Client, LocalCluster

    out = str(cohort["root"] / "killed")
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = set(client.run(os.getpid).values())

        def kill_the_other(record):
            if not killed:  # the first record came from one worker; the other is busy with a patient: kill it
                victim = next(p for p in pids if p != record["timing"]["pid"])
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        s = run_cohort(CohortOptions(cohort["good"], out, progress=False),
                       EngineOptions(scheduler=cluster.scheduler_address), on_record=kill_the_other)
    assert killed and s["completed"] == 3 and s["failed"] == 0
    recs = [json.load(open(os.path.join(out, "records", f"{p.patient_id}.json"))) for p in SPECS]
    # the killed process completed nothing: its patient was computed again by another process
    assert killed[0] not in {r["timing"]["pid"] for r in recs}
    _, _, ref = two_worker_run
    assert open(os.path.join(out, "table3.csv")).read() == open(os.path.join(ref, "table3.csv")).read()


def test_resume_after_interrupt_recomputes_nothing_done(cohort, two_worker_run):
    out = str(cohort["root"] / "resumed")
    opts = CohortOptions(cohort["good"], out, progress=False)

    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cohort(opts, EngineOptions(workers=2), on_record=interrupt)
    recdir = os.path.join(out, "records")
    kept = {f: os.stat(os.path.join(recdir, f)).st_mtime_ns for f in os.listdir(recdir) if f.endswith(".json")}
    assert len(kept) == 1
    seen = []
    s = run_cohort(CohortOptions(cohort["good"], out, resume=True, progress=False), EngineOptions(workers=2),
                   on_record=lambda r: seen.append(r["patient"]))
    assert (s["completed"], s["computed"], s["reused"]) == (3, 2, 1)
    assert sorted(seen + [f[:-5] for f in kept]) == ["P0001", "P0002", "P0003"]
    assert {f: os.stat(os.path.join(recdir, f)).st_mtime_ns for f in kept} == kept
    _, _, ref = two_worker_run
    assert open(os.path.join(out, "table3.csv")).read() == open(os.path.join(ref, "table3.csv")).read()
    # nothing changed: nothing computed (no cluster started); a changed input is computed again
    assert run_cohort(CohortOptions(cohort["good"], out, resume=True, progress=False), EngineOptions())["computed"] == 0
    # without --resume an existing run is refused, nothing overwritten
    assert main(["cohort", "--patients", cohort["good"], "--out", out, "--no-progress"]) == 2


def test_strategies_on_the_t4t5_patient(cohort):
    """The FMO strategies on the imported T4-T5 patient (beamlets from its own CT): the SBRT-only strategy
    meets every SBRT-only limit and breaches a cumulative esophageal limit; the exact one meets all, and
    strategies.csv states what that costs in V24Gy points."""
    one = cohort["root"] / "one"
    one.mkdir()
    os.symlink(os.path.join(cohort["good"], "P0001"), one / "P0001")
    out = str(cohort["root"] / "strategies")
    s = run_cohort(CohortOptions(str(one), out, strategies=("exact", "sbrt-only"), progress=False),
                   EngineOptions(workers=1))
    assert s["completed"] == 1, s["failures"]
    rec = json.load(open(os.path.join(out, "records", "P0001.json")))
    st = rec["strategies"]
    assert st["exact"]["status"] == st["sbrt-only"]["status"] == "optimal"
    assert st["sbrt-only"]["sbrt_only_pass"] is True and st["sbrt-only"]["cumulative_esophagus_pass"] is False
    assert st["exact"]["all_pass"] is True
    row = _read(s["outputs"]["strategies.csv"])[0]
    assert float(row["exact_cost_points"]) == pytest.approx(st["sbrt-only"]["v24gy_percent"] -
                                                            st["exact"]["v24gy_percent"], abs=1e-5)
    assert row["plan_sbrt_only_pass"] == str(rec["summary"]["sbrt_only_pass"])
    assert row["plan_cumulative_breach"] == "True" and row["sbrt_only_cumulative_esophagus_pass"] == "False"
