"""PostgreSQL query benchmark: A1/A2/C1 through PostgresStore.query, next to hand-written SQL on the raw events.

    python bench/pg_query.py --database postgresql://postgres@127.0.0.1:5432/test [--events 10000000]

The dataset follows limits.md section 2 (100 customers x 20 meters, 30 days, dims region (8) and user (10k),
rows in time order). It is written straight into the store's tables with SQL (generate_series), as pending
ingest batches of 100k events (the ingest path is measured by pg_ingest.py), then folded into the rollup cache
by PostgresStore.fold(). Queries:
meter_3 over 30 days by UTC day: A1 sum per customer, A2 sum per customer and region, C1 one customer.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

import psycopg

from meterd.core.query import QuerySpec, Window
from meterd.storage.postgres import PostgresStore

T0 = 1_714_521_600_000
DAY = 86_400_000
# Events i = lo..hi; ingest batches of 100k events (seq = batch << 24 + position), each a pending batch.
LOAD_SQL = """
INSERT INTO events (key, seq, tenant, surface, id, meter, customer, time, value, dims, fp, ingested_at)
SELECT i, (((i - 1) / 100000 + 1) << 24) + (i - 1) % 100000, 'bench', 'native', 'e' || i, 'meter_' || (i % 20),
       'cust_' || ((i / 20) % 100), {t0}::bigint + i * {step}::bigint, (i % 10)::float8,
       json_build_object('region', 'r' || ((i / 2000) % 8), 'user', 'u' || ((i * 7919) % 10000))::text, 'x', 0
FROM generate_series({lo}::bigint, {hi}::bigint) AS i;
INSERT INTO pending (batch, tenant, n)
SELECT (i - 1) / 100000 + 1, 'bench', count(*) FROM generate_series({lo}::bigint, {hi}::bigint) AS i GROUP BY 1;
SELECT setval('events_seq', ({hi}::bigint - 1) / 100000 + 1);
"""
RAW = {
    "A1": "SELECT customer, time / 86400000, sum(value) FROM events WHERE tenant = 'bench' AND meter = 'meter_3' "
          "AND NOT voided AND time >= %s AND time < %s GROUP BY 1, 2",
    "A2": "SELECT customer, dims::json ->> 'region', time / 86400000, sum(value) FROM events WHERE tenant = 'bench' "
          "AND meter = 'meter_3' AND NOT voided AND time >= %s AND time < %s GROUP BY 1, 2, 3",
    "C1": "SELECT time / 86400000, sum(value) FROM events WHERE tenant = 'bench' AND meter = 'meter_3' "
          "AND customer = 'cust_7' AND NOT voided AND time >= %s AND time < %s GROUP BY 1",
}


def specs() -> dict[str, QuerySpec]:
    end = T0 + 30 * DAY
    return {
        "A1": QuerySpec(("meter_3",), T0, end, Window.DAY, group_by=("customer",)),
        "A2": QuerySpec(("meter_3",), T0, end, Window.DAY, group_by=("customer", "region")),
        "C1": QuerySpec(("meter_3",), T0, end, Window.DAY, customers=("cust_7",)),
    }


def timed(fn: object, reps: int) -> float:
    """Median ms of ``reps`` runs after one warm-up."""
    samples = []
    for i in range(reps + 1):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        if i:
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run(args: argparse.Namespace) -> None:
    schema = args.schema or "bench_query_" + secrets.token_hex(4)
    store = PostgresStore(args.database, schema=schema, fold_interval=None, fold_limit=1_000_000)
    await store.open()
    try:
        with psycopg.connect(args.database, autocommit=True, options=f"-c search_path={schema}") as conn:
            count = conn.execute("SELECT count(*) FROM events").fetchone()
            if count is None or count[0] == 0:
                start = time.perf_counter()
                conn.execute("INSERT INTO meters SELECT 'bench', 'meter_' || i, 'sum', NULL, NULL, NULL, '{}', 0 "
                             "FROM generate_series(0, 19) AS i")
                step = 1_000_000
                for lo in range(1, args.events + 1, step):
                    hi = min(lo + step - 1, args.events)
                    conn.execute(LOAD_SQL.format(t0=T0, step=30 * DAY // args.events, lo=lo, hi=hi).encode())
                loaded = time.perf_counter() - start
                start = time.perf_counter()
                folded = await store.fold()
                conn.execute("VACUUM ANALYZE")
                print(f"loaded {args.events:,} events in {loaded:.0f} s; folded {folded:,} in "
                      f"{time.perf_counter() - start:.0f} s")
            bounds = (T0, T0 + 30 * DAY)
            loop = asyncio.get_running_loop()
            for name, spec in specs().items():
                rows: list[object] = []

                def ours(
                    spec: QuerySpec = spec, rows: list[object] = rows, loop: asyncio.AbstractEventLoop = loop
                ) -> None:
                    rows[:] = asyncio.run_coroutine_threadsafe(store.query("bench", spec, 0), loop).result()

                ms = await asyncio.to_thread(timed, ours, args.reps)
                raw_ms = timed(lambda name=name: conn.execute(RAW[name], bounds).fetchall(), args.reps)
                print(f"{name}: PostgresStore.query {ms:8.1f} ms ({len(rows):,} rows)   "
                      f"hand-written SQL on events {raw_ms:8.1f} ms   = {raw_ms / ms:5.1f}x faster")
    finally:
        await store.close()
        if not args.keep and not args.schema:
            with psycopg.connect(args.database, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--schema", help="reuse (or fill) this schema and keep it")
    parser.add_argument("--keep", action="store_true", help="keep the generated schema")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
