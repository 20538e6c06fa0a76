"""reirrad — optimize a copy of the current re-irradiation SBRT plan against per-voxel
remaining tolerance, tuning PTVeval coverage until every protocol limit holds.

Run from RayStation's script console (or on a loaded mock_tps phantom).  Adds, in one
undo step: a copy of the plan named ``rr_<plan>``, ``rr_`` zone ROIs, optimization
functions and clinical goals on the copy.  The user's plan, ROIs and doses are not
changed.  Prints a summary and, as its last line, the path of the JSON record.

Configuration and installation: see reirrad_assess.py.
"""
import os
import sys

_home = os.environ.get("REIRRAD_HOME")
if _home and _home not in sys.path:
    sys.path.insert(0, _home)

from tps_scripts.optimize import main  # noqa: E402

if __name__ == "__main__":
    main()
