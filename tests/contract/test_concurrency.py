"""Contract: concurrent ingest calls with overlapping ids accept each id exactly once."""

from __future__ import annotations

import asyncio
import random

from meterd.core.models import Outcome, UsageEvent
from meterd.core.query import QuerySpec
from meterd.storage.base import EventFilter, Store

T0 = 1_717_200_000_000


async def test_concurrent_ingest_accepts_each_id_once(store: Store) -> None:
    rng = random.Random(7)
    ids = [f"id-{i}" for i in range(300)]
    batches = [[UsageEvent(i, "calls", f"c{int(i[3:]) % 5}", T0 + int(i[3:]) * 1000, 1.0)
                for i in rng.sample(ids, 60)] for _ in range(40)]
    results = await asyncio.gather(*(store.ingest("t", b, now=T0) for b in batches))
    accepted: dict[str, int] = {}
    for batch, outcomes in zip(batches, results, strict=True):
        assert len(outcomes) == len(batch)
        assert set(outcomes) <= {Outcome.ACCEPTED, Outcome.DUPLICATE}
        for event, outcome in zip(batch, outcomes, strict=True):
            accepted[event.id] = accepted.get(event.id, 0) + (outcome is Outcome.ACCEPTED)
    sent = {e.id for b in batches for e in b}
    assert accepted == {i: 1 for i in sent}
    page = await store.list_events("t", EventFilter(), limit=1000)
    assert sorted(s.event.id for s in page.items) == sorted(sent)
    rows = await store.query("t", QuerySpec(("calls",), T0, T0 + 10**9), now=T0)
    assert rows[0].value == float(len(sent))


async def test_concurrent_conflicting_versions_keep_exactly_one(store: Store) -> None:
    versions = [[UsageEvent("same", "calls", "c", T0, float(v))] for v in range(20)]
    results = await asyncio.gather(*(store.ingest("t", b, now=T0) for b in versions))
    flat = [r[0] for r in results]
    assert flat.count(Outcome.ACCEPTED) == 1
    assert flat.count(Outcome.CONFLICT) == 19
    winner = flat.index(Outcome.ACCEPTED)
    stored = await store.get_event("t", "native", "same")
    assert stored is not None and stored.event.value == float(winner)
    assert len((await store.list_rejections("t")).items) == 19
