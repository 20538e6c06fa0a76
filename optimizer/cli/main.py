"""Entry point of the ``reirrad`` command.

Each sub-command lives in its own module with a ``register(subparsers)`` function;
this module only assembles them, turns reirrad's documented errors into one line on
stderr with exit status 2, and turns Ctrl-C into exit status 130 without a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from constraints.errors import ReirradError

from . import assess_cmd, calculator, demo_cmd, dvh_cmd, optimize_cmd, protocol_cmd

#: Modules that add sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (calculator, protocol_cmd, demo_cmd, assess_cmd, dvh_cmd, optimize_cmd)


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="reirrad",
        description="Re-irradiation spine SBRT: LQ calculator, per-voxel limits, protocols, assessment.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``reirrad`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
