"""The ``meterd`` command line."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``meterd`` script."""
    from meterd.cli.main import cli

    cli()
