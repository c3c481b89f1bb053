"""``/api/v1/subjects``: subjects are meterd customers (key = customer id); upsert a list, read, delete."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from meterd.core.errors import FieldError, InvalidInput, NotFound
from meterd.core.models import Scope
from meterd.surfaces.openmeter import wire
from meterd.surfaces.openmeter.common import authenticate, json_body, make_router, service

router = make_router()
KIND = "openmeter.subject"
PAGE = 1000
MAX_UPSERT = 100


@router.get("/subjects", summary="List subjects")
async def list_subjects(request: Request) -> list[dict[str, Any]]:
    key = await authenticate(request, Scope.READ)
    store = service(request).store
    extras = dict(await store.list_objects(key.tenant, KIND))
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await store.list_customers(key.tenant, PAGE, cursor)
        out.extend(wire.subject_json(c, extras.get(c.id)) for c in page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


@router.post("/subjects", summary="Create or update subjects")
async def upsert_subjects(request: Request) -> list[dict[str, Any]]:
    key = await authenticate(request, Scope.ADMIN)
    meterd = service(request)
    body = await json_body(request)
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_UPSERT:
        raise InvalidInput("the body must be an array of 1 to 100 subjects", [FieldError("", "must be an array")])
    now = meterd.clock()
    planned = []
    for index, item in enumerate(body):
        subject_key = item.get("key") if isinstance(item, dict) else None
        existing, extras = None, None
        if isinstance(subject_key, str):
            existing = await meterd.store.get_customer(key.tenant, subject_key)
            extras = await meterd.store.get_object(key.tenant, KIND, subject_key)
        try:
            planned.append(wire.subject_in(item, existing, extras, now, meterd.limits))
        except InvalidInput as exc:
            raise InvalidInput(exc.message, [FieldError(f"{index}.{e.path}", e.message) for e in exc.errors]) from None
    out = []
    for customer, extras in planned:
        saved = await meterd.store.put_customer(key.tenant, customer)
        if extras:
            await meterd.store.put_object(key.tenant, KIND, saved.id, extras)
        out.append(wire.subject_json(saved, extras))
    return out


@router.get("/subjects/{id_or_key}", summary="Get a subject")
async def get_subject(request: Request, id_or_key: str) -> dict[str, Any]:
    key = await authenticate(request, Scope.READ)
    store = service(request).store
    customer = await store.get_customer(key.tenant, id_or_key)
    if customer is None:
        raise NotFound(f"subject not found: {id_or_key}")
    return wire.subject_json(customer, await store.get_object(key.tenant, KIND, id_or_key))


@router.delete("/subjects/{id_or_key}", status_code=204, summary="Delete a subject (its usage stays)")
async def delete_subject(request: Request, id_or_key: str) -> Response:
    key = await authenticate(request, Scope.ADMIN)
    store = service(request).store
    if not await store.delete_customer(key.tenant, id_or_key):
        raise NotFound(f"subject not found: {id_or_key}")
    await store.delete_object(key.tenant, KIND, id_or_key)
    return Response(status_code=204)
