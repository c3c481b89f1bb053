"""``meterd serve``: migrate, bootstrap the first admin key, then run uvicorn with N workers."""

from __future__ import annotations

import os

import click

from meterd.cli.common import database_option, with_service
from meterd.service import Meterd
from meterd.service.keys import MintedKey


@click.command()
@click.option("--host", envvar="METERD_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="METERD_PORT", default=8080, show_default=True, type=int)
@database_option
@click.option("--workers", envvar="METERD_WORKERS", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(host: str, port: int, database: str, workers: int, log_level: str) -> None:
    """Serve the API (and every compatibility surface) on HOST:PORT."""
    minted = with_service(database, _bootstrap)
    if minted is not None:
        click.echo("meterd: created tenant 'default' and an admin API key (shown only once):")
        click.echo(f"  {minted.secret}")
    click.echo(f"meterd: serving {database} on http://{host}:{port} (docs at /docs)", err=True)
    os.environ["METERD_DATABASE_URL"] = database
    import uvicorn

    uvicorn.run(
        "meterd.server.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )


async def _bootstrap(meterd: Meterd) -> MintedKey | None:
    return await meterd.bootstrap()
