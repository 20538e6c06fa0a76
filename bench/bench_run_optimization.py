"""Cost of the mock's object-model layer around the optimizer.

Run:  PYTHONPATH=. python bench/bench_run_optimization.py [phantom_name]
Prints, for the phantom given (default: the first of ``mock_tps.PHANTOMS``), the
time to load it, to take a ``CompositeAction`` snapshot, to build the
FunctionSpecs of the SBRT-only plan (ROI coverage on the dose grid, fall-off
distances), one ``RunOptimization`` and one ``ComputeDose``.  No assertion:
speed is measured here, not in tests.
"""
from __future__ import annotations

import logging
import sys
import time

logger = logging.getLogger("bench_run_optimization")


def _timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    logger.warning("%-40s %8.3f s", label, time.perf_counter() - t0)
    return out


def main(name: str = "") -> None:
    import mock_tps
    from mock_tps import connect
    from mock_tps._bridge import _take_snapshot
    from mock_tps._tps_optimizer import FunctionSpec

    name = name or mock_tps.PHANTOMS[0]
    patient = _timed(f"load_phantom('{name}', initial_plan='none')",
                     lambda: mock_tps.load_phantom(name, initial_plan="none"))
    _timed("CompositeAction snapshot", lambda: _take_snapshot(patient))
    mock_tps.unload()
    _timed(f"load_phantom('{name}', initial_plan='sbrt_only')",
           lambda: mock_tps.load_phantom(name, initial_plan="sbrt_only"))
    po = connect.get_current("Plan").PlanOptimizations[0]
    funcs = po._functions()
    _timed("FunctionSpecs (coverage cached)", lambda: po._function_specs(funcs, FunctionSpec))
    _timed("RunOptimization (40 iterations max)", po.RunOptimization)
    _timed("ComputeDose", lambda: connect.get_current("BeamSet").ComputeDose())
    _timed("snapshot()", lambda: mock_tps.snapshot(connect.get_current("Patient")))
    logger.warning("statistics: %s", mock_tps.statistics())
    mock_tps.unload()


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    main(*sys.argv[1:2])
