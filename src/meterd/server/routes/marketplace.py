"""Native routes of the marketplace: AWS access keys, products, entitlements, registration tokens, signing keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette

from meterd.core.awsmetering import HOUR_MS, TimeRules
from meterd.core.errors import FieldError, InvalidInput, NotFound
from meterd.core.events import check_time
from meterd.core.marketplace import Entitlement, Product
from meterd.core.registration import DEFAULT_TTL_MS
from meterd.core.timeutil import format_ms
from meterd.server.auth import AdminKey, ReadKey
from meterd.server.settings import Settings
from meterd.service.awskeys import AccessKey
from meterd.service.awsmarket import Marketplace, build_marketplace
from meterd.service.signing import SigningKey

router = APIRouter(prefix="/v1/aws", tags=["aws marketplace"])
Moment = str | int | float


def rules_of(settings: Settings) -> TimeRules:
    return TimeRules(
        meter_lateness=settings.aws_lateness_hours * HOUR_MS, batch_lateness=settings.aws_batch_lateness_hours * HOUR_MS
    )


def marketplace_of(app: Starlette) -> Marketplace:
    """The app's marketplace services, built on first use from its Meterd and Settings."""
    found: Marketplace | None = getattr(app.state, "marketplace", None)
    if found is None:
        settings: Settings = app.state.settings
        found = build_marketplace(app.state.meterd, settings.secret_key, rules_of(settings))
        app.state.marketplace = found
    return found


def _market(request: Request) -> Marketplace:
    return marketplace_of(request.app)


MarketDep = Annotated[Marketplace, Depends(_market)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccessKeyIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    customer: str | None = Field(default=None, min_length=1, max_length=128)


class DimensionIn(Strict):
    name: str = Field(min_length=1, max_length=255)
    meter: str | None = Field(default=None, min_length=1, max_length=511)
    description: str | None = Field(default=None, max_length=1024)


class ProductUpdate(Strict):
    name: str | None = Field(default=None, max_length=256)
    dimensions: list[DimensionIn] = Field(min_length=1, max_length=200)


class ProductIn(ProductUpdate):
    code: str = Field(min_length=1, max_length=255)


class EntitlementIn(Strict):
    customer: str = Field(min_length=1, max_length=128)
    product: str = Field(min_length=1, max_length=255)
    start: Moment | None = None
    end: Moment | None = None
    aws_account_id: str | None = Field(default=None, min_length=1, max_length=255)


class EndIn(Strict):
    at: Moment | None = None


class TokenIn(Strict):
    customer: str = Field(min_length=1, max_length=128)
    product: str = Field(min_length=1, max_length=255)
    ttl_seconds: int = Field(default=DEFAULT_TTL_MS // 1000, ge=1, le=30 * 86_400)


def _moment(value: Moment | None, path: str) -> int | None:
    if value is None:
        return None
    errors: list[FieldError] = []
    ms = check_time(value, path, errors)
    if errors:
        raise InvalidInput("the time is invalid", errors)
    return ms


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def access_key_json(key: AccessKey) -> dict[str, Any]:
    return {
        "access_key_id": key.id,
        "name": key.name,
        "customer": key.customer,
        "created_at": format_ms(key.created_at),
        "revoked_at": _time(key.revoked_at),
    }


def product_json(product: Product) -> dict[str, Any]:
    return {**product.as_json(), "created_at": format_ms(product.created_at)}


def entitlement_json(e: Entitlement, now: int) -> dict[str, Any]:
    body = e.as_json()
    body.update(start=format_ms(e.start), end=_time(e.end), created_at=format_ms(e.created_at), active=e.active_at(now))
    return body


def signing_key_json(key: SigningKey) -> dict[str, Any]:
    return {
        "version": key.version,
        "created_at": format_ms(key.created_at),
        "rotated_at": _time(key.rotated_at),
        "public_jwk": key.public_jwk,
    }


@router.post("/access-keys", status_code=201, summary="Create an AWS access key (the secret is shown once)")
async def create_access_key(body: AccessKeyIn, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    created, secret = await market.keys.create(key.tenant, body.name, body.customer)
    return {**access_key_json(created), "secret_access_key": secret}


@router.get("/access-keys", summary="List AWS access keys (never their secrets)")
async def list_access_keys(key: AdminKey, market: MarketDep) -> dict[str, Any]:
    return {"items": [access_key_json(k) for k in await market.keys.list(key.tenant)]}


@router.delete("/access-keys/{key_id}", summary="Revoke an AWS access key at once")
async def revoke_access_key(key_id: str, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    return access_key_json(await market.keys.revoke(key.tenant, key_id))


@router.post("/products", status_code=201, summary="Create or replace a product and its dimensions (meters)")
async def create_product(body: ProductIn, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    return await _put_product(body.code, body, key.tenant, market)


async def _put_product(code: str, body: ProductUpdate, tenant: str, market: Marketplace) -> dict[str, Any]:
    dims = [(d.name, d.meter, d.description) for d in body.dimensions]
    return product_json(await market.catalog.put_product(tenant, code, body.name, dims))


@router.get("/products", summary="List products")
async def list_products(key: ReadKey, market: MarketDep) -> dict[str, Any]:
    return {"items": [product_json(p) for p in await market.catalog.list_products(key.tenant)]}


@router.get("/products/{code:path}", summary="One product")
async def get_product(code: str, key: ReadKey, market: MarketDep) -> dict[str, Any]:
    product = await market.catalog.get_product(key.tenant, code)
    if product is None:
        raise NotFound(f"no product {code!r}")
    return product_json(product)


@router.put("/products/{code:path}", summary="Create or replace a product")
async def put_product(code: str, body: ProductUpdate, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    return await _put_product(code, body, key.tenant, market)


@router.delete("/products/{code:path}", status_code=204, summary="Forget a product (its usage stays)")
async def delete_product(code: str, key: AdminKey, market: MarketDep) -> Response:
    if not await market.catalog.delete_product(key.tenant, code):
        raise NotFound(f"no product {code!r}")
    return Response(status_code=204)


@router.post("/entitlements", status_code=201, summary="Entitle a customer to a product over [start, end)")
async def grant(body: EntitlementIn, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    start, end = _moment(body.start, "start"), _moment(body.end, "end")
    entitlement = await market.catalog.grant(key.tenant, body.customer, body.product, start, end, body.aws_account_id)
    return entitlement_json(entitlement, market.catalog.clock())


@router.get("/entitlements", summary="Entitlements, optionally of one product and customer")
async def list_entitlements(
    key: ReadKey, market: MarketDep, product: str | None = None, customer: str | None = None
) -> dict[str, Any]:
    if customer is not None and product is None:
        found = [e for e in await market.catalog.entitlements(key.tenant) if e.customer == customer]
    else:
        found = await market.catalog.entitlements(key.tenant, product, customer)
    now = market.catalog.clock()
    return {"items": [entitlement_json(e, now) for e in found]}


@router.post("/entitlements/{entitlement_id}/end", summary="End an entitlement (now, or at a given time)")
async def end_entitlement(entitlement_id: str, body: EndIn, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    ended = await market.catalog.end(key.tenant, entitlement_id, _moment(body.at, "at"))
    return entitlement_json(ended, market.catalog.clock())


@router.post("/registration-tokens", status_code=201, summary="Issue a one-time registration token")
async def issue_token(body: TokenIn, key: AdminKey, market: MarketDep) -> dict[str, Any]:
    token, record = await market.catalog.issue_token(key.tenant, body.customer, body.product, body.ttl_seconds * 1000)
    return {
        "token": token,
        "customer": record.customer,
        "product": record.product,
        "entitlement": record.subject.get("entitlement"),
        "expires_at": format_ms(record.expires_at),
    }


@router.get("/signing-keys", summary="Versions of the RegisterUsage signing key (public parts)")
async def list_signing_keys(key: ReadKey, market: MarketDep) -> dict[str, Any]:
    return {"items": [signing_key_json(k) for k in await market.signing.versions()]}


@router.post("/signing-keys/rotate", status_code=201, summary="Rotate the RegisterUsage signing key")
async def rotate_signing_key(key: AdminKey, market: MarketDep) -> dict[str, Any]:
    return signing_key_json(await market.signing.rotate())
