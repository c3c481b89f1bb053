"""``/api/v1/meters``: meters with CloudEvents definitions (create, read, update, delete) and their queries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request, Response

from meterd.core.cloudevents import MeterDefinition, definition_of
from meterd.core.errors import Conflict, FieldError, InvalidInput, NotFound
from meterd.core.models import Customer, Meter, Scope
from meterd.core.query import CUSTOMER, QuerySpec
from meterd.core.windows import Window
from meterd.service import cloudevents
from meterd.service.meterd import Meterd
from meterd.surfaces.openmeter import query as q
from meterd.surfaces.openmeter import wire
from meterd.surfaces.openmeter.common import authenticate, json_body, make_router, service

router = make_router()


async def openmeter_meters(meterd: Meterd, tenant: str) -> list[Meter]:
    """The tenant's meters that have a CloudEvents definition (other meters are not OpenMeter's to show)."""
    return [m for m in await meterd.store.list_meters(tenant) if definition_of(m) is not None]


async def find_meter(meterd: Meterd, tenant: str, id_or_slug: str) -> tuple[Meter, MeterDefinition]:
    meter = await meterd.store.get_meter(tenant, id_or_slug)
    if meter is None or definition_of(meter) is None:
        meter = next(
            (m for m in await openmeter_meters(meterd, tenant) if m.properties["openmeter"]["id"] == id_or_slug), None
        )
    definition = definition_of(meter) if meter is not None else None
    if meter is None or definition is None:
        raise NotFound(f"meter not found: {id_or_slug}")
    return meter, definition


@router.get("/meters", summary="List meters")
async def list_meters(request: Request) -> list[dict[str, Any]]:
    key = await authenticate(request, Scope.READ)
    meters = [wire.meter_json(m) for m in await openmeter_meters(service(request), key.tenant)]
    page, size = request.query_params.get("page"), request.query_params.get("pageSize")
    if page is None and size is None:
        return meters
    if not (page or "1").isdigit() or not (size or "100").isdigit() or int(page or 1) < 1 or int(size or 100) < 1:
        raise InvalidInput("the page is invalid", [FieldError("page", "page and pageSize must be positive")])
    first = (int(page or 1) - 1) * int(size or 100)
    return meters[first : first + int(size or 100)]


@router.post("/meters", status_code=201, summary="Create a meter (usage is derived from every kept event)")
async def create_meter(request: Request) -> dict[str, Any]:
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    meter = wire.meter_in(await json_body(request), meterd.clock())
    if await meterd.store.get_meter(key.tenant, meter.key) is not None:
        raise Conflict(f"meter with slug {meter.key!r} already exists")
    return wire.meter_json(await cloudevents.save_definition(meterd, key.tenant, meter, key))


@router.get("/meters/{id_or_slug}", summary="Get a meter by id or slug")
async def get_meter(request: Request, id_or_slug: str) -> dict[str, Any]:
    key = await authenticate(request, Scope.READ)
    meter, _ = await find_meter(service(request), key.tenant, id_or_slug)
    return wire.meter_json(meter)


@router.put("/meters/{id_or_slug}", summary="Update a meter (a new group-by re-derives its usage)")
async def update_meter(request: Request, id_or_slug: str) -> dict[str, Any]:
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    meter, _ = await find_meter(meterd, key.tenant, id_or_slug)
    updated = wire.meter_update(meter, await json_body(request), meterd.clock())
    return wire.meter_json(await cloudevents.save_definition(meterd, key.tenant, updated, key))


@router.delete("/meters/{id_or_slug}", status_code=204, summary="Delete a meter (its derived usage is voided)")
async def delete_meter(request: Request, id_or_slug: str) -> Response:
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    meter, _ = await find_meter(meterd, key.tenant, id_or_slug)
    await cloudevents.remove_definition(meterd, key.tenant, meter.key, key)
    return Response(status_code=204)


async def _answer(request: Request, id_or_slug: str, query: q.MeterQuery) -> Any:
    key = await authenticate(request, Scope.READ)
    meterd = service(request)
    meter, definition = await find_meter(meterd, key.tenant, id_or_slug)
    spec = q.spec_of(query, definition)
    bounded, spans = await _bounded(meterd, key.tenant, query, spec)
    rows = await meterd.query(key.tenant, bounded) if bounded is not None else []
    items = q.answers(query, spec, rows, spans)
    if "text/csv" not in request.headers.get("accept", ""):
        return q.result_json(query, items)
    customers = await _customers(meterd, key.tenant, spec, items)
    headers = {"content-disposition": f'attachment; filename="{meter.key}.csv"'}
    return Response(q.result_csv(spec, items, customers), media_type="text/csv; charset=utf-8", headers=headers)


async def _bounded(
    meterd: Meterd, tenant: str, query: q.MeterQuery, spec: QuerySpec
) -> tuple[QuerySpec | None, q.Extents]:
    """A spec with a finite range and, for an unwindowed unbounded query, where each group's usage lies.

    An open ``from`` or ``to`` is closed at the months that hold usage (found with month windows, which stay
    few over any range); rows without a window then report each group's first and last minute (or hour or
    day, when minutes would be too many). None when there is no usage at all.
    """
    if query.start is not None and query.end is not None:
        return spec, {}
    months = q.extents(await meterd.query(tenant, q.probe_spec(spec)), spec.group_by)
    whole = q.span(months)
    if whole is None:
        return None, {}
    low, high = whole
    start = query.start if query.start is not None else low
    end = query.end if query.end is not None else high
    if spec.window is not Window.NONE:
        return replace(spec, start=start, end=end), {}
    fine = q.extent_spec(spec, low, high)
    spans = q.extents(await meterd.query(tenant, fine), spec.group_by) if fine is not None else months
    return spec, spans


async def _customers(meterd: Meterd, tenant: str, spec: QuerySpec, items: list[q.Answer]) -> dict[str, Customer]:
    if CUSTOMER not in spec.group_by:
        return {}
    found: dict[str, Customer] = {}
    for subject in {a.subject for a in items if a.subject is not None}:
        customer = await meterd.store.get_customer(tenant, subject)
        if customer is not None:
            found[subject] = customer
    return found


@router.get("/meters/{id_or_slug}/query", summary="Query a meter (JSON, or CSV with Accept: text/csv)")
async def query_get(request: Request, id_or_slug: str) -> Any:
    return await _answer(request, id_or_slug, q.from_params(request.query_params.multi_items()))


@router.post("/meters/{id_or_slug}/query", summary="Query a meter with a JSON body")
async def query_post(request: Request, id_or_slug: str) -> Any:
    return await _answer(request, id_or_slug, q.from_body(await json_body(request)))


@router.get("/meters/{id_or_slug}/subjects", summary="Subjects with usage of a meter")
async def meter_subjects(request: Request, id_or_slug: str) -> list[str]:
    return await _group_values(request, id_or_slug, q.SUBJECT)


@router.get("/meters/{id_or_slug}/group-by/{group_key}/values", summary="Values of one group-by key")
async def group_values(request: Request, id_or_slug: str, group_key: str) -> list[str]:
    return await _group_values(request, id_or_slug, group_key)


async def _group_values(request: Request, id_or_slug: str, name: str) -> list[str]:
    query = q.from_params([(k, v) for k, v in request.query_params.multi_items() if k in ("from", "to")])
    query.group_by = (name,)
    key = await authenticate(request, Scope.READ)
    meterd = service(request)
    _, definition = await find_meter(meterd, key.tenant, id_or_slug)
    spec = q.spec_of(query, definition)
    rows = await meterd.query(key.tenant, spec)
    label = spec.group_by[0]
    return sorted({str(r.group[label]) for r in rows if r.group.get(label) is not None})
