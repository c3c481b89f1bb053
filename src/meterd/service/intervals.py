"""Recording interval usage events from open/close claims that arrive in any order, replayed or not.

The rules are :func:`meterd.core.intervals.merge`'s. Storage: an event whose open is known is a core usage
event (value 1, ``end_time`` None while open) closed later with ``Store.close_interval``; a close that comes
before its open is kept as an ``interval.pending_close`` object until the open arrives, and the event is then
stored with both times. Each claim is decided and written holding the event id's lock, so concurrent opens,
closes and replays of one id (from any number of server processes) see each other's writes. Conflicts are
kept as rejections and raised as :class:`~meterd.core.errors.Conflict` (409).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meterd.core.errors import Conflict
from meterd.core.intervals import Claim, Verdict, merge
from meterd.core.models import Aggregation, Dimensions, Meter, Outcome, UsageEvent
from meterd.service.locks import held
from meterd.service.meterd import Meterd
from meterd.storage.base import NewRejection

PENDING = "interval.pending_close"


@dataclass(frozen=True, slots=True)
class IntervalRequest:
    """One open, close or open+close of interval event ``id`` as a surface decoded it; ``raw`` is kept."""

    surface: str
    id: str
    meter: str
    customer: str
    start: int | None
    stop: int | None
    detail: Dimensions | None
    raw: str

    def claim(self) -> Claim:
        return Claim((self.meter, self.customer), self.start, self.stop, self.detail)


def claim_of(event: UsageEvent) -> Claim:
    """What a stored event says about its interval."""
    return Claim((event.meter, event.customer), event.time, event.end_time, dict(event.dimensions))


def _pending_key(surface: str, event_id: str) -> str:
    return f"{surface}:{event_id}"


def _pending_claim(doc: dict[str, Any]) -> Claim:
    return Claim((str(doc["meter"]), str(doc["customer"])), None, int(doc["stop"]), None)


async def record_interval(meterd: Meterd, tenant: str, request: IntervalRequest) -> Outcome:
    """Apply one claim: ``accepted`` when it changed something, ``duplicate`` for a replay; Conflict otherwise."""
    claim = request.claim()
    claim.check()
    key = _pending_key(request.surface, request.id)
    async with held(meterd.store, tenant, f"interval:{key}", meterd.clock):
        return await _apply(meterd, tenant, request, claim, key)


async def _apply(meterd: Meterd, tenant: str, request: IntervalRequest, claim: Claim, key: str) -> Outcome:
    store = meterd.store
    stored = await store.get_event(tenant, request.surface, request.id)
    pending = None if stored is not None else await store.get_object(tenant, PENDING, key)
    known = claim_of(stored.event) if stored is not None else _pending_claim(pending) if pending else None
    result = merge(known, claim)
    if result.verdict is Verdict.CONFLICT:
        await _keep_conflict(meterd, tenant, request, result.reason)
        raise Conflict(f"event {request.id!r}: {result.reason}")
    if result.verdict is Verdict.SAME:
        return Outcome.DUPLICATE
    merged = result.merged
    if stored is not None:  # the stored open gets its stop
        assert merged.stop is not None
        outcome = await store.close_interval(tenant, request.surface, request.id, merged.stop, meterd.clock())
        if outcome is Outcome.CONFLICT:
            raise Conflict(f"event {request.id!r} was closed at another time")
        return outcome
    if merged.start is None:  # a close before its open: keep it until the open arrives
        body = {"meter": request.meter, "customer": request.customer, "stop": merged.stop, "raw": request.raw}
        await store.put_object(tenant, PENDING, key, body)
        return Outcome.ACCEPTED
    await _ensure_duration_meter(meterd, tenant, request.meter)
    event = UsageEvent(
        request.id,
        request.meter,
        request.customer,
        merged.start,
        1.0,
        dict(merged.detail or {}),
        merged.stop,
        request.surface,
        request.raw,
    )
    (outcome,) = await meterd.ingest_events(tenant, [event])
    if outcome is Outcome.CONFLICT:
        raise Conflict(f"event {request.id!r} exists with other content")
    if pending is not None:
        await store.delete_object(tenant, PENDING, key)
    return outcome


async def _keep_conflict(meterd: Meterd, tenant: str, request: IntervalRequest, reason: str) -> None:
    message = f"event {request.id!r}: {reason}"
    await meterd.reject(
        tenant, [NewRejection(request.surface, "conflict", message, request.raw, request.meter, request.id)]
    )


async def _ensure_duration_meter(meterd: Meterd, tenant: str, key: str) -> None:
    """Interval products are measured in seconds of use: a new product's meter aggregates by duration."""
    if await meterd.store.get_meter(tenant, key) is None:
        meter = Meter(key, Aggregation.DURATION, unit="s", description="interval usage", created_at=meterd.clock())
        await meterd.store.put_meter(tenant, meter)


def raw_request(method: str, path: str, body: bytes) -> str:
    """The text kept as a request's raw payload."""
    return json.dumps({"method": method, "path": path, "body": body.decode("utf-8", "replace")}, ensure_ascii=False)
