"""Native event routes: batch ingest with per-record results, listing, lookup, void and amend."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request, Response

from meterd.core.errors import FieldError, InvalidInput, PayloadTooLarge
from meterd.core.events import check_time
from meterd.core.models import EventStatus, Outcome
from meterd.server.auth import IngestKey, ReadKey, ServiceDep
from meterd.server.body import decode_records, read_body
from meterd.server.schemas import AmendIn, VoidIn
from meterd.server.wire import correction_json, event_json, result_json
from meterd.storage.base import EventFilter

router = APIRouter(prefix="/v1/events", tags=["events"])
_encoder = msgspec.json.Encoder()

INGEST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}},
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post("", openapi_extra=INGEST_DOC, summary="Ingest one event or a batch")
async def ingest(request: Request, key: IngestKey, meterd: ServiceDep) -> Response:
    settings = request.app.state.settings
    records = decode_records(request, await read_body(request, settings.max_body_bytes))
    if len(records) > settings.max_batch:
        raise PayloadTooLarge(f"a request may carry at most {settings.max_batch} events, not {len(records)}")
    results = await meterd.ingest_records(key.tenant, records)
    counts = dict.fromkeys((o.value for o in Outcome), 0)
    for r in results:
        counts[r.outcome.value] += 1
    body = {"results": [result_json(r) for r in results], "counts": counts}
    return Response(_encoder.encode(body), media_type="application/json")


@router.get("", summary="List events in ingest order")
async def list_events(
    key: ReadKey,
    meterd: ServiceDep,
    meter: str | None = None,
    customer: str | None = None,
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    status: EventStatus | None = None,
    surface: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = Query(default=None, pattern=r"^\d{1,19}$"),
) -> dict[str, Any]:
    start, end = parse_range(from_, to)
    where = EventFilter(surface, meter, customer, start, end, status)
    page = await meterd.store.list_events(key.tenant, where, limit, cursor)
    return {"items": [event_json(s) for s in page.items], "next_cursor": page.next_cursor}


@router.get("/{event_id}", summary="One event and its audit trail")
async def get_event(event_id: str, key: ReadKey, meterd: ServiceDep, surface: str = "native") -> dict[str, Any]:
    stored = await meterd.event(key.tenant, surface, event_id)
    corrections = await meterd.store.list_corrections(key.tenant, surface, event_id)
    return {**event_json(stored), "corrections": [correction_json(c) for c in corrections]}


@router.post("/{event_id}/void", summary="Void an event (audited)")
async def void_event(
    event_id: str, body: VoidIn, key: IngestKey, meterd: ServiceDep, surface: str = "native"
) -> dict[str, Any]:
    correction = await meterd.void(key.tenant, surface, event_id, body.reason, key)
    stored = await meterd.event(key.tenant, surface, event_id)
    return {"event": event_json(stored), "correction": correction_json(correction)}


@router.post("/{event_id}/amend", summary="Replace an event by a corrected one (audited)")
async def amend_event(
    event_id: str, body: AmendIn, key: IngestKey, meterd: ServiceDep, surface: str = "native"
) -> dict[str, Any]:
    correction, replacement = await meterd.amend(key.tenant, surface, event_id, body.event, body.reason, key)
    return {"event": event_json(replacement), "correction": correction_json(correction)}


def parse_range(from_: str | None, to: str | None) -> tuple[int | None, int | None]:
    """Optional RFC 3339 bounds of a listing; invalid ones are a 422 naming the parameter."""
    errors: list[FieldError] = []
    start = check_time(from_, "from", errors) if from_ is not None else None
    end = check_time(to, "to", errors) if to is not None else None
    if errors:
        raise InvalidInput("the range is invalid", errors)
    return start, end
