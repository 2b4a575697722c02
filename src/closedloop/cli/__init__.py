"""The ``closedloop`` command line (Typer)."""
