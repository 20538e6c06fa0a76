"""Entry point of the ``reirrad`` command.

Each sub-command lives in its own module with a ``register(subparsers)`` function;
this module only assembles them, turns reirrad's documented errors into one line on
stderr with exit status 2, and turns Ctrl-C into exit status 130 without a traceback.
A command line that names a sub-command imports that sub-command's module only, so that
``reirrad dvh`` does not pay for the optimizer's imports (``bench/bench_dvh_process.py``).
"""
from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from types import ModuleType
from typing import Any, List, Optional, Sequence

from constraints.errors import ReirradError

#: Modules (in this package) that add sub-commands, in the order ``--help`` lists them.
MODULE_NAMES = ("calculator", "protocol_cmd", "demo_cmd", "assess_cmd", "dvh_cmd", "optimize_cmd", "cohort_cmd")
#: Each sub-command's module.
COMMANDS = {"bio": "calculator", "limit": "calculator", "protocol": "protocol_cmd", "demo": "demo_cmd",
            "assess": "assess_cmd", "dvh": "dvh_cmd", "optimize": "optimize_cmd", "cohort": "cohort_cmd"}
#: Sub-commands run as short processes: without the cyclic garbage collector (~100 collections,
#: 0.02-0.04 s CPU in ``reirrad dvh``, for the few cycles of one file import), with freed memory kept
#: for reuse (:mod:`optimizer.cli.dvh_process`), and ending without the interpreter's teardown
#: (freeing every object one by one: ~0.05 s); they hold nothing that needs either once their
#: output is flushed.
FAST_EXIT_COMMANDS = frozenset({"dvh"})


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"optimizer.cli.{name}")


def __getattr__(name: str) -> Any:
    """``COMMAND_MODULES``: every sub-command's module (imported when first asked for)."""
    if name == "COMMAND_MODULES":
        return tuple(_module(m) for m in MODULE_NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(modules: Sequence[str] = MODULE_NAMES) -> argparse.ArgumentParser:
    """The ``reirrad`` parser with the sub-commands of ``modules`` (default: all)."""
    parser = _OneLineParser(
        prog="reirrad",
        description="Re-irradiation spine SBRT: LQ calculator, per-voxel limits, protocols, assessment.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for name in modules:
        _module(name).register(sub)
    return parser


def _named_command(argv: Sequence[str]) -> Optional[str]:
    """The sub-command ``argv`` names first, when it is one (options before it would need the full parser)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``reirrad`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = _named_command(argv)
    parser = build_parser((COMMANDS[named],) if named else MODULE_NAMES)
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # usage error (status 2) or --help (status 0), already printed
            return int(exc.code or 0)
        return int(args.handler(args) or 0)
    except ReirradError as exc:
        sys.stderr.write(f"reirrad: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("reirrad: interrupted\n")
        return 130


def run() -> None:
    """Console entry: :func:`main`, then exit with its status (a sub-command of
    :data:`FAST_EXIT_COMMANDS`: run without the cyclic garbage collector, freed memory kept for
    reuse, and ended once stdout and stderr are flushed, without the teardown)."""
    argv = sys.argv[1:]
    fast = _named_command(argv) in FAST_EXIT_COMMANDS
    if fast:
        gc.disable()
        from .dvh_process import keep_freed_memory
        keep_freed_memory()
    status = main(argv)
    if fast:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):      # a closed or broken pipe: let the normal exit report it
            sys.exit(status)
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
