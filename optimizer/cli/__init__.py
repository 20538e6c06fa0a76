"""The ``reirrad`` command line (offline use)."""
