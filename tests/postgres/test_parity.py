"""PostgresStore answers exactly as MemoryStore (the executable specification) over random histories.

Histories mix duplicates, conflicts, voids, amendments and rollup folds, so every query path (hourly and
daily rollups, per-dimension rollups, pending events, the reference fold) is compared after each step.
"""

from __future__ import annotations

import random

import pytest

from meterd.core.errors import Conflict, NotFound
from meterd.core.models import Aggregation, Meter, Tenant
from meterd.storage.base import EventFilter
from meterd.storage.memory import MemoryStore
from meterd.storage.postgres import PostgresStore

from .helpers import random_event as make_event
from .helpers import specs

pytestmark = pytest.mark.postgres
TENANT = "acme"


async def compare_queries(pg: PostgresStore, mem: MemoryStore, now: int) -> None:
    for spec in specs(now):
        assert await pg.query(TENANT, spec, now) == await mem.query(TENANT, spec, now), spec


async def compare_events(pg: PostgresStore, mem: MemoryStore) -> None:
    ours = (await pg.list_events(TENANT, EventFilter(), limit=100_000)).items
    theirs = (await mem.list_events(TENANT, EventFilter(), limit=100_000)).items
    assert [(s.event, s.status, s.replaces, s.replaced_by) for s in ours] == [
        (s.event, s.status, s.replaces, s.replaced_by) for s in theirs
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_history_matches_memory(pg_url: str, pg_schema: str, seed: int) -> None:
    rng = random.Random(seed)
    pg = PostgresStore(pg_url, schema=pg_schema, fold_interval=None, rollup_max_values=8)
    await pg.open()
    mem = MemoryStore()
    try:
        for store in (pg, mem):
            await store.create_tenant(Tenant(TENANT, "Acme", 1))
            await store.put_meter(TENANT, Meter("m3", Aggregation.MAX, created_at=1))
        ids = [f"e{i}" for i in range(400)]
        now = 1_800_000_000_000
        for step in range(6):
            batch = []
            for _ in range(rng.randrange(50, 160)):
                event_id = rng.choice(ids)
                known = mem.events.get((TENANT, "native", event_id))
                if known is not None and rng.random() < 0.5:
                    batch.append(known.event)  # an exact duplicate
                else:
                    batch.append(make_event(rng, event_id))
            assert await pg.ingest(TENANT, batch, now=now + step) == await mem.ingest(TENANT, batch, now=now + step)
            await compare_queries(pg, mem, now)
            if step % 2 == 1:
                await pg.fold()
                await compare_queries(pg, mem, now)
            await correct_some(rng, pg, mem, now + step)
            await compare_queries(pg, mem, now)
        await pg.fold()
        await compare_queries(pg, mem, now)
        await compare_events(pg, mem)
    finally:
        await pg.close()


async def correct_some(rng: random.Random, pg: PostgresStore, mem: MemoryStore, now: int) -> None:
    """Void and amend a few events (some already voided or absent) in both stores, expecting the same."""
    live = sorted(k[2] for k, s in mem.events.items() if k[0] == TENANT)
    for _ in range(5):
        event_id = rng.choice([*live, "missing"])
        if rng.random() < 0.5:
            expected = await outcome(mem.void_event(TENANT, "native", event_id, "why", None, now))
            got = await outcome(pg.void_event(TENANT, "native", event_id, "why", None, now))
        else:
            replacement = make_event(rng, "")
            expected = await outcome(mem.amend_event(TENANT, "native", event_id, replacement, "fix", "k1", now))
            got = await outcome(pg.amend_event(TENANT, "native", event_id, replacement, "fix", "k1", now))
        assert got == expected
        assert await pg.list_corrections(TENANT, "native", event_id) == await mem.list_corrections(
            TENANT, "native", event_id
        )


async def outcome(call: object) -> object:
    try:
        return await call  # type: ignore[misc]
    except (NotFound, Conflict) as exc:
        return type(exc).__name__


async def test_rollup_plans_cover_the_dashboard_shapes(pg_store: PostgresStore) -> None:
    """Daily per customer, per region and one customer come from the rollup; unique counts do not."""
    from meterd.core.query import QuerySpec, Window
    from meterd.storage.postgres_fold import LVL_DAY, LVL_HOUR
    from meterd.storage.postgres_query import choose_plan

    from .helpers import DAY, T0

    rng = random.Random(7)
    await pg_store.ingest(TENANT, [make_event(rng, f"e{i}") for i in range(1500)], now=1)
    await pg_store.fold()
    meters = {m.key: m for m in await pg_store.list_meters(TENANT)}

    async def plan(spec: QuerySpec) -> tuple[int, str] | None:
        found = await pg_store._run(lambda conn: choose_plan(conn, TENANT, spec, meters))
        return None if found is None else (found.lvl, found.dkey)

    end = T0 + 10 * DAY
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, group_by=("customer",))) == (LVL_DAY, "")
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, group_by=("customer", "region"))) == (LVL_DAY, "region")
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, customers=("c1",))) == (LVL_DAY, "")
    assert await plan(QuerySpec(("m1",), T0, end, Window.HOUR, group_by=("customer",))) == (LVL_HOUR, "")
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, "Europe/Berlin")) == (LVL_HOUR, "")
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, group_by=("user",))) is None  # 40 values > 32
    assert await plan(QuerySpec(("m2",), T0, end, Window.DAY, group_by=("tier",))) is None  # True clashes with 1
    assert await plan(QuerySpec(("m1",), T0, end, Window.DAY, aggregation=Aggregation.UNIQUE_COUNT)) is None


async def test_nul_in_dimension_keys_and_values_round_trips_and_rolls_up(pg_url: str, pg_schema: str) -> None:
    """Key names with NUL cannot go through PostgreSQL's JSON functions: the rollup reads a sanitized copy."""
    from meterd.core.models import UsageEvent
    from meterd.core.query import DimensionFilter, FilterOp, QuerySpec, Window

    from .helpers import DAY, T0

    pg = PostgresStore(pg_url, schema=pg_schema, fold_interval=None)
    await pg.open()
    mem = MemoryStore()
    try:
        events = [
            UsageEvent("n1", "m1", "c1", T0, 1.0, {"a\x00b": "x", "region": "eu"}),
            UsageEvent("n2", "m1", "c1", T0 + 1, 2.0, {"region": "e\x00u"}),
            UsageEvent("n3", "m1", "c2", T0 + 2, 4.0, {"region": "eu", "\x00": 1}),
        ]
        for store in (pg, mem):
            await store.create_tenant(Tenant(TENANT, "Acme", 1))
        by_region = QuerySpec(("m1",), T0, T0 + DAY, Window.DAY, group_by=("customer", "region"))
        by_nul_key = QuerySpec(("m1",), T0, T0 + DAY, Window.DAY, group_by=("a\x00b",))
        nul_value = DimensionFilter("region", FilterOp.IN, ("e\x00u",))
        only_nul = QuerySpec(("m1",), T0, T0 + DAY, Window.DAY, group_by=("customer",), filters=(nul_value,))
        await pg.ingest(TENANT, [UsageEvent("r1", "m1", "c1", T0 + 5, 8.0, {"region": "eu"})], now=1)
        await mem.ingest(TENANT, [UsageEvent("r1", "m1", "c1", T0 + 5, 8.0, {"region": "eu"})], now=1)
        assert await pg.fold() == 1  # region is rolled up now; the next events wait in pending
        for store in (pg, mem):
            await store.ingest(TENANT, events, now=1)
        for spec in (by_region, by_nul_key, only_nul):
            assert await pg.query(TENANT, spec, 1) == await mem.query(TENANT, spec, 1)
        assert await pg.fold() == 3
        for spec in (by_region, by_nul_key, only_nul):
            assert await pg.query(TENANT, spec, 1) == await mem.query(TENANT, spec, 1)
        for e in events:
            stored = await pg.get_event(TENANT, "native", e.id)
            assert stored is not None and stored.event == e
        await pg.void_event(TENANT, "native", "n1", "why", None, 2)
        await mem.void_event(TENANT, "native", "n1", "why", None, 2)
        assert await pg.query(TENANT, by_region, 1) == await mem.query(TENANT, by_region, 1)
    finally:
        await pg.close()
