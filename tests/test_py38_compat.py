"""The code that runs inside RayStation must run on CPython 3.8 with numpy only.

RayStation 11B-2024A script environments are CPython 3.8 (see
../shared/research/raystation_api.md); ``constraints/``, the numpy-only modules of
``optimizer/`` and ``tps_scripts/`` are checked with vermin and by their imports.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Modules that run inside the planning system.
IN_TPS = sorted(
    [p for p in (ROOT / "constraints").rglob("*.py")]
    + [ROOT / "optimizer" / "__init__.py", ROOT / "optimizer" / "limit_map.py",
       ROOT / "optimizer" / "organ_limits.py"]
    + [p for p in (ROOT / "optimizer").glob("zones*.py")]
    + [p for p in (ROOT / "optimizer").glob("tuning*.py")]
    + [p for p in (ROOT / "tps_scripts").rglob("*.py")]
)
#: Third-party imports allowed there (tomli only below Python 3.11).
ALLOWED_THIRD_PARTY = {"numpy", "tomli"}
OWN = {"constraints", "optimizer", "tps_scripts", "connect", "raystation"}


def test_vermin_cpython_38():
    pytest.importorskip("vermin")
    runner = "import sys, vermin; sys.argv[0] = 'vermin'; sys.exit(vermin.main())"
    r = subprocess.run([sys.executable, "-c", runner, "-t=3.8-", "--no-tips", "--violations",
                        *map(str, IN_TPS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", IN_TPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_numpy_is_imported(path):
    stdlib = set(sys.stdlib_module_names)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in stdlib or top in OWN or top in ALLOWED_THIRD_PARTY, f"{path.name} imports {name}"
