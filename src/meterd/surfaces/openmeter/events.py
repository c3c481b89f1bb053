"""``/api/v1/events``: CloudEvents in (one, a batch, or either as plain JSON; 204), kept events out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request, Response

from meterd.core.errors import FieldError, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from meterd.core.events import check_time
from meterd.core.models import Scope
from meterd.service import cloudevents
from meterd.surfaces.openmeter.common import authenticate, json_body, make_router, service
from meterd.surfaces.openmeter.wire import ingested_event_json

router = make_router()
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
DEFAULT_LOOKBACK_MS = int(timedelta(hours=72).total_seconds() * 1000)
LIST_PARAMS = frozenset(
    {"clientId", "ingestedAtFrom", "ingestedAtTo", "id", "subject", "customerId", "from", "to", "limit"}
)


def _records(content_type: str, body: Any) -> list[Any]:
    """The events of a body: one for ``cloudevents+json``, an array for ``-batch+json``, either for JSON."""
    if content_type == SINGLE:
        if isinstance(body, list):
            raise InvalidInput("a single CloudEvent was expected", [FieldError("", f"use {BATCH} for arrays")])
        return [body]
    if content_type == BATCH:
        if not isinstance(body, list):
            raise InvalidInput("an array of CloudEvents was expected", [FieldError("", "must be an array")])
        return body
    if content_type in ("application/json", ""):
        return body if isinstance(body, list) else [body]
    raise UnsupportedMediaType(f"content type {content_type!r} is not supported; send {SINGLE} or {BATCH}")


@router.post("/events", status_code=204, summary="Ingest CloudEvents")
async def ingest(request: Request) -> Response:
    key = await authenticate(request, Scope.INGEST)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    records = _records(content_type, await json_body(request))
    limit = request.app.state.settings.max_batch
    if len(records) > limit:
        raise PayloadTooLarge(f"a request may carry at most {limit} events, not {len(records)}")
    outcomes = await cloudevents.ingest_cloudevents(service(request), key.tenant, records)
    errors = [
        FieldError(f"{index}.{e.path}" if len(records) > 1 else e.path, e.message)
        for index, exc in enumerate(outcomes)
        if exc is not None
        for e in exc.errors
    ]
    if errors:
        bad = sum(exc is not None for exc in outcomes)
        raise InvalidInput(f"{bad} of {len(records)} events are invalid; the others were ingested", errors)
    return Response(status_code=204)


def _partial(needle: str | None, text: str) -> bool:
    return needle is None or needle.lower() in text.lower()


@router.get("/events", summary="List kept events, newest first")
async def list_events(request: Request) -> list[dict[str, Any]]:
    key = await authenticate(request, Scope.READ)
    meterd = service(request)
    params = request.query_params
    errors = [FieldError(k, "is not a known parameter") for k in sorted(set(params.keys()) - LIST_PARAMS)]
    times = {
        n: check_time(params[n], n, errors) for n in ("from", "to", "ingestedAtFrom", "ingestedAtTo") if n in params
    }
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        errors.append(FieldError("limit", "must be a whole number from 1 to 100"))
    start = times.get("from", meterd.clock() - DEFAULT_LOOKBACK_MS)
    end = times.get("to")
    if end is not None and end < start:
        errors.append(FieldError("to", "must not be before from"))
    low, high = times.get("ingestedAtFrom"), times.get("ingestedAtTo")
    if low is not None and high is not None and high < low:
        errors.append(FieldError("ingestedAtTo", "must not be before ingestedAtFrom"))
    if errors:
        raise InvalidInput("the event listing is invalid", errors)
    customers = set(params.getlist("customerId"))
    kept = [
        k
        for k in await cloudevents.kept_events(meterd, key.tenant, start, None if end is None else end + 1)
        if _partial(params.get("id"), k.event.id)
        and _partial(params.get("subject"), k.event.subject)
        and (not customers or k.event.subject in customers)
        and (low is None or k.stored.ingested_at >= low)
        and (high is None or k.stored.ingested_at <= high)
    ]
    kept.sort(key=lambda k: (k.event.time, k.stored.seq), reverse=True)
    page = await cloudevents.with_validation_errors(meterd, key.tenant, kept[: int(limit_text)])
    return [ingested_event_json(k) for k in page]
