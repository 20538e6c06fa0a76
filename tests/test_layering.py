"""The packages import each other in one direction only (no cycles).

Layers, bottom to top::

    constraints  <-  optimizer (core)  <-  tps_scripts  <-  optimizer.cli
    constraints  <-  mock_tps                            <-  optimizer.cli

* ``constraints`` (the neutral model, LQ, protocols) imports none of the others;
* the optimizer's core (``optimizer`` outside ``optimizer.cli``) imports only ``constraints``;
* ``tps_scripts`` (run inside RayStation) imports ``constraints`` and the optimizer's core, and
  RayStation's ``connect``; never ``mock_tps`` (the stand-in) nor the CLI;
* ``mock_tps`` (the RayStation stand-in) imports only ``constraints``;
* ``optimizer.cli`` is on top and may import everything.

Every ``import`` statement counts, wherever it is: module level, inside a function, under
``if TYPE_CHECKING``, relative or absolute (resolved against the module's package).  Imports by
string (``importlib.import_module``) are not seen.
"""
from __future__ import annotations

import ast
import pathlib
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("constraints", "optimizer", "tps_scripts", "mock_tps")

#: Layer → the layers it must not import (``connect`` is RayStation's own module).
FORBIDDEN: Dict[str, Set[str]] = {
    "constraints": {"optimizer", "optimizer.cli", "tps_scripts", "mock_tps", "connect"},
    "optimizer": {"optimizer.cli", "tps_scripts", "mock_tps", "connect"},
    "tps_scripts": {"optimizer.cli", "mock_tps"},
    "mock_tps": {"optimizer", "optimizer.cli", "tps_scripts"},
    "optimizer.cli": set(),
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name ('' for one outside the project)."""
    parts = module.split(".")
    if parts[0] == "optimizer" and len(parts) > 1 and parts[1] == "cli":
        return "optimizer.cli"
    if parts[0] in PACKAGES or parts[0] == "connect":
        return parts[0]
    return ""


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[Tuple[str, int]]:
    """Every module an ``import`` statement of ``source`` names, with its line (relative imports resolved
    against ``module``; ``from a import b`` also yields ``a.b``, which may be a module)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def violations(source: str, module: str, is_package: bool = False) -> List[str]:
    """The imports of ``source`` (the module ``module``) that its layer forbids."""
    own = layer_of(module)
    found = []
    for target, line in imported_modules(source, module, is_package):
        if layer_of(target) in FORBIDDEN[own]:
            found.append(f"{module}:{line} imports {target} ({own} must not import {layer_of(target)})")
    return sorted(set(found))


def _modules() -> Iterator[Tuple[str, pathlib.Path, bool]]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            is_package = rel.name == "__init__"
            parts = rel.parts[:-1] if is_package else rel.parts
            yield ".".join(parts), path, is_package


MODULES = list(_modules())


@pytest.mark.parametrize("module,path,is_package", MODULES, ids=[m for m, _, _ in MODULES])
def test_module_imports_only_lower_layers(module, path, is_package):
    assert violations(path.read_text(encoding="utf-8"), module, is_package) == []


def test_no_cycle_between_layers():
    """The layer graph of the imports actually made is acyclic (a topological order exists)."""
    edges: Dict[str, Set[str]] = {layer: set() for layer in FORBIDDEN}
    for module, path, is_package in MODULES:
        own = layer_of(module)
        for target, _ in imported_modules(path.read_text(encoding="utf-8"), module, is_package):
            other = layer_of(target)
            if other and other != own and other in edges:
                edges[own].add(other)
    left = dict(edges)
    while left:
        leaves = [layer for layer, deps in left.items() if not deps & set(left)]
        assert leaves, f"import cycle among {sorted(left)}: {left}"
        for layer in leaves:
            del left[layer]


@pytest.mark.parametrize("source,module,bad", [
    ("from tps_scripts.adapter import gather\n", "optimizer.fmo_case", True),
    ("def f():\n    import mock_tps\n", "optimizer.fmo", True),                 # function level counts
    ("if TYPE_CHECKING:\n    from tps_scripts import x\n", "mock_tps.dicom_export", True),
    ("from .cli import main\n", "optimizer.fmo", True),                          # relative, resolved
    ("from ..cli import main\n", "optimizer.sub.mod", True),                     # two levels up
    ("from ..fmo import solve_fmo\n", "optimizer.cli.optimize_cmd", False),
    ("from . import cli\n", "optimizer", True),                                  # optimizer/__init__: optimizer.cli
    ("from optimizer.limit_map import LimitMap\n", "constraints.lq", True),
    ("import connect\n", "tps_scripts.adapter", False),                          # RayStation's module
    ("from optimizer.zones import x\n", "tps_scripts.limit_zones", False),
    ("from tps_scripts.assess import run_assessment\n", "optimizer.cli.main", False),
    ("from constraints.lq import bed\n", "mock_tps.dose_engine", False),
])
def test_the_checker_sees_what_it_should(source, module, bad):
    is_package = module == "optimizer"
    assert bool(violations(source, module, is_package)) is bad
