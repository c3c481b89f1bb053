"""The ``meterd`` click group: server commands (serve, migrate), admin commands and client commands."""

from __future__ import annotations

import click

from meterd.cli.admin import customers, keys, meters, migrate
from meterd.cli.aws import aws_keys
from meterd.cli.marketplace import marketplace
from meterd.cli.remote import ingest, query
from meterd.cli.serve import serve
from meterd.cli.usage import usage


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meterd")
def cli() -> None:
    """meterd: self-hosted usage metering."""


for command in (serve, migrate, keys, customers, meters, ingest, query, usage, aws_keys, marketplace):
    cli.add_command(command)
