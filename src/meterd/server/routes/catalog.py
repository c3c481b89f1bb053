"""Customers, meters and API keys of a tenant: create, read, replace, delete (or revoke)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from meterd.core.errors import Conflict, NotFound
from meterd.core.models import Customer, Meter
from meterd.server.auth import AdminKey, ReadKey, ServiceDep
from meterd.server.schemas import CustomerIn, CustomerUpdate, KeyIn, MeterIn, MeterUpdate
from meterd.server.wire import customer_json, key_json, meter_json

router = APIRouter(prefix="/v1")


@router.post("/customers", status_code=201, tags=["customers"])
async def create_customer(body: CustomerIn, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    if await meterd.store.get_customer(key.tenant, body.id) is not None:
        raise Conflict(f"customer {body.id!r} exists already; use PUT to replace it")
    now = meterd.clock()
    customer = Customer(body.id, body.name, body.email, body.traits, body.enabled, now, now)
    return customer_json(await meterd.store.put_customer(key.tenant, customer))


@router.get("/customers", tags=["customers"])
async def list_customers(
    key: ReadKey, meterd: ServiceDep, limit: int = Query(default=100, ge=1, le=1000), cursor: str | None = None
) -> dict[str, Any]:
    page = await meterd.store.list_customers(key.tenant, limit, cursor)
    return {"items": [customer_json(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/customers/{customer_id}", tags=["customers"])
async def get_customer(customer_id: str, key: ReadKey, meterd: ServiceDep) -> dict[str, Any]:
    customer = await meterd.store.get_customer(key.tenant, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer_json(customer)


@router.put("/customers/{customer_id}", tags=["customers"])
async def put_customer(customer_id: str, body: CustomerUpdate, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    now = meterd.clock()
    customer = Customer(customer_id, body.name, body.email, body.traits, body.enabled, now, now)
    return customer_json(await meterd.store.put_customer(key.tenant, customer))


@router.delete("/customers/{customer_id}", status_code=204, tags=["customers"])
async def delete_customer(customer_id: str, key: AdminKey, meterd: ServiceDep) -> Response:
    if not await meterd.store.delete_customer(key.tenant, customer_id):
        raise NotFound(f"no customer {customer_id!r}")
    return Response(status_code=204)


@router.post("/meters", status_code=201, tags=["meters"])
async def create_meter(body: MeterIn, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    if await meterd.store.get_meter(key.tenant, body.key) is not None:
        raise Conflict(f"meter {body.key!r} exists already; use PUT to replace it")
    return meter_json(await meterd.store.put_meter(key.tenant, _meter(body.key, body, meterd.clock())))


@router.get("/meters", tags=["meters"])
async def list_meters(key: ReadKey, meterd: ServiceDep) -> dict[str, Any]:
    return {"items": [meter_json(m) for m in await meterd.store.list_meters(key.tenant)]}


@router.get("/meters/{meter_key}", tags=["meters"])
async def get_meter(meter_key: str, key: ReadKey, meterd: ServiceDep) -> dict[str, Any]:
    meter = await meterd.store.get_meter(key.tenant, meter_key)
    if meter is None:
        raise NotFound(f"no meter {meter_key!r}")
    return meter_json(meter)


@router.put("/meters/{meter_key}", tags=["meters"])
async def put_meter(meter_key: str, body: MeterUpdate, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    return meter_json(await meterd.store.put_meter(key.tenant, _meter(meter_key, body, meterd.clock())))


@router.delete("/meters/{meter_key}", status_code=204, tags=["meters"])
async def delete_meter(meter_key: str, key: AdminKey, meterd: ServiceDep) -> Response:
    if not await meterd.store.delete_meter(key.tenant, meter_key):
        raise NotFound(f"no meter {meter_key!r}")
    return Response(status_code=204)


def _meter(key: str, body: MeterUpdate, now: int) -> Meter:
    return Meter(key, body.aggregation, body.unit, body.description, body.unique_dimension, body.properties, now)


@router.post("/keys", status_code=201, tags=["keys"])
async def create_key(body: KeyIn, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    minted = await meterd.create_key(key.tenant, body.name, frozenset(body.scopes))
    return {**key_json(minted.key), "key": minted.secret}


@router.get("/keys", tags=["keys"])
async def list_keys(key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    return {"items": [key_json(k) for k in await meterd.store.list_keys(key.tenant)]}


@router.delete("/keys/{key_id}", tags=["keys"])
async def revoke_key(key_id: str, key: AdminKey, meterd: ServiceDep) -> dict[str, Any]:
    return key_json(await meterd.store.revoke_key(key.tenant, key_id, meterd.clock()))
