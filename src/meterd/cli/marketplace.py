"""``meterd marketplace``: products and dimensions, entitlements, registration tokens, signing-key rotation."""

from __future__ import annotations

import json
from typing import Any

import click

from meterd.cli.aws import json_option, market, secret_option, tenant_option
from meterd.cli.common import database_option, with_service
from meterd.cli.output import emit
from meterd.core.errors import FieldError
from meterd.core.events import check_time
from meterd.server.routes.marketplace import entitlement_json, product_json, signing_key_json
from meterd.service import Meterd


@click.group()
def marketplace() -> None:
    """AWS Marketplace state: products, entitlements, registration tokens, signing keys."""


def _time(value: str | None, path: str) -> int | None:
    if value is None:
        return None
    errors: list[FieldError] = []
    ms = check_time(value, path, errors)
    if errors:
        raise click.BadParameter(errors[0].message, param_hint=f"--{path}")
    return ms


@marketplace.command("product")
@database_option
@tenant_option
@click.argument("code")
@click.option("--name", default=None)
@click.option("--dimension", "dimensions", multiple=True, required=True, help="NAME or NAME=METER; repeatable.")
@json_option
def product(
    database: str, tenant: str, code: str, name: str | None, dimensions: tuple[str, ...], as_json: bool
) -> None:
    """Create or replace a product with its dimensions (each a meter, <code>:<dimension> by default)."""
    dims = [(d.partition("=")[0], d.partition("=")[2] or None, None) for d in dimensions]

    async def work(meterd: Meterd) -> dict[str, Any]:
        return product_json(await market(meterd, None).catalog.put_product(tenant, code, name, dims))

    saved = with_service(database, work)
    click.echo(json.dumps(saved, indent=2) if as_json else f"saved product {code}")


@marketplace.command("products")
@database_option
@tenant_option
@json_option
def products(database: str, tenant: str, as_json: bool) -> None:
    """List products."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        found = await market(meterd, None).catalog.list_products(tenant)
        return [{**product_json(p), "dimensions": [d.name for d in p.dimensions]} for p in found]

    emit(with_service(database, work), ["code", "name", "dimensions", "created_at"], fmt="json" if as_json else "table")


@marketplace.command("entitle")
@database_option
@tenant_option
@click.argument("customer")
@click.argument("product_code")
@click.option("--start", default=None, help="RFC 3339; default now.")
@click.option("--end", default=None, help="RFC 3339; default open-ended.")
@click.option("--aws-account-id", default=None, help="The customer's AWS account id (default: drawn once).")
@json_option
def entitle(
    database: str,
    tenant: str,
    customer: str,
    product_code: str,
    start: str | None,
    end: str | None,
    aws_account_id: str | None,
    as_json: bool,
) -> None:
    """Entitle CUSTOMER to PRODUCT_CODE (creating the customer when new)."""
    begin, finish = _time(start, "start"), _time(end, "end")

    async def work(meterd: Meterd) -> dict[str, Any]:
        catalog = market(meterd, None).catalog
        granted = await catalog.grant(tenant, customer, product_code, begin, finish, aws_account_id)
        return {
            **entitlement_json(granted, meterd.clock()),
            "aws_account_id": await catalog.account_of(tenant, customer),
        }

    granted = with_service(database, work)
    click.echo(json.dumps(granted, indent=2) if as_json else f"{granted['id']} {granted['license_arn']}")


@marketplace.command("entitlements")
@database_option
@tenant_option
@click.option("--product", "product_code", default=None)
@click.option("--customer", default=None)
@json_option
def entitlements(database: str, tenant: str, product_code: str | None, customer: str | None, as_json: bool) -> None:
    """List entitlements."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        found = await market(meterd, None).catalog.entitlements(tenant, product_code, customer)
        return [entitlement_json(e, meterd.clock()) for e in found if customer is None or e.customer == customer]

    columns = ["id", "customer", "product", "start", "end", "active", "license_arn"]
    emit(with_service(database, work), columns, fmt="json" if as_json else "table")


@marketplace.command("end")
@database_option
@tenant_option
@click.argument("entitlement_id")
@click.option("--at", default=None, help="RFC 3339; default now.")
def end(database: str, tenant: str, entitlement_id: str, at: str | None) -> None:
    """End an entitlement."""
    moment = _time(at, "at")

    async def work(meterd: Meterd) -> dict[str, Any]:
        return entitlement_json(await market(meterd, None).catalog.end(tenant, entitlement_id, moment), meterd.clock())

    ended = with_service(database, work)
    click.echo(f"entitlement {entitlement_id} ends at {ended['end']}")


@marketplace.command("token")
@database_option
@tenant_option
@click.argument("customer")
@click.argument("product_code")
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 30 * 86_400), help="Seconds.")
def token(database: str, tenant: str, customer: str, product_code: str, ttl: int) -> None:
    """Issue a one-time registration token (what ResolveCustomer redeems)."""

    async def work(meterd: Meterd) -> str:
        issued, _ = await market(meterd, None).catalog.issue_token(tenant, customer, product_code, ttl * 1000)
        return issued

    click.echo(with_service(database, work))


@marketplace.command("signing-keys")
@database_option
@secret_option
@click.option("--rotate", is_flag=True, help="Add a new key version and mark the older ones rotated.")
@json_option
def signing_keys(database: str, secret_key: str | None, rotate: bool, as_json: bool) -> None:
    """List the RegisterUsage signing key versions, or rotate the key with --rotate."""

    async def work(meterd: Meterd) -> list[dict[str, Any]]:
        signing = market(meterd, secret_key).signing
        if rotate:
            await signing.rotate()
        return [signing_key_json(k) for k in await signing.versions()]

    rows = with_service(database, work)
    emit(rows, ["version", "created_at", "rotated_at"], fmt="json" if as_json else "table")

