"""Usage of an owner as event parts: the owner's own interval events plus the owned parts of its resources'.

The rule is :func:`meterd.core.ownership.owner_parts`: a part counts for a window when it overlaps it (a
point event: when it lies inside), and for a snapshot when it was running at the window's start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from meterd.core.intervals import Span
from meterd.core.models import EventStatus, StoredEvent, UsageEvent
from meterd.core.ownership import open_at, overlaps, owner_parts
from meterd.service.ownership import timelines_for_owner
from meterd.storage.base import EventFilter, Store

PAGE = 1000


@dataclass(frozen=True, slots=True)
class UsagePart:
    """An event and the part of it (``span``) that counts for the owner asked about."""

    event: UsageEvent
    span: Span


async def live_events(store: Store, tenant: str, where: EventFilter) -> AsyncIterator[StoredEvent]:
    """Every event matching ``where``, a page at a time."""
    cursor: str | None = None
    while True:
        page = await store.list_events(tenant, where, PAGE, cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def usage_for_owner(
    store: Store,
    tenant: str,
    owner: str,
    window: Span,
    *,
    surface: str,
    meter: str | None = None,
    exclude: frozenset[str] = frozenset(),
    snapshot: bool = False,
) -> list[UsagePart]:
    """The parts of ``surface``'s live events that count for ``owner`` in ``window``, by start time then id."""
    lines = await timelines_for_owner(store, tenant, owner)
    consumers = {owner} | {
        resource
        for resource, stretches in lines.items()
        if any(s.owner == owner and overlaps(s.span, window) for s in stretches)
    }
    parts: list[UsagePart] = []
    for consumer in sorted(consumers):
        where = EventFilter(surface, meter, consumer, None, window.stop, EventStatus.LIVE)
        async for stored in live_events(store, tenant, where):
            event = stored.event
            if event.meter in exclude:
                continue
            for part in owner_parts(owner, consumer, Span(event.time, event.end_time), lines):
                if overlaps(part, window) and (not snapshot or open_at(part, window.start)):
                    parts.append(UsagePart(event, part))
    parts.sort(key=lambda p: (p.span.start, p.event.id, p.event.customer))
    return parts


async def open_events(store: Store, tenant: str, consumer: str, *, surface: str, meter_prefix: str) -> list[UsageEvent]:
    """Live events of ``consumer`` still open (no end), whose meter starts with ``meter_prefix``."""
    where = EventFilter(surface, None, consumer, None, None, EventStatus.LIVE)
    found = [
        s.event
        async for s in live_events(store, tenant, where)
        if s.event.end_time is None and s.event.meter.startswith(meter_prefix)
    ]
    return sorted(found, key=lambda e: (e.time, e.id))
