"""Admin commands that work on the database directly: migrate, keys, customers, meters."""

from __future__ import annotations

import json
from typing import Any

import click

from meterd.cli.common import database_option, with_service
from meterd.cli.output import emit
from meterd.core.errors import NotFound
from meterd.core.models import Aggregation, Customer, Meter, Scope
from meterd.server.wire import customer_json, key_json, meter_json
from meterd.service import Meterd

tenant_option = click.option("--tenant", default="default", show_default=True, help="Tenant id.")
format_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.command()
@database_option
def migrate(database: str) -> None:
    """Apply pending schema migrations (safe to run at any time)."""

    async def work(meterd: Meterd) -> None:
        await meterd.store.ping()

    with_service(database, work)
    click.echo("meterd: database is up to date")


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@database_option
@tenant_option
@click.option("--name", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([s.value for s in Scope]),
    default=["ingest", "read"],
    show_default=True,
)
@format_option
def keys_create(database: str, tenant: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a key; its secret is printed once."""

    async def work(meterd: Meterd) -> dict[str, Any]:
        minted = await meterd.create_key(tenant, name, frozenset(Scope(s) for s in scopes))
        return {**key_json(minted.key), "key": minted.secret}

    created = with_service(database, work)
    if as_json:
        click.echo(json.dumps(created, indent=2))
    else:
        click.echo(created["key"])


@keys.command("list")
@database_option
@tenant_option
@format_option
def keys_list(database: str, tenant: str, as_json: bool) -> None:
    """List keys (never their secrets)."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        return [key_json(k) for k in await meterd.store.list_keys(tenant)]

    emit(
        with_service(database, work),
        ["id", "name", "scopes", "created_at", "last_used_at", "revoked_at"],
        fmt="json" if as_json else "table",
    )


@keys.command("revoke")
@database_option
@tenant_option
@click.argument("key_id")
def keys_revoke(database: str, tenant: str, key_id: str) -> None:
    """Revoke a key at once."""

    async def work(meterd: Meterd) -> None:
        await meterd.store.revoke_key(tenant, key_id, meterd.clock())

    with_service(database, work)
    click.echo(f"revoked {key_id}")


@click.group()
def customers() -> None:
    """List, add and remove customers."""


@customers.command("list")
@database_option
@tenant_option
@format_option
def customers_list(database: str, tenant: str, as_json: bool) -> None:
    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await meterd.store.list_customers(tenant, 1000, cursor)
            found += [customer_json(c) for c in page.items]
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    emit(with_service(database, work), ["id", "name", "email", "traits", "enabled"], fmt="json" if as_json else "table")


@customers.command("add")
@database_option
@tenant_option
@click.argument("customer_id")
@click.option("--name")
@click.option("--email")
@click.option("--trait", "traits", multiple=True, help="KEY=VALUE, repeatable.")
def customers_add(
    database: str, tenant: str, customer_id: str, name: str | None, email: str | None, traits: tuple[str, ...]
) -> None:
    """Create or replace a customer."""
    parsed = dict(t.split("=", 1) for t in traits if "=" in t)

    async def work(meterd: Meterd) -> None:
        now = meterd.clock()
        await meterd.store.put_customer(tenant, Customer(customer_id, name, email, dict(parsed), True, now, now))

    with_service(database, work)
    click.echo(f"saved customer {customer_id}")


@customers.command("delete")
@database_option
@tenant_option
@click.argument("customer_id")
def customers_delete(database: str, tenant: str, customer_id: str) -> None:
    async def work(meterd: Meterd) -> None:
        if not await meterd.store.delete_customer(tenant, customer_id):
            raise NotFound(f"no customer {customer_id!r}")

    with_service(database, work)
    click.echo(f"deleted customer {customer_id}")


@click.group()
def meters() -> None:
    """List and define meters."""


@meters.command("list")
@database_option
@tenant_option
@format_option
def meters_list(database: str, tenant: str, as_json: bool) -> None:
    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        return [meter_json(m) for m in await meterd.store.list_meters(tenant)]

    emit(
        with_service(database, work),
        ["key", "aggregation", "unit", "unique_dimension", "description"],
        fmt="json" if as_json else "table",
    )


@meters.command("add")
@database_option
@tenant_option
@click.argument("key")
@click.option("--aggregation", type=click.Choice([a.value for a in Aggregation]), default="sum", show_default=True)
@click.option("--unit")
@click.option("--description")
@click.option("--unique-dimension")
def meters_add(
    database: str,
    tenant: str,
    key: str,
    aggregation: str,
    unit: str | None,
    description: str | None,
    unique_dimension: str | None,
) -> None:
    """Create or replace a meter."""

    async def work(meterd: Meterd) -> None:
        meter = Meter(key, Aggregation(aggregation), unit, description, unique_dimension, {}, meterd.clock())
        await meterd.store.put_meter(tenant, meter)

    with_service(database, work)
    click.echo(f"saved meter {key}")
