"""``Meterd``: the one object surfaces talk to — ingest, query, corrections, customers, meters, keys, health."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from meterd.core.errors import Forbidden, InvalidInput, NotFound
from meterd.core.events import DEFAULT_LIMITS, Limits, parse_event
from meterd.core.models import (
    ApiKey,
    Correction,
    IngestResult,
    Outcome,
    Scope,
    StoredEvent,
    Tenant,
    UsageEvent,
)
from meterd.core.query import QuerySpec, Row
from meterd.core.timeutil import now_ms
from meterd.service.keys import MintedKey, key_id_of, mint, verify
from meterd.storage.base import NewRejection, Store

DEFAULT_TENANT = "default"
TOUCH_EVERY_MS = 60_000


@dataclass
class IngestCounters:
    """Process-local ingest outcome counts, for /metrics."""

    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, surface: str, results: Sequence[IngestResult]) -> None:
        for result in results:
            key = (surface, result.outcome.value)
            self.outcomes[key] = self.outcomes.get(key, 0) + 1


class Meterd:
    """Holds the store and the clock; every surface goes through here, never straight to the store."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int] = now_ms,
        limits: Limits = DEFAULT_LIMITS,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self.store = store
        self.observe = observe or (lambda operation, seconds: None)
        self.clock = clock
        self.limits = limits
        self.counters = IngestCounters()
        self._touched: dict[str, int] = {}

    # keys ----------------------------------------------------------------------------------------------
    async def authenticate(self, secret: str, scope: Scope) -> ApiKey:
        """The live key behind ``secret``; Unauthenticated when unknown, Forbidden when it lacks ``scope``."""
        key = verify(await self.store.get_key(key_id_of(secret)), secret)
        if not key.allows(scope):
            raise Forbidden(f"the API key lacks the {scope.value!r} scope")
        now = self.clock()
        if now - self._touched.get(key.id, 0) >= TOUCH_EVERY_MS:
            self._touched[key.id] = now
            await self.store.touch_key(key.id, now)
        return key

    async def create_key(self, tenant: str, name: str, scopes: frozenset[Scope]) -> MintedKey:
        if not scopes:
            raise InvalidInput("a key needs at least one scope")
        minted = mint(tenant, name, scopes, self.clock())
        await self.store.add_key(minted.key)
        return minted

    async def bootstrap(self) -> MintedKey | None:
        """On first start: create the default tenant and an admin key (returned so it can be shown once)."""
        if await self.store.list_tenants():
            return None
        await self.store.create_tenant(Tenant(DEFAULT_TENANT, "Default", self.clock()))
        return await self.create_key(DEFAULT_TENANT, "admin", frozenset({Scope.ADMIN}))

    # ingest --------------------------------------------------------------------------------------------
    async def ingest_records(
        self, tenant: str, records: Sequence[object], surface: str = "native"
    ) -> list[IngestResult]:
        """Validate native records and store the valid ones; one result per record, in order."""
        now = self.clock()
        events: list[UsageEvent] = []
        positions: list[int] = []
        rejections: list[NewRejection] = []
        results: list[IngestResult | None] = [None] * len(records)
        for index, record in enumerate(records):
            try:
                event = parse_event(record, now=now, surface=surface, limits=self.limits)
            except InvalidInput as exc:
                errors = tuple(e.as_dict() for e in exc.errors)
                rejections.append(rejection_for(surface, record, exc))
                results[index] = IngestResult(index, _record_id(record), Outcome.REJECTED, errors, exc.message)
                continue
            events.append(event)
            positions.append(index)
        outcomes = await self._timed_ingest(tenant, events, rejections, now)
        for index, event, outcome in zip(positions, events, outcomes, strict=True):
            message = "the id exists with other content" if outcome is Outcome.CONFLICT else None
            results[index] = IngestResult(index, event.id, outcome, (), message)
        final = [r for r in results if r is not None]
        self.counters.count(surface, final)
        return final

    async def ingest_events(
        self, tenant: str, events: Sequence[UsageEvent], rejections: Sequence[NewRejection] = ()
    ) -> list[Outcome]:
        """Store events a surface has already translated and validated (plus its rejections)."""
        outcomes = await self._timed_ingest(tenant, events, rejections, self.clock())
        for event, outcome in zip(events, outcomes, strict=True):
            key = (event.surface, outcome.value)
            self.counters.outcomes[key] = self.counters.outcomes.get(key, 0) + 1
        return outcomes

    async def _timed_ingest(
        self, tenant: str, events: Sequence[UsageEvent], rejections: Sequence[NewRejection], now: int
    ) -> list[Outcome]:
        started = time.perf_counter()
        try:
            return await self.store.ingest(tenant, events, rejections, now)
        finally:
            self.observe("ingest", time.perf_counter() - started)

    async def reject(self, tenant: str, rejections: Sequence[NewRejection]) -> list[int]:
        """Keep records a surface could not accept."""
        return await self.store.add_rejections(tenant, rejections, self.clock())

    # corrections ---------------------------------------------------------------------------------------
    async def event(self, tenant: str, surface: str, event_id: str) -> StoredEvent:
        stored = await self.store.get_event(tenant, surface, event_id)
        if stored is None:
            raise NotFound(f"no event {event_id!r}")
        return stored

    async def void(self, tenant: str, surface: str, event_id: str, reason: str, key: ApiKey | None) -> Correction:
        return await self.store.void_event(tenant, surface, event_id, reason, key.id if key else None, self.clock())

    async def amend(
        self,
        tenant: str,
        surface: str,
        event_id: str,
        changes: dict[str, Any],
        reason: str,
        key: ApiKey | None,
    ) -> tuple[Correction, StoredEvent]:
        """Void the event and store the original overlaid with ``changes`` as its linked replacement."""
        original = (await self.event(tenant, surface, event_id)).event
        now = self.clock()
        merged = {**native_record(original), "id": None, **changes}
        if merged.get("id") is None:
            merged.pop("id")
        replacement = parse_event(merged, now=now, surface=surface, limits=self.limits)
        if "id" not in changes:
            replacement = replace(replacement, id="")
        correction = await self.store.amend_event(
            tenant, surface, event_id, replacement, reason, key.id if key else None, now
        )
        assert correction.replacement_id is not None
        return correction, await self.event(tenant, surface, correction.replacement_id)

    # query ---------------------------------------------------------------------------------------------
    async def query(self, tenant: str, spec: QuerySpec) -> list[Row]:
        spec.check()
        started = time.perf_counter()
        try:
            return await self.store.query(tenant, spec, self.clock())
        finally:
            self.observe("query", time.perf_counter() - started)


def native_record(event: UsageEvent) -> dict[str, Any]:
    """An event as a native API record (times as epoch seconds with ms precision)."""
    record: dict[str, Any] = {
        "id": event.id,
        "meter": event.meter,
        "customer": event.customer,
        "time": event.time / 1000,
        "value": event.value,
        "dimensions": dict(event.dimensions),
    }
    if event.end_time is not None:
        record["end_time"] = event.end_time / 1000
    return record


def _record_id(record: object) -> str | None:
    if isinstance(record, dict):
        value = record.get("id")
        return value if isinstance(value, str) else None
    return None


def raw_text(record: object) -> str:
    """A record as JSON text for keeping; anything not serialisable is kept as its repr."""
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(record)


def rejection_for(surface: str, record: object, exc: InvalidInput) -> NewRejection:
    """The rejection kept for a record that failed validation."""
    meter = record.get("meter") if isinstance(record, dict) else None
    first = exc.errors[0] if exc.errors else None
    message = f"{first.path}: {first.message}" if first is not None else exc.message
    return NewRejection(
        surface,
        exc.code,
        message,
        raw_text(record),
        meter if isinstance(meter, str) else None,
        _record_id(record),
        tuple(e.as_dict() for e in exc.errors),
    )
