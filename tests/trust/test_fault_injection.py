"""No data lost under faults: a planning-system refusal at *any* write of the tuning
script leaves the patient exactly as it was, and the error names the failed step.

The mock's write API (``CopyPlan``, ``CreateRoi``, ``CreateAlgebraGeometry``,
``CreateRoiGeometryFromDose``, ``DeleteRoi``, ``AddOptimizationFunction``, every
parameter set such as ``DoseLevel``/``Weight``/``MaxNumberOfIterations``,
``RunOptimization``, ``AddClinicalGoal``, ...) is wrapped so that its k-th top-level
call raises ``InvalidOperationException`` (what RayStation raises through its bridge).
k runs from 1 until the script completes.  After each fault:

* the error is a :class:`tps_scripts.writeback.WriteStepError` whose message names the
  step (``write step '<step>' failed: InvalidOperationException: injected fault #k``);
* ``mock_tps.snapshot(patient)`` equals the snapshot taken before the run;
* no record was written.

The patient is the synthetic one of ``tests/mock_tps/_mock_synthetic.py`` with a prior
dose that rises along z (30–58 Gy in 30 fx), so that the script also creates and
deletes prior-dose threshold ROIs (``CreateRoiGeometryFromDose``, ``DeleteRoi``).  The
optimizer's iteration budget is small (``TuningSettings(max_iterations=...)``): the test
is about rollback, not plan quality.
"""
from __future__ import annotations

import collections
import dataclasses
import time

import numpy as np
import pytest

import mock_tps
from _compare import added_only_rr
from _mock_synthetic import DOSE_GRID, make_phantom_data
from _trust import files_under, record_count
from mock_tps import InvalidOperationException
from mock_tps._api import ApiObject
from mock_tps._evaluation import EvaluationSetup
from mock_tps._optimization import OptimizationFunction, PlanOptimization
from mock_tps._patient import Case
from mock_tps._patient_model import PatientModel, RegionOfInterest
from mock_tps._phantom_data import PriorCourseSpec
from mock_tps._plan import BeamSet
from tps_scripts.writeback import WriteStepError

#: (class, method) pairs that write into the patient
WRITE_METHODS = (
    (Case, "CopyPlan"),
    (PatientModel, "CreateRoi"),
    (RegionOfInterest, "CreateAlgebraGeometry"),
    (RegionOfInterest, "CreateMarginGeometry"),
    (RegionOfInterest, "CreateRoiGeometryFromDose"),
    (RegionOfInterest, "DeleteRoi"),
    (PlanOptimization, "AddOptimizationFunction"),
    (PlanOptimization, "RunOptimization"),
    (PlanOptimization, "ResetOptimization"),
    (OptimizationFunction, "DeleteFunction"),
    (EvaluationSetup, "AddClinicalGoal"),
    (EvaluationSetup, "DeleteClinicalGoal"),
    (BeamSet, "ComputeDose"),
)


class FaultInjector:
    """Counts top-level write calls (methods above and public attribute sets of API
    objects) and raises on the ``fail_at``-th one (0: never)."""

    def __init__(self):
        self.fail_at = 0
        self.calls = []
        self.depth = 0
        self.armed = False

    def _hit(self, what):
        if not self.armed or self.depth:
            return
        self.calls.append(what)
        if len(self.calls) == self.fail_at:
            raise InvalidOperationException(f"injected fault #{self.fail_at} at {what}")

    def install(self, monkeypatch):
        inj = self
        real_set = ApiObject.__setattr__

        def setattr_(obj, name, value):
            if not name.startswith("_"):
                inj._hit(f"set {type(obj).__name__}.{name}")
            real_set(obj, name, value)

        monkeypatch.setattr(ApiObject, "__setattr__", setattr_)
        for cls, name in WRITE_METHODS:
            real = getattr(cls, name)

            def wrapper(self, *args, _real=real, _name=name, **kwargs):
                inj._hit(_name)
                inj.depth += 1
                try:
                    return _real(self, *args, **kwargs)
                finally:
                    inj.depth -= 1

            monkeypatch.setattr(cls, name, wrapper)


def _patient_data():
    d = make_phantom_data()
    z = np.arange(DOSE_GRID.shape_zyx[0], dtype=float)[:, None, None]
    prior = np.broadcast_to(30.0 + 2.0 * z, DOSE_GRID.shape_zyx).copy()
    return dataclasses.replace(d, prior_courses=(PriorCourseSpec("Prior EBRT 60Gy/30fx", prior, DOSE_GRID, 30,
                                                                 "2023-01-01"),))


def test_a_fault_at_every_write_step_rolls_everything_back(tmp_path, monkeypatch, capsys):
    from mock_tps import connect
    from tps_scripts.config import PluginConfig
    from tps_scripts.optimize import TuningSettings, run_optimization

    mock_tps.load_patient_data(_patient_data(), initial_plan="sbrt_only")
    try:
        patient = connect.get_current("Patient")
        before = mock_tps.snapshot(patient)
        inj = FaultInjector()
        inj.install(monkeypatch)
        settings = TuningSettings(max_iterations=15)
        out = tmp_path / "records"
        config = PluginConfig(output_dir=str(out), max_optimizations=2)
        failed_steps = collections.Counter()
        t0 = time.time()
        k = 0
        while True:
            k += 1
            assert k < 500, "the run never completed"
            inj.fail_at, inj.calls, inj.armed = k, [], True
            try:
                run_optimization(api=connect, config=config, settings=settings)
            except WriteStepError as exc:
                msg = str(exc)
                assert f"InvalidOperationException: injected fault #{k} at {inj.calls[-1]}" in msg, msg
                assert msg.startswith("write step '") and "Nothing of this run was kept (rolled back)" in msg
                failed_steps[(msg.split("'")[1].split(" ")[0], inj.calls[-1].split(" ")[-1])] += 1
            else:
                break
            finally:
                inj.armed = False
            assert mock_tps.snapshot(connect.get_current("Patient")) == before, f"fault #{k} at {inj.calls[-1]}"
            assert connect.get_current("Plan").Name == "SBRT"
            assert files_under(out) == []
        faults = k - 1
        assert faults == len(inj.calls), (faults, len(inj.calls))   # the clean run made exactly k-1 writes
        after = mock_tps.snapshot(connect.get_current("Patient"))
        assert added_only_rr(before, after) == []
        kinds = {c.split(" ")[-1] for c in inj.calls}
        for needed in ("CopyPlan", "CreateRoi", "CreateAlgebraGeometry", "CreateRoiGeometryFromDose", "DeleteRoi",
                       "AddOptimizationFunction", "RunOptimization", "AddClinicalGoal",
                       "DoseFunctionParameters.DoseLevel", "_Algorithm.MaxNumberOfIterations"):
            assert needed in kinds, (needed, sorted(kinds))
        with capsys.disabled():
            print(f"\nfault injection: {faults} faults injected ({len(kinds)} kinds of write call), every one "
                  f"rolled back; {time.time() - t0:.1f} s")
        record_count("faults injected", faults)
    finally:
        mock_tps.unload()
