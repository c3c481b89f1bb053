"""OpenMeter's JSON shapes: meters (kept as core meters with ``properties["openmeter"]``), subjects (core
customers), kept events, and RFC 3339 times."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from meterd.core.cloudevents import (
    AGGREGATION_NAMES,
    AGGREGATIONS,
    UNIQUE_DIMENSION,
    check_definition,
    check_group_by,
)
from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, Limits, check_dimensions, check_name, check_time
from meterd.core.models import Aggregation, Customer, Meter
from meterd.core.timeutil import format_ms, format_seconds
from meterd.service.cloudevents import KeptEvent

CREATE_FIELDS = frozenset(
    {"slug", "name", "description", "metadata", "aggregation", "eventType", "eventFrom", "valueProperty", "groupBy"}
)
IGNORED_FIELDS = frozenset({"windowSize"})  # sent by older clients; every window is available at query time
UPDATE_FIELDS = frozenset({"name", "description", "metadata", "groupBy"})
SUBJECT_FIELDS = frozenset(
    {"key", "displayName", "metadata", "currentPeriodStart", "currentPeriodEnd", "stripeCustomerId"}
)
SUBJECT_EXTRAS = ("currentPeriodStart", "currentPeriodEnd", "stripeCustomerId")


def rfc3339(ms: int) -> str:
    """RFC 3339 in UTC, to the second when there are no milliseconds."""
    return format_seconds(ms) if ms % 1000 == 0 else format_ms(ms)


def _unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> list[FieldError]:
    return [FieldError(str(k), "is not a known field") for k in sorted(body.keys() - allowed - IGNORED_FIELDS)]


def _text(body: Mapping[str, Any], key: str, limit: int, errors: list[FieldError]) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        errors.append(FieldError(key, f"must be a string of at most {limit} characters"))
        return None
    return value


def _metadata(body: Mapping[str, Any], errors: list[FieldError]) -> dict[str, str] | None:
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()) or len(value) > 64:
        errors.append(FieldError("metadata", "must be an object of at most 64 string values"))
        return None
    return dict(value)


def meter_in(body: object, now: int) -> Meter:
    """A new meter from OpenMeter's ``MeterCreate``."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a meter must be a JSON object", [FieldError("", "must be an object")])
    errors = _unknown(body, CREATE_FIELDS)
    check_definition(body, errors)
    name = _text(body, "name", 256, errors)
    description = _text(body, "description", 1024, errors)
    metadata = _metadata(body, errors)
    event_from = check_time(body["eventFrom"], "eventFrom", errors) if body.get("eventFrom") is not None else None
    if errors:
        raise InvalidInput("the meter is invalid", errors)
    aggregation = AGGREGATIONS[str(body["aggregation"]).upper()]
    spec: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "eventType": body["eventType"],
        "valueProperty": body.get("valueProperty"),
        "groupBy": dict(body.get("groupBy") or {}),
        "eventFrom": event_from,
        "metadata": metadata,
        "updatedAt": now,
    }
    unique = UNIQUE_DIMENSION if aggregation is Aggregation.UNIQUE_COUNT else None
    return Meter(str(body["slug"]), aggregation, None, description, unique, {"openmeter": spec}, now)


def meter_update(meter: Meter, body: object, now: int) -> Meter:
    """``MeterUpdate``: name, description and metadata are replaced; ``groupBy`` replaces the group-by when given."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a meter update must be a JSON object", [FieldError("", "must be an object")])
    errors = _unknown(body, UPDATE_FIELDS)
    name = _text(body, "name", 256, errors)
    description = _text(body, "description", 1024, errors)
    metadata = _metadata(body, errors)
    if body.get("groupBy") is not None:
        check_group_by(body["groupBy"], errors)
    if errors:
        raise InvalidInput("the meter update is invalid", errors)
    spec = dict(meter.properties["openmeter"])
    spec.update(name=name, metadata=metadata, updatedAt=now)
    if body.get("groupBy") is not None:
        spec["groupBy"] = dict(body["groupBy"])
    return replace(meter, description=description, properties={**meter.properties, "openmeter": spec})


def meter_json(meter: Meter) -> dict[str, Any]:
    spec = meter.properties["openmeter"]
    body: dict[str, Any] = {
        "id": spec["id"],
        "slug": meter.key,
        "name": spec.get("name") or meter.key,
        "description": meter.description,
        "aggregation": AGGREGATION_NAMES.get(meter.aggregation, meter.aggregation.value.upper()),
        "eventType": spec["eventType"],
        "valueProperty": spec.get("valueProperty"),
        "groupBy": spec.get("groupBy") or {},
        "metadata": spec.get("metadata"),
        "eventFrom": rfc3339(spec["eventFrom"]) if spec.get("eventFrom") is not None else None,
        "createdAt": rfc3339(meter.created_at),
        "updatedAt": rfc3339(spec.get("updatedAt", meter.created_at)),
    }
    return {k: v for k, v in body.items() if v is not None}


def subject_in(
    body: object, existing: Customer | None, extras: Mapping[str, Any] | None, now: int, limits: Limits = DEFAULT_LIMITS
) -> tuple[Customer, dict[str, Any]]:
    """``SubjectUpsert`` over an existing subject: fields given replace, fields not given stay."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a subject must be a JSON object", [FieldError("", "must be an object")])
    errors = _unknown(body, SUBJECT_FIELDS)
    key = check_name(body.get("key"), "key", errors, limits.max_name)
    name = _text(body, "displayName", 256, errors)
    traits = check_dimensions(body.get("metadata"), "metadata", errors, limits)
    kept = dict(extras or {})
    for field in SUBJECT_EXTRAS:
        if body.get(field) is not None:
            if field != "stripeCustomerId":
                check_time(body[field], field, errors)
            kept[field] = _text(body, field, 256, errors)
    if errors:
        raise InvalidInput("the subject is invalid", errors)
    base = existing or Customer(key, created_at=now)
    customer = replace(
        base,
        name=name if "displayName" in body else base.name,
        traits=traits if "metadata" in body else dict(base.traits),
        updated_at=now,
    )
    return customer, kept


def subject_json(customer: Customer, extras: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": customer.id,
        "key": customer.id,
        "displayName": customer.name,
        "metadata": dict(customer.traits),
        "createdAt": rfc3339(customer.created_at),
        "updatedAt": rfc3339(customer.updated_at),
    }
    for field in SUBJECT_EXTRAS:
        if extras and extras.get(field) is not None:
            body[field] = extras[field]
    return body


def ingested_event_json(kept: KeptEvent) -> dict[str, Any]:
    """``IngestedEvent``: the event as sent (with its time), the customer, its validation error and times."""
    document = dict(kept.event.document)
    document["time"] = rfc3339(kept.event.time)
    body: dict[str, Any] = {
        "event": document,
        "customerId": kept.event.subject,
        "ingestedAt": rfc3339(kept.stored.ingested_at),
        "storedAt": rfc3339(kept.stored.ingested_at),
    }
    if kept.validation_error:
        body["validationError"] = kept.validation_error
    return body
