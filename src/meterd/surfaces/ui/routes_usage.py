"""Usage pages: the overview, meters and one meter, customers and one customer."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from meterd.core.errors import NotFound
from meterd.core.models import Aggregation
from meterd.core.query import CUSTOMER, QuerySpec, Take
from meterd.core.ranges import DAY_MS
from meterd.core.windows import Window
from meterd.server.schemas import QueryIn
from meterd.service import Meterd
from meterd.service.customer_panels import gather
from meterd.service.dashboard import ingest_rate, meter_totals, outcome_totals, top_customers
from meterd.service.ui_sessions import Session
from meterd.storage.base import EventFilter
from meterd.surfaces.ui.render import page
from meterd.surfaces.ui.security import HEADERS, current_session, root
from meterd.surfaces.ui.views import MAX_TOP, OPS, UsageView, parse_view

router = APIRouter()
SessionDep = Annotated[Session, Depends(current_session)]
RANGES = ("1h", "6h", "24h", "7d", "30d", "90d")
WINDOWS = tuple(w.value for w in Window)


def service(request: Request) -> Meterd:
    meterd: Meterd = request.app.state.meterd
    return meterd


def query_params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


def chart(view: UsageView, meters: tuple[str, ...], label: str, customers: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a usage chart's script needs: the query to send and how to label it."""
    body = view.query_body(meters)
    if customers:
        body.setdefault("filters", {})["customers"] = list(customers)
    return {"query": body, "time_zone": view.time_zone, "label": label}


def form_context(view: UsageView) -> dict[str, Any]:
    return {"view": view, "ranges": RANGES, "windows": WINDOWS, "ops": OPS, "max_top": MAX_TOP,
            "errors": {e.path: e.message for e in view.errors}}


@router.get("/")
async def overview(request: Request, session: SessionDep) -> Response:
    meterd = service(request)
    now = meterd.clock()
    view = parse_view({"tz": request.query_params.get("tz", "UTC")}, now, "24h")
    start, end = now - DAY_MS, now + 1
    totals = await meter_totals(meterd, session.tenant, start, end)
    chosen = request.query_params.get("meter") or next((t.meter for t in totals if t.events), None)
    top = await top_customers(meterd, session.tenant, chosen, start, end) if chosen else []
    context = {
        "view": view,
        "rate": await ingest_rate(meterd, session.tenant, now),
        "outcomes": await outcome_totals(meterd, session.tenant, start, end),
        "totals": totals,
        "top_meter": chosen,
        "top": top,
        "chart": chart(view, (), "Usage per meter over the last 24 hours, hourly"),
        "errors": {e.path: e.message for e in view.errors},
    }
    return page(request, "overview.html", context, session)


@router.get("/meters")
async def meters(request: Request, session: SessionDep) -> Response:
    meterd = service(request)
    now = meterd.clock()
    totals = await meter_totals(meterd, session.tenant, now - DAY_MS, now + 1)
    definitions = {m.key: m for m in await meterd.store.list_meters(session.tenant)}
    return page(request, "meters.html", {"totals": totals, "definitions": definitions}, session)


async def dimension_keys(meterd: Meterd, tenant: str, meter: str) -> list[str]:
    """Dimension names seen on a sample of the meter's events (suggestions for group-by and filters)."""
    sample = await meterd.store.list_events(tenant, EventFilter(meter=meter), 200)
    return sorted({name for stored in sample.items for name in stored.event.dimensions})


async def run_view(meterd: Meterd, tenant: str, body: dict[str, Any]) -> list[Any]:
    return await meterd.query(tenant, QueryIn.model_validate(body).spec())


@router.get("/meters/{key:path}")
async def meter_page(key: str, request: Request, session: SessionDep) -> Response:
    meterd = service(request)
    meter = await meterd.store.get_meter(session.tenant, key)
    if meter is None:
        raise NotFound(f"There is no meter {key!r}.")
    view = parse_view(query_params(request), meterd.clock(), "24h")
    context: dict[str, Any] = {**form_context(view), "meter": meter,
                               "dimensions": await dimension_keys(meterd, session.tenant, key)}
    if view.errors:
        return page(request, "meter.html", context, session, status=422)
    totals = await run_view(meterd, session.tenant, view.query_body((key,), Window.NONE, dense=False))
    export = f"{root(request).rstrip('/')}/export.csv?" + urlencode({"meter": key, **view.params()})
    context.update({
        "totals": totals,
        "chart": chart(view, (key,), f"{key} by {view.window.value}" + (f", per {view.group}" if view.group else "")),
        "export_href": export,
        "api_body": json.dumps(view.query_body((key,)), indent=2),
        "permalink": f"{root(request).rstrip('/')}/meters/{quote(key)}?" + urlencode(view.params()),
    })
    return page(request, "meter.html", context, session)


async def active_customers(meterd: Meterd, tenant: str, start: int, end: int, limit: int = 20) -> list[tuple[str, int]]:
    """Customers with the most events over [start, end), across meters."""
    spec = QuerySpec((), start, end, group_by=(CUSTOMER,), aggregation=Aggregation.COUNT, take=Take(limit))
    counts: dict[str, int] = {}
    for row in await meterd.query(tenant, spec):
        name = str(row.group[CUSTOMER])
        counts[name] = counts.get(name, 0) + int(row.value or 0)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


@router.get("/customers")
async def customers(request: Request, session: SessionDep) -> Response:
    meterd = service(request)
    find = (request.query_params.get("find") or "").strip()
    if find:
        return RedirectResponse(f"{root(request).rstrip('/')}/customers/{quote(find, safe='')}", 303, HEADERS)
    cursor = request.query_params.get("cursor") or None
    listed = await meterd.store.list_customers(session.tenant, 50, cursor)
    now = meterd.clock()
    context = {"customers": listed.items, "next_cursor": listed.next_cursor, "cursor": cursor,
               "busy": await active_customers(meterd, session.tenant, now - 30 * DAY_MS, now + 1)}
    return page(request, "customers.html", context, session)


@router.get("/customers/{customer_id:path}")
async def customer_page(customer_id: str, request: Request, session: SessionDep) -> Response:
    meterd = service(request)
    view = parse_view(query_params(request), meterd.clock(), "30d")
    context: dict[str, Any] = {**form_context(view), "customer_id": customer_id,
                               "customer": await meterd.store.get_customer(session.tenant, customer_id)}
    panels = await gather(request.app.state.customer_panels, meterd.store, session.tenant, customer_id)
    context["panels"] = panels
    if view.errors:
        return page(request, "customer.html", context, session, status=422)
    usage = await meter_totals(meterd, session.tenant, view.start, view.end, customers=(customer_id,))
    context.update({
        "usage": [u for u in usage if u.events],
        "chart": chart(view, (), f"Usage of {customer_id} per meter", (customer_id,)),
    })
    return page(request, "customer.html", context, session)
