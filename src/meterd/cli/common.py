"""Shared CLI plumbing: database option, running the store for admin commands, mapping errors to exits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from meterd.core.errors import MeterdError
from meterd.service import Meterd
from meterd.storage.factory import create_store

T = TypeVar("T")

database_option = click.option(
    "--database",
    "database",
    envvar="METERD_DATABASE_URL",
    default="./meterd.db",
    show_default=True,
    help="SQLite file path, sqlite:///path or postgresql://... URL.",
)


def with_service(database: str, work: Callable[[Meterd], Awaitable[T]]) -> T:
    """Open the store, run ``work`` with a Meterd service, close the store; errors exit with status 1."""

    async def run() -> T:
        store = create_store(database)
        await store.open()
        try:
            return await work(Meterd(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except MeterdError as exc:
        raise click.ClickException(exc.message) from exc
