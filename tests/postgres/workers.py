"""Code run in separate processes by the concurrency tests (each process opens its own PostgresStore)."""

from __future__ import annotations

import asyncio
import random

from meterd.core.models import UsageEvent
from meterd.storage.postgres import PostgresStore

from .helpers import DAY, T0

TENANT = "acme"


def content(event_id: int, worker: int) -> UsageEvent:
    """Ids divisible by 5 get worker-specific content (conflicts); the others the same everywhere."""
    value = float(worker if event_id % 5 == 0 else 1)
    return UsageEvent(f"e{event_id}", "m1", f"c{event_id % 7}", T0 + event_id * 1000, value, {"region": "eu"})


def ingest_overlapping(
    url: str, schema: str, worker: int, ids: int, batches: int, key_bits: int
) -> list[tuple[str, str]]:
    """Send ``batches`` random batches over a shared id space; every (id, outcome) seen."""

    async def run() -> list[tuple[str, str]]:
        store = PostgresStore(url, schema=schema, pool_size=2, fold_interval=0.05, key_bits=key_bits)
        await store.open()
        rng = random.Random(worker)
        seen: list[tuple[str, str]] = []
        try:
            for _ in range(batches):
                batch = [content(rng.randrange(ids), worker) for _ in range(rng.randrange(20, 200))]
                outcomes = await store.ingest(TENANT, batch, now=1)
                seen.extend((e.id, o.value) for e, o in zip(batch, outcomes, strict=True))
        finally:
            await store.close()
        return seen

    return asyncio.run(run())


def open_store(url: str, schema: str) -> bool:
    """Open (and so migrate) the store; True when it answered."""

    async def run() -> bool:
        store = PostgresStore(url, schema=schema, fold_interval=None)
        await store.open()
        try:
            await store.ping()
            return True
        finally:
            await store.close()

    return asyncio.run(run())


def grid_batch(round_no: int, customers: int, days: int) -> list[UsageEvent]:
    """One event per (customer, day) cell: every consistent snapshot has the same count in every cell."""
    return [
        UsageEvent(
            f"r{round_no}-c{c}-d{d}",
            "m1",
            f"c{c}",
            T0 + d * DAY + round_no * 1000,
            1.0,
            {"region": "eu" if c % 2 else "us"},
        )
        for c in range(customers)
        for d in range(days)
    ]


def ingest_grid(url: str, schema: str, rounds: int, customers: int, days: int) -> int:
    """Ingest ``rounds`` grid batches (each sent twice: the resend must be all duplicates) while folding."""

    async def run() -> int:
        store = PostgresStore(url, schema=schema, pool_size=2, fold_interval=0.02)
        await store.open()
        try:
            for r in range(rounds):
                batch = grid_batch(r, customers, days)
                first = await store.ingest(TENANT, batch, now=1)
                again = await store.ingest(TENANT, batch, now=1)
                assert {o.value for o in first} == {"accepted"} and {o.value for o in again} == {"duplicate"}
            await store.fold()
        finally:
            await store.close()
        return rounds

    return asyncio.run(run())
