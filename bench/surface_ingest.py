"""Ingest through the Amberflo and OpenMeter surfaces, next to the native route and the store's own limit.

    python bench/surface_ingest.py [--events 20000] [--batch 500] [--database memory://]

Every figure is events/s over the same number of events in the same run, each on a fresh store of the same
kind, in process (httpx over ASGI, no sockets): ``store`` calls Store.ingest with pre-built events (the raw
limit the surfaces sit on), ``native`` posts JSON to /v1/events, ``amberflo`` posts gzip meter records to
/ingest, ``openmeter`` posts CloudEvents to /api/v1/events with one matching meter (two stored events per
CloudEvent: the kept event and its usage). With a PostgreSQL URL each figure gets a fresh schema, dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from meterd.core.models import UsageEvent
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store

T0 = 1_714_521_600_000
Run = Callable[[httpx.AsyncClient, Any, int, int], Awaitable[None]]


def native_batch(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"n{i}",
            "meter": "calls",
            "customer": f"c{i % 100}",
            "time": (T0 + i) / 1000,
            "value": 1,
            "dimensions": {"region": f"r{i % 8}"},
        }
        for i in range(start, start + n)
    ]


def amberflo_batch(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "uniqueId": f"u{i}",
            "meterApiName": "calls",
            "meterValue": 1,
            "customerId": f"c{i % 100}",
            "meterTimeInMillis": T0 + i,
            "dimensions": {"region": f"r{i % 8}"},
        }
        for i in range(start, start + n)
    ]


def cloudevent_batch(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "source": "bench",
            "specversion": "1.0",
            "type": "call",
            "subject": f"c{i % 100}",
            "time": "2024-05-01T00:00:00Z",
            "data": {"n": 1, "region": f"r{i % 8}"},
        }
        for i in range(start, start + n)
    ]


async def run_store(client: httpx.AsyncClient, app: Any, total: int, batch: int) -> None:
    store = app.state.meterd.store
    for start in range(0, total, batch):
        events = [
            UsageEvent(f"s{i}", "calls", f"c{i % 100}", T0 + i, 1.0, {"region": f"r{i % 8}"})
            for i in range(start, min(start + batch, total))
        ]
        await store.ingest("default", events, (), T0)


async def run_native(client: httpx.AsyncClient, app: Any, total: int, batch: int) -> None:
    for start in range(0, total, batch):
        r = await client.post("/v1/events", json=native_batch(start, min(batch, total - start)))
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == min(batch, total - start)


async def run_amberflo(client: httpx.AsyncClient, app: Any, total: int, batch: int) -> None:
    for start in range(0, total, batch):
        body = gzip.compress(json.dumps(amberflo_batch(start, min(batch, total - start))).encode())
        r = await client.post("/ingest/", content=body, headers={"content-encoding": "gzip"})
        assert r.status_code == 200, r.text


async def run_openmeter(client: httpx.AsyncClient, app: Any, total: int, batch: int) -> None:
    meter = {
        "slug": "calls_om",
        "eventType": "call",
        "aggregation": "SUM",
        "valueProperty": "$.n",
        "groupBy": {"region": "$.region"},
    }
    assert (await client.post("/api/v1/meters", json=meter)).status_code == 201
    for start in range(0, total, batch):
        body = json.dumps(cloudevent_batch(start, min(batch, total - start)))
        r = await client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 204, r.text


def fresh(database: str, index: int) -> tuple[str, str | None]:
    """A database URL for one figure: its own schema on PostgreSQL (returned for dropping), else as given."""
    if not database.startswith(("postgresql://", "postgres://")):
        return database, None
    schema = f"bench_surface_{secrets.token_hex(3)}_{index}"
    return f"{database}{'&' if '?' in database else '?'}schema={schema}", schema


def drop(database: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def measure(database: str, run: Run, total: int, batch: int) -> float:
    app = create_app(Settings(database_url=database), store=create_store(database))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        headers = {"authorization": f"Bearer {key}", "x-api-key": key}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
            started = time.perf_counter()
            await run(client, app, total, batch)
            return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database", default="memory://")
    args = parser.parse_args()
    runs: list[tuple[str, Run]] = [
        ("store (raw limit)", run_store),
        ("native /v1/events", run_native),
        ("amberflo /ingest", run_amberflo),
        ("openmeter /api/v1/events", run_openmeter),
    ]
    print(f"{args.events} events in batches of {args.batch} on {args.database}")
    limit = 0.0
    for index, (name, run) in enumerate(runs):
        url, schema = fresh(args.database, index)
        try:
            rate = asyncio.run(measure(url, run, args.events, args.batch))
        finally:
            if schema is not None:
                drop(args.database, schema)
        limit = limit or rate
        print(f"{name:28s} {rate:12,.0f} events/s   {rate / limit:6.1%} of the store's limit")


if __name__ == "__main__":
    main()
