"""``meterd aws-keys``: create, list and revoke the AWS access keys that sign requests to the AWS surface."""

from __future__ import annotations

import json
from typing import Any

import click

from meterd.cli.common import database_option, with_service
from meterd.cli.output import emit
from meterd.core.awsmetering import TimeRules
from meterd.server.routes.marketplace import access_key_json
from meterd.service import Meterd
from meterd.service.awsmarket import Marketplace, build_marketplace

tenant_option = click.option("--tenant", default="default", show_default=True, help="Tenant id.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
secret_option = click.option(
    "--secret-key",
    envvar="METERD_SECRET_KEY",
    default=None,
    show_envvar=True,
    help="The server's secret key (seals AWS secrets); the one kept in the database when unset.",
)


def market(meterd: Meterd, secret_key: str | None) -> Marketplace:
    return build_marketplace(meterd, secret_key, TimeRules())


@click.group("aws-keys")
def aws_keys() -> None:
    """AWS access keys (id + secret) for boto3's meteringmarketplace client."""


@aws_keys.command("create")
@database_option
@secret_option
@tenant_option
@click.option("--name", required=True, help="What the key is for.")
@click.option("--customer", default=None, help="The customer the key acts for (MeterUsage, RegisterUsage).")
@json_option
def create(database: str, secret_key: str | None, tenant: str, name: str, customer: str | None, as_json: bool) -> None:
    """Create a key; the secret access key is printed once."""

    async def work(meterd: Meterd) -> dict[str, Any]:
        key, secret = await market(meterd, secret_key).keys.create(tenant, name, customer)
        return {**access_key_json(key), "secret_access_key": secret}

    created = with_service(database, work)
    if as_json:
        click.echo(json.dumps(created, indent=2))
    else:
        click.echo(f"AWS_ACCESS_KEY_ID={created['access_key_id']}")
        click.echo(f"AWS_SECRET_ACCESS_KEY={created['secret_access_key']}")


@aws_keys.command("list")
@database_option
@tenant_option
@json_option
def list_keys(database: str, tenant: str, as_json: bool) -> None:
    """List keys (never their secrets)."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        return [access_key_json(k) for k in await market(meterd, None).keys.list(tenant)]

    columns = ["access_key_id", "name", "customer", "created_at", "revoked_at"]
    emit(with_service(database, work), columns, fmt="json" if as_json else "table")


@aws_keys.command("revoke")
@database_option
@tenant_option
@click.argument("access_key_id")
def revoke(database: str, tenant: str, access_key_id: str) -> None:
    """Revoke a key at once."""

    async def work(meterd: Meterd) -> None:
        await market(meterd, None).keys.revoke(tenant, access_key_id)

    with_service(database, work)
    click.echo(f"revoked {access_key_id}")
