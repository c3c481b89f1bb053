"""Many processes on one database: exactly-once ingest, safe concurrent migrations, exact queries mid-ingest."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest

from meterd.core.models import Tenant
from meterd.core.query import QuerySpec, Window
from meterd.storage.postgres import PostgresStore

from .helpers import DAY, T0
from .workers import TENANT, content, ingest_grid, ingest_overlapping, open_store

pytestmark = pytest.mark.postgres
SPAWN = multiprocessing.get_context("spawn")


@pytest.mark.parametrize("key_bits", [64, 13])
async def test_overlapping_batches_from_many_processes_store_each_id_once(
    pg_url: str, pg_schema: str, key_bits: int
) -> None:
    """4 processes send overlapping batches at once (13-bit keys force dedup-key collisions and probing)."""
    ids, workers = 1500, 4
    store = PostgresStore(pg_url, schema=pg_schema, fold_interval=None, key_bits=key_bits)
    await store.open()
    try:
        await store.create_tenant(Tenant(TENANT, "Acme", 1))
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers, mp_context=SPAWN) as pool:
            futures = [
                loop.run_in_executor(pool, ingest_overlapping, pg_url, pg_schema, w, ids, 25, key_bits)
                for w in range(workers)
            ]
            results = await asyncio.gather(*futures)
        outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        for seen in results:
            for event_id, outcome in seen:
                outcomes[event_id][outcome] += 1
        for event_id, counts in outcomes.items():
            assert counts["accepted"] == 1, (event_id, counts)
            if int(event_id[1:]) % 5:
                assert counts["conflict"] == 0, (event_id, counts)
        stored = {}
        for event_id in outcomes:
            found = await store.get_event(TENANT, "native", event_id)
            assert found is not None
            stored[event_id] = found.event
        # whoever won, every other worker's differing copy was reported as a conflict
        conflicts = sum(c["conflict"] for c in outcomes.values())
        expected = sum(
            1
            for w, seen in enumerate(results)
            for event_id, _ in seen
            if stored[event_id].value != content(int(event_id[1:]), w).value
        )
        assert conflicts == expected > 0
        with psycopg.connect(pg_url) as conn:
            total = conn.execute(f'SELECT count(*) FROM "{pg_schema}".events').fetchone()
            rejected = conn.execute(
                f"SELECT count(*) FROM \"{pg_schema}\".rejections WHERE code = 'conflict'"
            ).fetchone()
        assert total == (len(outcomes),)
        assert rejected == (conflicts,)
        await store.fold()
        spec = QuerySpec(("m1",), T0, T0 + DAY, Window.NONE)
        rows = await store.query(TENANT, spec, 0)
        assert rows[0].value == sum(e.value for e in stored.values())
    finally:
        await store.close()


async def test_several_processes_migrate_one_schema_at_once(pg_url: str, pg_schema: str) -> None:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(4, mp_context=SPAWN) as pool:
        results = await asyncio.gather(*[loop.run_in_executor(pool, open_store, pg_url, pg_schema) for _ in range(4)])
    assert results == [True] * 4
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f'SELECT version, count(*) FROM "{pg_schema}".schema_migrations GROUP BY 1').fetchall()
    assert rows and all(n == 1 for _, n in rows)


async def test_queries_stay_exact_while_another_process_ingests_and_folds(pg_url: str, pg_schema: str) -> None:
    """Every batch adds exactly 1 to every (customer, day) cell; any torn read would show unequal cells."""
    customers, days, rounds = 12, 6, 30
    store = PostgresStore(pg_url, schema=pg_schema, fold_interval=None)
    await store.open()
    try:
        daily = QuerySpec(("m1",), T0, T0 + days * DAY, Window.DAY, group_by=("customer",))
        by_region = QuerySpec(("m1",), T0, T0 + days * DAY, Window.DAY, group_by=("region",))
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
            job = loop.run_in_executor(pool, ingest_grid, pg_url, pg_schema, rounds, customers, days)
            seen = set()
            while not job.done():
                rows = await store.query(TENANT, daily, 0)
                values = {r.value for r in rows}
                assert len(values) <= 1, values
                if rows:
                    assert len(rows) == customers * days
                    seen.add(rows[0].value)
                    region_values = {r.value for r in await store.query(TENANT, by_region, 0)}
                    assert len(region_values) == 1, region_values  # a later snapshot: its own whole rounds
                    assert region_values.pop() % (customers // 2) == 0
                await asyncio.sleep(0.005)
            assert await job == rounds
        final = await store.query(TENANT, daily, 0)
        assert {r.value for r in final} == {float(rounds)}
        assert len(seen) > 2  # the queries really ran while ingest was going on
    finally:
        await store.close()
