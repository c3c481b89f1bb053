"""PostgreSQL ingest benchmark: PostgresStore.ingest from N processes, next to the raw COPY + ON CONFLICT limit.

    python bench/pg_ingest.py --database postgresql://postgres@127.0.0.1:5432/test [--events 400000]
        [--processes 2] [--concurrency 4] [--batch 1000] [--repeat 0.2]

Both figures are measured in the same run and schema family: the raw limit is one connection doing
COPY into a temp table + INSERT ... ON CONFLICT (id) DO NOTHING into a table with UNIQUE(id) (uuid4 text ids),
as in limits.md section 1b; the store figure includes everything ingest does (dedup key, outcomes, pending
rollup rows, meters, stats), with ``--repeat`` of the ids sent again.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import secrets
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import psycopg

from meterd.core.models import UsageEvent
from meterd.storage.postgres import PostgresStore

T0 = 1_714_521_600_000


def make_events(n: int, seed: int, repeat: float) -> list[UsageEvent]:
    rng = random.Random(seed)
    out: list[UsageEvent] = []
    for i in range(n):
        if out and rng.random() < repeat:
            out.append(out[rng.randrange(len(out))])
            continue
        dims = {"region": f"r{rng.randrange(8)}", "user": f"u{rng.randrange(10_000)}"}
        out.append(UsageEvent(str(uuid.uuid4()), f"meter_{rng.randrange(20)}", f"cust_{rng.randrange(100)}",
                              T0 + i * 1000 // 4, float(rng.randrange(100)), dims))
    return out


def raw_limit(url: str, n: int, batch: int) -> float:
    """Rows/s of COPY -> temp table -> INSERT ... ON CONFLICT DO NOTHING into UNIQUE(id text), one connection."""
    schema = "bench_raw_" + secrets.token_hex(4)
    rows = [(str(uuid.uuid4()), f"meter_{i % 20}", f"cust_{i % 100}", T0 + i, 1.5, '{"region":"r1","user":"u1"}')
            for i in range(n)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"CREATE TABLE {schema}.ev (id text UNIQUE, meter text, customer text, ts bigint, "
                         "value float8, dims jsonb)")
            conn.execute("CREATE TEMP TABLE st (id text, meter text, customer text, ts bigint, value float8, "
                         "dims jsonb) ON COMMIT DELETE ROWS")
            start = time.perf_counter()
            for i in range(0, n, batch):
                with conn.transaction():
                    with conn.cursor().copy("COPY st FROM STDIN") as copy:
                        for row in rows[i:i + batch]:
                            copy.write_row(row)
                    conn.execute(f"INSERT INTO {schema}.ev SELECT * FROM st ON CONFLICT (id) DO NOTHING")
            return n / (time.perf_counter() - start)
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def worker(url: str, schema: str, n: int, seed: int, batch: int, concurrency: int, repeat: float,
           barrier_at: float, fold: float | None) -> tuple[int, int, float, float]:
    """Ingest n events with ``concurrency`` tasks; (accepted, events sent, start, end)."""
    events = make_events(n, seed, repeat)

    async def run() -> tuple[int, int, float, float]:
        store = PostgresStore(url, schema=schema, pool_size=concurrency, fold_interval=fold)
        await store.open()
        batches = [events[i:i + batch] for i in range(0, n, batch)]
        accepted = 0

        async def task(k: int) -> None:
            nonlocal accepted
            for b in batches[k::concurrency]:
                outcomes = await store.ingest("bench", b, now=1)
                accepted += sum(o.value == "accepted" for o in outcomes)

        while time.time() < barrier_at:
            await asyncio.sleep(0.01)
        start = time.time()
        await asyncio.gather(*(task(k) for k in range(concurrency)))
        end = time.time()
        await store.close()
        return accepted, n, start, end

    return asyncio.run(run())


def store_rate(url: str, args: argparse.Namespace) -> tuple[float, int, int]:
    schema = "bench_store_" + secrets.token_hex(4)
    asyncio.run(prepare(url, schema))
    per = args.events // args.processes
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(args.processes, mp_context=ctx) as pool:
            at = time.time() + 8  # time for every process to build its events and connect
            futures = [pool.submit(worker, url, schema, per, seed, args.batch, args.concurrency, args.repeat, at,
                                   args.fold_interval if args.fold_interval > 0 else None)
                       for seed in range(args.processes)]
            results = [f.result() for f in futures]
        accepted = sum(r[0] for r in results)
        sent = sum(r[1] for r in results)
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        with psycopg.connect(url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {schema}.events").fetchone()
        assert row is not None and row[0] == accepted, (row, accepted)
        return sent / elapsed, accepted, sent
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def prepare(url: str, schema: str) -> None:
    store = PostgresStore(url, schema=schema, fold_interval=None)
    await store.open()
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=float, default=0.0)
    parser.add_argument("--fold-interval", type=float, default=0.5, help="rollup fold period (0: no folding)")
    args = parser.parse_args()
    raw = raw_limit(args.database, min(args.events, 300_000), 10_000)
    rate, accepted, sent = store_rate(args.database, args)
    print(f"raw limit  COPY+ON CONFLICT uuid4, 1 conn, 10k txns : {raw:>10,.0f} rows/s")
    print(f"PostgresStore.ingest {args.processes} proc x {args.concurrency} tasks, "
          f"batch {args.batch}: {rate:>10,.0f} events/s ({accepted:,} accepted of {sent:,} sent) "
          f"= {rate / raw:.2f}x raw")


if __name__ == "__main__":
    main()
