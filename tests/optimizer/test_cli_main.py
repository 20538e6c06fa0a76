"""The ``reirrad`` entry point: one sub-command's module per command line (lazy imports)."""
from __future__ import annotations


def test_main_registers_every_command_it_names():
    """``reirrad <command>`` builds a parser with that command's module only; the map from command to module
    must name every command the full parser has (else ``reirrad X`` would fall back to the full parser)."""
    from optimizer.cli import main as cli_main

    full = cli_main.build_parser()
    sub = next(a for a in full._actions if a.dest == "command")
    assert set(sub.choices) == set(cli_main.COMMANDS)
    for command, module in cli_main.COMMANDS.items():
        only = cli_main.build_parser((module,))
        assert command in next(a for a in only._actions if a.dest == "command").choices


def test_dvh_process_imports_neither_scipy_nor_the_optimizer():
    """A ``reirrad dvh`` process imports no scipy and no FMO module (whole-process speed,
    bench/bench_dvh_process.py)."""
    import subprocess
    import sys

    code = ("import sys\nfrom optimizer.cli.main import main\n"
            "try:\n    main(['dvh', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy' or m.startswith('optimizer.fmo')"
            " or m.startswith('optimizer._fmo') or m.startswith('optimizer._schur')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
