"""``meterd influx``: the influx surface's customer tokens (list, revoke) and registered servers."""

from __future__ import annotations

from typing import Any

import click

from meterd.cli.common import database_option, with_service
from meterd.cli.output import emit
from meterd.service import Meterd
from meterd.service.influx import InfluxService
from meterd.service.influx_tokens import InfluxTokens

tenant_option = click.option("--tenant", default="default", show_default=True, help="Tenant id.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
customer_option = click.option("--customer", default=None, help="Only this customer's.")


def _service(meterd: Meterd, tenant: str) -> InfluxService:
    return InfluxService(meterd, InfluxTokens(meterd, tenant))


@click.group()
def influx() -> None:
    """The InfluxData usage-client surface: customer tokens and servers."""


@influx.group()
def tokens() -> None:
    """Customer tokens issued by the /start registration page."""


@tokens.command("list")
@database_option
@tenant_option
@customer_option
@json_option
def tokens_list(database: str, tenant: str, customer: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        return await _service(meterd, tenant).tokens.list(tenant, customer)

    columns = ["id", "customer", "cluster_id", "product", "created_at", "revoked_at"]
    emit(with_service(database, work), columns, fmt="json" if as_json else "table")


@tokens.command("revoke")
@database_option
@tenant_option
@click.argument("token_id")
def tokens_revoke(database: str, tenant: str, token_id: str) -> None:
    """Revoke a token at once: requests carrying it get 401."""

    async def work(meterd: Meterd) -> dict[str, Any]:
        return await _service(meterd, tenant).tokens.revoke(tenant, token_id)

    revoked = with_service(database, work)
    click.echo(f"revoked {revoked['id']} (customer {revoked['customer']})")


@influx.command("servers")
@database_option
@tenant_option
@customer_option
@click.option("--cluster-id", default=None, help="Only this cluster's servers.")
@json_option
def servers(database: str, tenant: str, customer: str | None, cluster_id: str | None, as_json: bool) -> None:
    """List registered servers."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        return await _service(meterd, tenant).servers(tenant, customer, cluster_id)

    columns = ["cluster_id", "server_id", "host", "product", "version", "customer", "registrations", "last_seen"]
    emit(with_service(database, work), columns, fmt="json" if as_json else "table")
