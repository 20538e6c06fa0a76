"""No module of the project outside ``tests/`` is over 450 lines.

A module is read by a physicist auditing one concept (the loop, the target objectives, the
limit zones, ...); past ~400 lines it holds several, and a reader cannot keep it in view.
The limit covers the packages, the ``bench/`` scripts and any module at the repository
root; tests are exempt (a test file mirrors a module and may list many hand-computed cases).
"""
from __future__ import annotations

import os
import pathlib
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Folders whose ``.py`` files are held to the limit (searched recursively).
FOLDERS = ("constraints", "optimizer", "tps_scripts", "mock_tps", "bench")
MAX_LINES = 450


def line_count(path: pathlib.Path) -> int:
    """Lines of a text file, as ``wc -l`` counts them when the last line ends with a newline."""
    return len(path.read_text(encoding="utf-8").splitlines())


def modules(root: pathlib.Path = ROOT) -> List[pathlib.Path]:
    """Every ``.py`` file under :data:`FOLDERS` of ``root``, and at ``root`` itself."""
    return sorted([p for folder in FOLDERS for p in (root / folder).rglob("*.py")] + list(root.glob("*.py")))


def oversized(paths: List[pathlib.Path], max_lines: int = MAX_LINES) -> Dict[str, int]:
    """The files of ``paths`` over ``max_lines`` lines, with their line counts."""
    counts = {_name(p): line_count(p) for p in paths}
    return {name: n for name, n in counts.items() if n > max_lines}


def _name(path: pathlib.Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:          # outside the repository (the counter's own test)
        return str(path)


def test_no_module_outside_tests_is_over_450_lines():
    found = modules()
    # the scan sees the packages and the bench scripts (a wrong root would pass vacuously)
    names = {_name(p) for p in found}
    assert {"tps_scripts/optimize.py", "mock_tps/_optimization.py", "constraints/lq.py",
            "optimizer/fmo.py", "bench/bench_demo.py"} <= names
    big = oversized(found)
    assert not big, f"split these modules by concept (<= ~400 lines each): {big}"


def test_every_python_folder_outside_tests_is_checked():
    """A new top-level folder with Python files must be added to FOLDERS: only the tests and
    build output are exempt."""
    exempt = {"tests", "build", "dist", "venv", "node_modules"}
    tops = set()
    for top in ROOT.iterdir():
        if not top.is_dir() or top.name.startswith(".") or top.name.endswith(".egg-info") or top.name in exempt:
            continue
        for folder, subfolders, files in os.walk(top):
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]     # .git, .venv, caches
            if any(f.endswith(".py") for f in files):
                tops.add(top.name)
                break
    assert tops <= set(FOLDERS), sorted(tops - set(FOLDERS))


def test_the_counter_sees_451_lines_and_not_450(tmp_path):
    ok, big = tmp_path / "ok.py", tmp_path / "big.py"
    ok.write_text("x = 1\n" * 450, encoding="utf-8")
    big.write_text("x = 1\n" * 450 + "y = 2", encoding="utf-8")      # 451st line without a newline counts
    assert line_count(ok) == 450 and line_count(big) == 451
    assert oversized([ok, big]) == {str(big): 451}
