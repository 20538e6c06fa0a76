"""Shared helpers of the trust suites: counters printed at session finish, the fuzz budget,
file listings."""
import os

#: name -> number, printed at session finish by conftest.pytest_terminal_summary
COUNTS = {}


def record_count(name, n):
    COUNTS[name] = COUNTS.get(name, 0) + int(n)


def fuzz_examples(default=25):
    """Hypothesis budget of the fuzz modules: ``$REIRRAD_FUZZ_EXAMPLES`` or ``default``."""
    return int(os.environ.get("REIRRAD_FUZZ_EXAMPLES", default))


def files_under(folder):
    """Every file below ``folder`` (relative paths), empty when it does not exist."""
    out = []
    for root, _, files in os.walk(str(folder)):
        out += [os.path.relpath(os.path.join(root, f), str(folder)) for f in files]
    return sorted(out)
