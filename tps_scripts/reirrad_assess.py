"""reirrad — cumulative dose assessment of the current re-irradiation SBRT plan.

Run from RayStation's script console (or on a loaded mock_tps phantom).  Read-only:
nothing in the patient is changed.  Prints a short summary and, as its last line, the
path of the JSON record (a text report lies next to it).

Configuration: the file named by the environment variable REIRRAD_CONFIG (JSON or
TOML; see tps_scripts/config.py).  RayStation copies scripts to a temporary folder:
install reirrad into the script environment, or set REIRRAD_HOME to the folder that
contains the ``tps_scripts`` package.
"""
import os
import sys

_home = os.environ.get("REIRRAD_HOME")
if _home and _home not in sys.path:
    sys.path.insert(0, _home)

from tps_scripts.assess import main  # noqa: E402

if __name__ == "__main__":
    main()
