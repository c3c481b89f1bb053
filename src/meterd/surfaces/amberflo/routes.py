"""Amberflo's routes: meter records in, usage reports out, customers; every path with or without a trailing slash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from meterd.core.errors import Conflict, FieldError, InvalidInput, NotFound, PayloadTooLarge, Unauthenticated
from meterd.core.meter_records import parse_meter_record
from meterd.core.models import ApiKey, Outcome, Scope, UsageEvent
from meterd.core.query import CUSTOMER, QuerySpec
from meterd.server.body import decode_json, decode_records, read_body
from meterd.service.meterd import Meterd, raw_text, rejection_for
from meterd.service.reports import usage_series
from meterd.storage.base import NewRejection
from meterd.surfaces.amberflo import wire
from meterd.surfaces.amberflo.errors import AmberfloRoute

SURFACE = "amberflo"
MAX_BATCH_QUERIES = 100
CUSTOMER_PAGE = 1000


def both(router: APIRouter, method: str, path: str) -> Callable[[Any], Any]:
    """Register a handler at ``path`` and ``path/`` (the 2.x client drops the slash the 3.x client sends)."""

    def register(handler: Any) -> Any:
        for variant in (path, path + "/"):
            router.add_api_route(variant, handler, methods=[method], include_in_schema=variant == path)
        return handler

    return register


def service(request: Request) -> Meterd:
    meterd: Meterd = request.app.state.meterd
    return meterd


async def authenticate(request: Request, scope: Scope) -> ApiKey:
    """The key sent as ``X-API-KEY`` (header names are case-insensitive, so ``X-API-Key`` too)."""
    secret = request.headers.get("x-api-key", "").strip()
    if not secret:
        raise Unauthenticated("send an API key in the X-API-KEY header")
    return await service(request).authenticate(secret, scope)


def make_router() -> APIRouter:
    router = APIRouter(route_class=AmberfloRoute, tags=["amberflo"])
    both(router, "POST", "/ingest")(ingest)
    both(router, "POST", "/usage")(usage)
    both(router, "POST", "/usage/batch")(usage_batch)
    both(router, "GET", "/usage/all")(usage_all)
    both(router, "GET", "/customers")(get_customers)
    both(router, "POST", "/customers")(add_customer)
    both(router, "PUT", "/customers")(put_customer)
    both(router, "GET", "/customers/{customer_id}")(get_customer)
    both(router, "PUT", "/customers/{customer_id}")(put_customer_at)
    both(router, "DELETE", "/customers/{customer_id}")(delete_customer)
    return router


# ingest ----------------------------------------------------------------------------------------------------
async def ingest(request: Request) -> Response:
    """One meter record or an array (JSON or NDJSON, plain or gzip); answers ``N records were ingested``."""
    key = await authenticate(request, Scope.INGEST)
    meterd, settings = service(request), request.app.state.settings
    records = decode_records(request, await read_body(request, settings.max_body_bytes))
    if len(records) > settings.max_batch:
        raise PayloadTooLarge(f"a request may carry at most {settings.max_batch} records, not {len(records)}")
    events: list[UsageEvent] = []
    rejections: list[NewRejection] = []
    rejected: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            events.append(parse_meter_record(record, surface=SURFACE, raw=raw_text(record), limits=meterd.limits))
        except InvalidInput as exc:
            rejections.append(rejection_for(SURFACE, record, exc))
            rejected.append({"index": index, "errors": [e.as_dict() for e in exc.errors]})
    outcomes = await meterd.ingest_events(key.tenant, events, rejections)
    ingested = sum(o in (Outcome.ACCEPTED, Outcome.DUPLICATE) for o in outcomes)
    if rejected:
        message = f"{ingested} records were ingested, {len(rejected)} were rejected"
        body = {"code": "invalid_input", "message": message, "ingested": ingested, "rejected": rejected}
        return JSONResponse(body, status_code=400)
    return PlainTextResponse(f"{ingested} records were ingested")


# usage -----------------------------------------------------------------------------------------------------
async def _report(meterd: Meterd, tenant: str, query: object) -> dict[str, Any]:
    spec = wire.usage_spec(query, meterd.clock())
    series = await usage_series(meterd, tenant, spec, spec.meters)
    echo = query if isinstance(query, dict) else {}
    return wire.report_json(echo, spec, series[spec.meters[0]])


async def usage(request: Request) -> dict[str, Any]:
    """One usage query → one report (a dense series per group)."""
    key = await authenticate(request, Scope.READ)
    body = decode_json(await read_body(request, request.app.state.settings.max_body_bytes))
    return await _report(service(request), key.tenant, body)


async def usage_batch(request: Request) -> list[dict[str, Any]]:
    """An array of usage queries → an array of reports, in order."""
    key = await authenticate(request, Scope.READ)
    body = decode_json(await read_body(request, request.app.state.settings.max_body_bytes))
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_BATCH_QUERIES:
        raise InvalidInput("the body must be an array of 1 to 100 usage queries", [FieldError("", "must be an array")])
    meterd = service(request)
    reports = []
    for index, query in enumerate(body):
        try:
            reports.append(await _report(meterd, key.tenant, query))
        except InvalidInput as exc:
            raise InvalidInput(exc.message, [FieldError(f"{index}.{e.path}", e.message) for e in exc.errors]) from None
    return reports


async def usage_all(
    request: Request,
    start: int | None = Query(default=None, alias="startTimeInSeconds"),
    end: int | None = Query(default=None, alias="endTimeInSeconds"),
    interval: str | None = Query(default=None, alias="timeGroupingInterval"),
    group_by: str | None = Query(default=None, alias="groupBy"),
    customer_id: str | None = Query(default=None, alias="customerId"),
) -> list[dict[str, Any]]:
    """A report for every meter, by customer when ``groupBy=customerId``, for one customer with ``customerId``."""
    key = await authenticate(request, Scope.READ)
    meterd = service(request)
    errors: list[FieldError] = []
    first, last = wire.seconds_range(start, end, meterd.clock(), errors)
    window = wire.INTERVALS.get((interval or "").upper())
    if window is None:
        errors.append(FieldError("timeGroupingInterval", "must be one of " + ", ".join(wire.INTERVALS)))
    if group_by not in (None, wire.CUSTOMER_ID):
        errors.append(FieldError("groupBy", f"may only be {wire.CUSTOMER_ID!r}"))
    if errors or window is None:
        raise InvalidInput("the usage query is invalid", errors)
    groups = (CUSTOMER,) if group_by else ()
    customers = (customer_id,) if customer_id else None
    spec = QuerySpec((), first, last, window, "UTC", groups, customers, dense=True)
    spec.check()
    meters = {m.key: m for m in await meterd.store.list_meters(key.tenant)}
    series = await usage_series(meterd, key.tenant, spec, sorted(meters))
    echo: dict[str, Any] = {"timeGroupingInterval": window.value.upper(), "timeRange": _range_echo(start, end)}
    if group_by:
        echo["groupBy"] = [wire.CUSTOMER_ID]
    if customer_id:
        echo["filter"] = {wire.CUSTOMER_ID: [customer_id]}
    reports = []
    for name in sorted(series):
        aggregation = meters[name].aggregation.value.upper() if name in meters else "SUM"
        metadata = {"meterApiName": name, "aggregation": aggregation, **echo}
        reports.append(wire.report_json(metadata, spec, series[name]))
    return reports


def _range_echo(start: int | None, end: int | None) -> dict[str, int]:
    echo = {"startTimeInSeconds": start or 0}
    if end is not None:
        echo["endTimeInSeconds"] = end
    return echo


# customers -------------------------------------------------------------------------------------------------
async def get_customers(request: Request, customer_id: str | None = Query(default=None, alias="customerId")) -> Any:
    """All customers, or with ``?customerId=`` the one customer (``{}`` when there is none, as Amberflo answers)."""
    key = await authenticate(request, Scope.READ)
    meterd = service(request)
    if customer_id is not None:
        customer = await meterd.store.get_customer(key.tenant, customer_id)
        return wire.customer_json(customer) if customer is not None else {}
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await meterd.store.list_customers(key.tenant, CUSTOMER_PAGE, cursor)
        out.extend(wire.customer_json(c) for c in page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def get_customer(request: Request, customer_id: str) -> dict[str, Any]:
    key = await authenticate(request, Scope.READ)
    customer = await service(request).store.get_customer(key.tenant, customer_id)
    return wire.customer_json(customer) if customer is not None else {}


async def _body(request: Request) -> Any:
    return decode_json(await read_body(request, request.app.state.settings.max_body_bytes))


async def add_customer(request: Request) -> dict[str, Any]:
    """Create a customer; one that exists is a 409 (``add_or_update`` looks first and PUTs instead)."""
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    customer = wire.customer_in(await _body(request), meterd.clock(), meterd.limits)
    if await meterd.store.get_customer(key.tenant, customer.id) is not None:
        raise Conflict(f"customer {customer.id!r} exists already; use PUT to replace it")
    return wire.customer_json(await meterd.store.put_customer(key.tenant, customer))


async def put_customer(request: Request) -> dict[str, Any]:
    """Replace (or create) the customer named in the body: traits, email and the rest not given are dropped."""
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    customer = wire.customer_in(await _body(request), meterd.clock(), meterd.limits)
    return wire.customer_json(await meterd.store.put_customer(key.tenant, customer))


async def put_customer_at(request: Request, customer_id: str) -> dict[str, Any]:
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    body = await _body(request)
    if isinstance(body, dict):
        body.setdefault("customerId", customer_id)
        if body["customerId"] != customer_id:
            raise InvalidInput("the customer id differs from the path", [FieldError("customerId", "must match")])
    customer = wire.customer_in(body, meterd.clock(), meterd.limits)
    return wire.customer_json(await meterd.store.put_customer(key.tenant, customer))


async def delete_customer(request: Request, customer_id: str) -> dict[str, Any]:
    """Delete a customer and answer it as it was (its usage stays)."""
    key = await authenticate(request, Scope.ADMIN)
    store = service(request).store
    customer = await store.get_customer(key.tenant, customer_id)
    if customer is None or not await store.delete_customer(key.tenant, customer_id):
        raise NotFound(f"no customer {customer_id!r}")
    return wire.customer_json(customer)
