"""An in-memory Store: the executable specification of the Store contract, for unit tests and experiments."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from meterd.core.errors import Conflict, NotFound
from meterd.core.events import fingerprint, record_json
from meterd.core.models import (
    ApiKey,
    Correction,
    Customer,
    EventStatus,
    Meter,
    Outcome,
    Rejection,
    StoredEvent,
    Tenant,
    UsageEvent,
)
from meterd.core.query import QuerySpec, Row, evaluate
from meterd.storage.base import EventFilter, IngestStats, NewRejection, Page, Store
from meterd.storage.common import bump_stats, group_rejections, page_after, replacement_id, seq_cursor


class MemoryStore(Store):
    """Keeps everything in dicts; a lock serialises writers as a database transaction would."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.tenants: dict[str, Tenant] = {}
        self.keys: dict[str, ApiKey] = {}
        self.customers: dict[tuple[str, str], Customer] = {}
        self.meters: dict[tuple[str, str], Meter] = {}
        self.events: dict[tuple[str, str, str], StoredEvent] = {}
        self.fingerprints: dict[tuple[str, str, str], str] = {}
        self.corrections: list[tuple[str, Correction]] = []
        self.rejections: dict[int, tuple[str, Rejection]] = {}
        self.stats: dict[tuple[str, str, str, str, int], int] = {}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._seq = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    # tenants and keys
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        return self.tenants.setdefault(tenant.id, tenant)

    async def list_tenants(self) -> list[Tenant]:
        return sorted(self.tenants.values(), key=lambda t: t.id)

    async def add_key(self, key: ApiKey) -> None:
        self.keys[key.id] = key

    async def get_key(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    async def list_keys(self, tenant: str) -> list[ApiKey]:
        return sorted((k for k in self.keys.values() if k.tenant == tenant), key=lambda k: k.created_at)

    async def revoke_key(self, tenant: str, key_id: str, at: int) -> ApiKey:
        key = self.keys.get(key_id)
        if key is None or key.tenant != tenant:
            raise NotFound(f"no key {key_id!r}")
        if key.revoked_at is None:
            key = replace(key, revoked_at=at)
            self.keys[key_id] = key
        return key

    async def touch_key(self, key_id: str, at: int) -> None:
        if key_id in self.keys:
            self.keys[key_id] = replace(self.keys[key_id], last_used_at=at)

    # customers and meters
    async def put_customer(self, tenant: str, customer: Customer) -> Customer:
        old = self.customers.get((tenant, customer.id))
        if old is not None:
            customer = replace(customer, created_at=old.created_at)
        self.customers[(tenant, customer.id)] = customer
        return customer

    async def get_customer(self, tenant: str, customer_id: str) -> Customer | None:
        return self.customers.get((tenant, customer_id))

    async def list_customers(self, tenant: str, limit: int = 100, cursor: str | None = None) -> Page:
        ids = sorted(cid for (t, cid) in self.customers if t == tenant)
        chosen, nxt = page_after(ids, cursor, limit)
        return Page([self.customers[(tenant, cid)] for cid in chosen], nxt)

    async def delete_customer(self, tenant: str, customer_id: str) -> bool:
        return self.customers.pop((tenant, customer_id), None) is not None

    async def put_meter(self, tenant: str, meter: Meter) -> Meter:
        old = self.meters.get((tenant, meter.key))
        if old is not None:
            meter = replace(meter, created_at=old.created_at)
        self.meters[(tenant, meter.key)] = meter
        return meter

    async def get_meter(self, tenant: str, key: str) -> Meter | None:
        return self.meters.get((tenant, key))

    async def list_meters(self, tenant: str) -> list[Meter]:
        return sorted((m for (t, _), m in self.meters.items() if t == tenant), key=lambda m: m.key)

    async def delete_meter(self, tenant: str, key: str) -> bool:
        return self.meters.pop((tenant, key), None) is not None

    # events
    async def ingest(
        self,
        tenant: str,
        events: Sequence[UsageEvent],
        rejections: Sequence[NewRejection] = (),
        now: int = 0,
    ) -> list[Outcome]:
        async with self._lock:
            outcomes = [self._ingest_one(tenant, event, now) for event in events]
            self._add_rejections(tenant, rejections, now)
            for event, outcome in zip(events, outcomes, strict=True):
                bump_stats(self.stats, tenant, event.meter, event.surface, outcome.value, now)
            for rejection in rejections:
                bump_stats(self.stats, tenant, rejection.meter or "", rejection.surface, "rejected", now)
            return outcomes

    def _ingest_one(self, tenant: str, event: UsageEvent, now: int) -> Outcome:
        ident = (tenant, event.surface, event.id)
        known = self.fingerprints.get(ident)
        if known is not None:
            if known == fingerprint(event):
                return Outcome.DUPLICATE
            self._add_rejections(tenant, [conflict_rejection(event)], now)
            return Outcome.CONFLICT
        self._store(tenant, event, now, None)
        return Outcome.ACCEPTED

    def _store(self, tenant: str, event: UsageEvent, now: int, replaces: str | None) -> None:
        self._seq += 1
        ident = (tenant, event.surface, event.id)
        self.events[ident] = StoredEvent(event, self._seq, now, EventStatus.LIVE, replaces)
        self.fingerprints[ident] = fingerprint(event)
        if (tenant, event.meter) not in self.meters:
            self.meters[(tenant, event.meter)] = Meter(event.meter, created_at=now)

    async def close_interval(self, tenant: str, surface: str, event_id: str, end_time: int, now: int) -> Outcome:
        async with self._lock:
            ident = (tenant, surface, event_id)
            stored = self.events.get(ident)
            if stored is None:
                raise NotFound(f"no event {event_id!r}")
            event = stored.event
            if event.end_time == end_time:
                outcome = Outcome.DUPLICATE
            elif event.end_time is not None or end_time < event.time or stored.status is EventStatus.VOIDED:
                self._add_rejections(tenant, [conflict_rejection(replace(event, end_time=end_time))], now)
                outcome = Outcome.CONFLICT
            else:
                closed = replace(event, end_time=end_time)
                self.events[ident] = replace(stored, event=closed)
                self.fingerprints[ident] = fingerprint(closed)
                outcome = Outcome.ACCEPTED
            bump_stats(self.stats, tenant, event.meter, surface, outcome.value, now)
            return outcome

    async def get_event(self, tenant: str, surface: str, event_id: str) -> StoredEvent | None:
        return self.events.get((tenant, surface, event_id))

    async def list_events(self, tenant: str, where: EventFilter, limit: int = 100, cursor: str | None = None) -> Page:
        after = seq_cursor(cursor)
        chosen = sorted(
            (s for (t, _, _), s in self.events.items() if t == tenant and s.seq > after and _matches(s, where)),
            key=lambda s: s.seq,
        )
        page = chosen[:limit]
        nxt = str(page[-1].seq) if len(chosen) > limit else None
        return Page(page, nxt)

    async def void_event(
        self, tenant: str, surface: str, event_id: str, reason: str, key_id: str | None, now: int
    ) -> Correction:
        async with self._lock:
            self._void(tenant, surface, event_id, None)
            return self._audit(tenant, Correction(0, event_id, surface, "void", reason, key_id, now))

    async def amend_event(
        self,
        tenant: str,
        surface: str,
        event_id: str,
        replacement: UsageEvent,
        reason: str,
        key_id: str | None,
        now: int,
    ) -> Correction:
        async with self._lock:
            new_id = replacement.id or replacement_id(event_id, now)
            if (tenant, surface, new_id) in self.events:
                raise Conflict(f"event {new_id!r} exists already")
            self._void(tenant, surface, event_id, new_id)
            self._store(tenant, replace(replacement, id=new_id, surface=surface), now, event_id)
            return self._audit(tenant, Correction(0, event_id, surface, "amend", reason, key_id, now, new_id))

    def _void(self, tenant: str, surface: str, event_id: str, replaced_by: str | None) -> None:
        stored = self.events.get((tenant, surface, event_id))
        if stored is None:
            raise NotFound(f"no event {event_id!r}")
        if stored.status is EventStatus.VOIDED:
            raise Conflict(f"event {event_id!r} is already voided")
        self.events[(tenant, surface, event_id)] = replace(stored, status=EventStatus.VOIDED, replaced_by=replaced_by)

    def _audit(self, tenant: str, correction: Correction) -> Correction:
        correction = replace(correction, id=len(self.corrections) + 1)
        self.corrections.append((tenant, correction))
        return correction

    async def list_corrections(self, tenant: str, surface: str, event_id: str) -> list[Correction]:
        related = {event_id}
        for t, c in self.corrections:
            if t == tenant and c.surface == surface and c.replacement_id and c.event_id in related:
                related.add(c.replacement_id)
        return [c for t, c in self.corrections if t == tenant and c.surface == surface and c.event_id in related]

    async def query(self, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
        live = [s.event for (t, _, _), s in self.events.items() if t == tenant and s.status is EventStatus.LIVE]
        meters = {m.key: m for (t, _), m in self.meters.items() if t == tenant}
        return evaluate(live, meters, spec, now)

    # rejections
    async def add_rejections(self, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
        async with self._lock:
            ids = self._add_rejections(tenant, rejections, now)
            for rejection in rejections:
                bump_stats(self.stats, tenant, rejection.meter or "", rejection.surface, "rejected", now)
            return ids

    def _add_rejections(self, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
        ids = []
        for r in rejections:
            rid = max(self.rejections, default=0) + 1
            self.rejections[rid] = (
                tenant,
                Rejection(rid, r.surface, r.code, r.message, r.raw, now, r.meter, r.event_id, r.errors),
            )
            ids.append(rid)
        return ids

    async def list_rejections(
        self, tenant: str, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        after = seq_cursor(cursor)
        chosen = [
            r
            for rid, (t, r) in sorted(self.rejections.items())
            if t == tenant and rid > after and (surface is None or r.surface == surface)
        ]
        page = chosen[:limit]
        return Page(page, str(page[-1].id) if len(chosen) > limit else None)

    async def delete_rejections(self, tenant: str, ids: Sequence[int]) -> int:
        gone = [rid for rid in set(ids) if rid in self.rejections and self.rejections[rid][0] == tenant]
        for rid in gone:
            del self.rejections[rid]
        return len(gone)

    async def ingest_stats(self, tenant: str, start: int, end: int, samples: int = 3) -> IngestStats:
        stats = IngestStats()
        for (t, meter, surface, outcome, minute), n in self.stats.items():
            if t == tenant and start <= minute < end:
                key = (meter, surface, outcome)
                stats.counts[key] = stats.counts.get(key, 0) + n
        rejected = [r for t, r in self.rejections.values() if t == tenant and start <= r.created_at < end]
        stats.rejection_groups = group_rejections(rejected, samples)
        return stats

    # objects
    async def put_object(
        self, tenant: str, kind: str, key: str, body: dict[str, Any], *, only_if_absent: bool = False
    ) -> bool:
        if only_if_absent and (tenant, kind, key) in self.objects:
            return False
        self.objects[(tenant, kind, key)] = copy.deepcopy(body)
        return True

    async def get_object(self, tenant: str, kind: str, key: str) -> dict[str, Any] | None:
        found = self.objects.get((tenant, kind, key))
        return copy.deepcopy(found) if found is not None else None

    async def list_objects(self, tenant: str, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        return sorted(
            (k, copy.deepcopy(v))
            for (t, kd, k), v in self.objects.items()
            if t == tenant and kd == kind and k.startswith(prefix)
        )

    async def delete_object(self, tenant: str, kind: str, key: str) -> bool:
        return self.objects.pop((tenant, kind, key), None) is not None


def conflict_rejection(event: UsageEvent) -> NewRejection:
    """The rejection kept when an id arrives again with other content."""
    return NewRejection(
        event.surface,
        "conflict",
        f"event {event.id!r} exists with other content",
        event.raw or record_json(event),
        event.meter,
        event.id,
    )


def _matches(stored: StoredEvent, where: EventFilter) -> bool:
    e = stored.event
    return (
        (where.surface is None or e.surface == where.surface)
        and (where.meter is None or e.meter == where.meter)
        and (where.customer is None or e.customer == where.customer)
        and (where.start is None or e.time >= where.start)
        and (where.end is None or e.time < where.end)
        and (where.status is None or stored.status is where.status)
    )
