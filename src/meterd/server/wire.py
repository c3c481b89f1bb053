"""Native JSON shapes of domain records (what the /v1 API and the SDK exchange)."""

from __future__ import annotations

from typing import Any

from meterd.core.models import ApiKey, Correction, Customer, IngestResult, Meter, Rejection, StoredEvent
from meterd.core.query import Row
from meterd.core.timeutil import format_ms


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def event_json(stored: StoredEvent) -> dict[str, Any]:
    e = stored.event
    return {
        "id": e.id,
        "meter": e.meter,
        "customer": e.customer,
        "time": format_ms(e.time),
        "value": e.value,
        "dimensions": e.dimensions,
        "end_time": _time(e.end_time),
        "surface": e.surface,
        "status": stored.status.value,
        "ingested_at": format_ms(stored.ingested_at),
        "replaces": stored.replaces,
        "replaced_by": stored.replaced_by,
    }


def correction_json(c: Correction) -> dict[str, Any]:
    return {
        "id": c.id,
        "event_id": c.event_id,
        "surface": c.surface,
        "action": c.action,
        "reason": c.reason,
        "key_id": c.key_id,
        "created_at": format_ms(c.created_at),
        "replacement_id": c.replacement_id,
    }


def customer_json(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "traits": c.traits,
        "enabled": c.enabled,
        "created_at": format_ms(c.created_at),
        "updated_at": format_ms(c.updated_at),
    }


def meter_json(m: Meter) -> dict[str, Any]:
    return {
        "key": m.key,
        "aggregation": m.aggregation.value,
        "unit": m.unit,
        "description": m.description,
        "unique_dimension": m.unique_dimension,
        "properties": m.properties,
        "created_at": format_ms(m.created_at),
    }


def key_json(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "tenant": k.tenant,
        "name": k.name,
        "scopes": sorted(s.value for s in k.scopes),
        "created_at": format_ms(k.created_at),
        "last_used_at": _time(k.last_used_at),
        "revoked_at": _time(k.revoked_at),
    }


def rejection_json(r: Rejection) -> dict[str, Any]:
    return {
        "id": r.id,
        "surface": r.surface,
        "code": r.code,
        "message": r.message,
        "errors": list(r.errors),
        "raw": r.raw,
        "meter": r.meter,
        "event_id": r.event_id,
        "created_at": format_ms(r.created_at),
    }


def result_json(r: IngestResult) -> dict[str, Any]:
    body: dict[str, Any] = {"index": r.index, "id": r.id, "outcome": r.outcome.value}
    if r.errors:
        body["errors"] = list(r.errors)
    if r.message and not r.errors:
        body["message"] = r.message
    return body


def row_json(row: Row) -> dict[str, Any]:
    return {
        "meter": row.meter,
        "start": format_ms(row.start),
        "end": format_ms(row.end),
        "group": row.group,
        "value": row.value,
    }
