"""CloudEvents ingest and meter definitions: keep each event once, derive its usage, backfill and re-derive.

Events may arrive before the meter that counts them. Every valid CloudEvent is kept as an archive event, so
defining (or changing) a meter later derives usage from every kept event of its type (a backfill), and
removing one voids what it derived (audited). Ingest writes the archive first and derives only for events
whose archive was accepted or is a duplicate, so a resend with other content can never change usage. A
definition changed while a request was in flight is reconciled after the request's writes, so neither the
backfill nor the request can miss the other.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from meterd.core.cloudevents import (
    ARCHIVE_METER,
    CloudEvent,
    MeterDefinition,
    archive_event,
    archive_id,
    definition_of,
    derive,
    derived_id,
    document_json,
    parse_cloudevent,
)
from meterd.core.errors import Conflict, InvalidInput, NotFound
from meterd.core.models import Aggregation, ApiKey, EventStatus, Meter, Outcome, StoredEvent, UsageEvent
from meterd.service.meterd import Meterd, rejection_for
from meterd.storage.base import EventFilter, NewRejection

SURFACE = "openmeter"
VALIDATION_KIND = "openmeter.validation"
PAGE = 1000
DERIVING_FIELDS = ("eventType", "valueProperty", "groupBy", "eventFrom")


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """A kept CloudEvent as listed: the event, when it was stored, and why a meter could not use it."""

    event: CloudEvent
    stored: StoredEvent
    validation_error: str | None


async def definitions(meterd: Meterd, tenant: str) -> list[MeterDefinition]:
    """Every meter of the tenant that has a CloudEvents definition."""
    found = (definition_of(meter) for meter in await meterd.store.list_meters(tenant))
    return [d for d in found if d is not None]


def _versions(defs: Sequence[MeterDefinition]) -> dict[str, str]:
    return {d.slug: d.version for d in defs}


async def ingest_cloudevents(meterd: Meterd, tenant: str, records: Sequence[object]) -> list[InvalidInput | None]:
    """Keep every valid CloudEvent once and its usage under every matching meter; per record its error or None."""
    now = meterd.clock()
    parsed: list[CloudEvent] = []
    rejections: list[NewRejection] = []
    errors: list[InvalidInput | None] = [None] * len(records)
    for index, record in enumerate(records):
        try:
            parsed.append(parse_cloudevent(record, now=now, limits=meterd.limits))
        except InvalidInput as exc:
            errors[index] = exc
            rejections.append(rejection_for(SURFACE, record, exc))
    before = await definitions(meterd, tenant)
    outcomes = await meterd.ingest_events(tenant, [archive_event(e, SURFACE) for e in parsed], rejections)
    kept = [e for e, o in zip(parsed, outcomes, strict=True) if o in (Outcome.ACCEPTED, Outcome.DUPLICATE)]
    await derive_usage(meterd, tenant, kept, before)
    after = await definitions(meterd, tenant)
    if _versions(after) != _versions(before):
        await _reconcile(meterd, tenant, kept, before, after)
    return errors


async def derive_usage(
    meterd: Meterd, tenant: str, events: Sequence[CloudEvent], defs: Sequence[MeterDefinition]
) -> int:
    """Store the usage ``events`` mean under ``defs`` (resends are duplicates); keep what a meter cannot use."""
    by_type: dict[str, list[MeterDefinition]] = {}
    for definition in defs:
        by_type.setdefault(definition.event_type, []).append(definition)
    derived: list[UsageEvent] = []
    failures: list[tuple[CloudEvent, MeterDefinition, InvalidInput]] = []
    for event in events:
        for definition in by_type.get(event.type, ()):
            try:
                usage = derive(event, definition, SURFACE)
            except InvalidInput as exc:
                failures.append((event, definition, exc))
                continue
            if usage is not None:
                derived.append(usage)
    rejections = await _new_failures(meterd, tenant, failures)
    for start in range(0, max(len(derived), 1), PAGE):
        chunk = derived[start : start + PAGE]
        if chunk or rejections:
            await meterd.ingest_events(tenant, chunk, rejections if start == 0 else ())
    return len(derived)


async def _new_failures(
    meterd: Meterd, tenant: str, failures: Sequence[tuple[CloudEvent, MeterDefinition, InvalidInput]]
) -> list[NewRejection]:
    """Rejections for failures not recorded before (a resend does not repeat them), noting each on its event."""
    rejections: list[NewRejection] = []
    for event, definition, exc in failures:
        archive = archive_id(event.source, event.id)
        noted = await meterd.store.get_object(tenant, VALIDATION_KIND, archive) or {"errors": {}}
        usage_id = derived_id(archive, definition)
        first = exc.errors[0] if exc.errors else None
        message = f"{first.path} {first.message}" if first is not None else exc.message
        if noted["errors"].get(usage_id) == message:
            continue
        noted["errors"][usage_id] = message
        await meterd.store.put_object(tenant, VALIDATION_KIND, archive, noted)
        errors = tuple(e.as_dict() for e in exc.errors)
        raw = document_json(event)
        rejections.append(NewRejection(SURFACE, exc.code, message, raw, definition.slug, usage_id, errors))
    return rejections


async def _reconcile(
    meterd: Meterd,
    tenant: str,
    events: Sequence[CloudEvent],
    before: Sequence[MeterDefinition],
    after: Sequence[MeterDefinition],
) -> None:
    """Definitions changed during an ingest: derive under the new ones and void what the old ones derived."""
    old = _versions(before)
    new = _versions(after)
    await derive_usage(meterd, tenant, events, [d for d in after if old.get(d.slug) != d.version])
    for definition in before:
        if new.get(definition.slug) == definition.version:
            continue
        for event in events:
            usage_id = derived_id(archive_id(event.source, event.id), definition)
            await _void(meterd, tenant, usage_id, "the meter definition changed", None)


async def _void(meterd: Meterd, tenant: str, event_id: str, reason: str, key: ApiKey | None) -> bool:
    """Void one derived event if it is live; False when it is absent or voided already (a concurrent void)."""
    try:
        await meterd.void(tenant, SURFACE, event_id, reason, key)
    except (NotFound, Conflict):
        return False
    return True


async def void_derived(meterd: Meterd, tenant: str, slug: str, keep_version: str | None, key: ApiKey | None) -> int:
    """Void the live usage derived for meter ``slug`` except that of ``keep_version``; the number voided."""
    keep = f":{keep_version}" if keep_version is not None else None
    where = EventFilter(surface=SURFACE, meter=slug, status=EventStatus.LIVE)
    voided = 0
    cursor: str | None = None
    while True:
        page = await meterd.store.list_events(tenant, where, PAGE, cursor)
        for stored in page.items:
            if keep is None or not stored.event.id.endswith(keep):
                reason = "the meter was deleted" if keep is None else "the meter definition changed"
                voided += await _void(meterd, tenant, stored.event.id, reason, key)
        if page.next_cursor is None:
            return voided
        cursor = page.next_cursor


def event_of(stored: StoredEvent) -> CloudEvent:
    """The CloudEvent an archive event keeps (its receipt time stands in for a missing ``time``)."""
    return parse_cloudevent(json.loads(stored.event.raw or "{}"), now=stored.event.time)


async def backfill(meterd: Meterd, tenant: str, definition: MeterDefinition) -> int:
    """Derive usage under ``definition`` from every kept event of its type; the number of usage events."""
    where = EventFilter(surface=SURFACE, meter=ARCHIVE_METER, status=EventStatus.LIVE)
    derived = 0
    cursor: str | None = None
    while True:
        page = await meterd.store.list_events(tenant, where, PAGE, cursor)
        matching = [s for s in page.items if s.event.dimensions.get("type") == definition.event_type]
        derived += await derive_usage(meterd, tenant, [event_of(s) for s in matching], [definition])
        if page.next_cursor is None:
            return derived
        cursor = page.next_cursor


def _deriving(spec: dict[str, Any], aggregation: Aggregation) -> tuple[Any, ...]:
    return (aggregation, *(spec.get(name) for name in DERIVING_FIELDS))


def _spec_of(meter: Meter | None) -> dict[str, Any] | None:
    spec = meter.properties.get("openmeter") if meter is not None else None
    return spec if isinstance(spec, dict) else None


async def save_definition(meterd: Meterd, tenant: str, meter: Meter, key: ApiKey | None) -> Meter:
    """Store a meter with a CloudEvents definition and bring its usage in line with it.

    A definition whose deriving fields changed gets a new version: what the old one derived is voided and every
    kept event is derived again. Saving an unchanged definition re-runs the backfill, which completes one that
    was interrupted (already derived events are duplicates).
    """
    spec = dict(meter.properties["openmeter"])
    existing = await meterd.store.get_meter(tenant, meter.key)
    old = _spec_of(existing)
    new_key = _deriving(spec, meter.aggregation)
    if existing is not None and old is not None and _deriving(old, existing.aggregation) == new_key:
        spec["version"] = old["version"]
    else:
        spec["version"] = secrets.token_hex(4)
    saved = await meterd.store.put_meter(tenant, replace(meter, properties={**meter.properties, "openmeter": spec}))
    definition = definition_of(saved)
    assert definition is not None
    await void_derived(meterd, tenant, saved.key, definition.version, key)
    await backfill(meterd, tenant, definition)
    return saved


async def remove_definition(meterd: Meterd, tenant: str, slug: str, key: ApiKey | None) -> None:
    """Delete a meter and void the usage it derived (the kept events stay, for a later definition)."""
    if not await meterd.store.delete_meter(tenant, slug):
        raise NotFound(f"no meter {slug!r}")
    await void_derived(meterd, tenant, slug, None, key)


async def kept_events(meterd: Meterd, tenant: str, start: int | None, end: int | None) -> list[KeptEvent]:
    """Every kept CloudEvent with a time in [start, end), in ingest order, with its validation errors."""
    where = EventFilter(surface=SURFACE, meter=ARCHIVE_METER, start=start, end=end)
    out: list[KeptEvent] = []
    cursor: str | None = None
    while True:
        page = await meterd.store.list_events(tenant, where, PAGE, cursor)
        out.extend(KeptEvent(event_of(s), s, None) for s in page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def with_validation_errors(meterd: Meterd, tenant: str, events: Sequence[KeptEvent]) -> list[KeptEvent]:
    """The events with the errors meters found in them (one lookup each, so call it on a page)."""
    out: list[KeptEvent] = []
    for kept in events:
        noted = await meterd.store.get_object(tenant, VALIDATION_KIND, kept.stored.event.id)
        messages = sorted(set(noted["errors"].values())) if noted else []
        out.append(replace(kept, validation_error="; ".join(messages) or None))
    return out
