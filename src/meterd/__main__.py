"""``python -m meterd`` runs the CLI."""

from meterd.cli import main

main()
