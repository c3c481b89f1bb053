"""Query latency of the SQLite store on the 10M-event set, next to hand-written SQL over a covering index.

    python bench/query.py                    # 10M events (first run builds bench/data/*.db: takes a while)
    python bench/query.py --events 500000    # a quick run
    python bench/query.py --reps 7 --only A1,C1

The data set (deterministic): 100 customers x 20 meters, dims region (5 values) and user (10,000 values),
30 days (June 2024, UTC), events in time order. It is loaded through ``SQLiteStore.ingest`` (50k-event batches)
so rollups are built as in production; the raw side file holds the same rows in a plain table with the
covering index of reference/limits.md §2 (no ANALYZE), queried with hand-written SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from meterd.core.models import Aggregation, UsageEvent
from meterd.core.query import QuerySpec, Take
from meterd.core.windows import Window
from meterd.storage.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
START = 1_717_200_000_000  # 2024-06-01T00:00:00Z
DAYS = 30
END = START + DAYS * 86_400_000
METER, CUSTOMER = "meter_3", "customer_42"
BATCH = 50_000


def generate(n: int, seed: int = 7) -> Iterator[list[tuple[str, str, str, int, float, str, str]]]:
    """Batches of (id, meter, customer, time, value, region, user), deterministic, in time order."""
    rng = random.Random(seed)
    span = END - START
    batch = []
    for i in range(n):
        batch.append((
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"meter_{rng.randrange(20)}",
            f"customer_{rng.randrange(100)}",
            START + i * span // n,
            float(rng.randrange(1, 100)),
            f"r{rng.randrange(5)}",
            f"u{rng.randrange(10_000)}",
        ))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def build_store(path: Path, n: int) -> None:
    store = SQLiteStore(str(path))
    await store.open()
    started = time.perf_counter()
    done = 0
    for batch in generate(n):
        events = [UsageEvent(i, m, c, t, v, {"region": r, "user": u}) for i, m, c, t, v, r, u in batch]
        await store.ingest("bench", events, now=END)
        done += len(events)
        if done % 1_000_000 == 0:
            print(f"  store: {done:,} events ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)
    await store.roll_up()
    await store.close()
    print(f"  store built in {time.perf_counter() - started:.0f} s", flush=True)


def build_raw(path: Path, n: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TABLE raw (id TEXT, meter TEXT, customer TEXT, ts INTEGER, value REAL, dims TEXT)")
    started = time.perf_counter()
    for batch in generate(n):
        rows = [(i, m, c, t, v, json.dumps({"region": r, "user": u})) for i, m, c, t, v, r, u in batch]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.execute("CREATE INDEX raw_cover ON raw (meter, customer, ts, value, dims)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"  raw side file built in {time.perf_counter() - started:.0f} s", flush=True)


def spec(**kw: object) -> QuerySpec:
    base: dict[str, object] = {"meters": (METER,), "start": START, "end": END, "window": Window.DAY,
                               "group_by": ("customer",)}
    base.update(kw)
    return QuerySpec(**base)  # type: ignore[arg-type]


QUERIES: dict[str, tuple[QuerySpec, str, tuple[object, ...]]] = {
    "A1": (spec(),
           "SELECT customer, ts / 86400000, sum(value) FROM raw WHERE meter = ? AND ts >= ? AND ts < ? "
           "GROUP BY 1, 2", (METER, START, END)),
    "A2": (spec(group_by=("customer", "region")),
           "SELECT customer, json_extract(dims, '$.region'), ts / 86400000, sum(value) FROM raw WHERE meter = ? "
           "AND ts >= ? AND ts < ? GROUP BY 1, 2, 3", (METER, START, END)),
    "A3": (spec(aggregation=Aggregation.UNIQUE_COUNT, unique_dimension="user"),
           "SELECT customer, ts / 86400000, count(DISTINCT json_extract(dims, '$.user')) FROM raw WHERE meter = ? "
           "AND ts >= ? AND ts < ? GROUP BY 1, 2", (METER, START, END)),
    "C1": (spec(customers=(CUSTOMER,), group_by=()),
           "SELECT ts / 86400000, sum(value) FROM raw WHERE meter = ? AND customer = ? AND ts >= ? AND ts < ? "
           "GROUP BY 1", (METER, CUSTOMER, START, END)),
    "T": (spec(window=Window.MONTH, take=Take(10)),
          "SELECT customer, sum(value) AS s FROM raw WHERE meter = ? AND ts >= ? AND ts < ? GROUP BY 1 "
          "ORDER BY s DESC LIMIT 10", (METER, START, END)),
}


async def median_ms(fn: Callable[[], Awaitable[object]], reps: int) -> float:
    await fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def run(store_path: Path, raw_path: Path, reps: int, only: list[str]) -> None:
    store = SQLiteStore(str(store_path))
    await store.open()
    raw = sqlite3.connect(raw_path)
    raw.execute("PRAGMA cache_size = -262144")

    async def raw_query(sql: str, params: tuple[object, ...]) -> object:
        return raw.execute(sql, params).fetchall()

    print(f"{'query':6} {'store.query ms':>15} {'raw SQL ms':>11} {'raw/store':>10}  rows")
    for name in only:
        q, sql, params = QUERIES[name]
        rows = await store.query("bench", q, END)
        store_ms = await median_ms(lambda q=q: store.query("bench", q, END), reps)  # type: ignore[misc]
        raw_ms = await median_ms(lambda sql=sql, params=params: raw_query(sql, params), reps)  # type: ignore[misc]
        print(f"{name:6} {store_ms:15.1f} {raw_ms:11.1f} {raw_ms / store_ms:10.1f}x  {len(rows)}", flush=True)
    raw.close()
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=HERE / "data")
    parser.add_argument("--only", default=",".join(QUERIES))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    store_path = args.dir / f"query_store_{args.events}.db"
    raw_path = args.dir / f"query_raw_{args.events}.db"
    if not store_path.exists():
        print(f"building {store_path} through SQLiteStore.ingest ...", flush=True)
        asyncio.run(build_store(Path(str(store_path) + ".tmp"), args.events))
        Path(str(store_path) + ".tmp").rename(store_path)
    if not raw_path.exists():
        print(f"building {raw_path} ...", flush=True)
        build_raw(Path(str(raw_path) + ".tmp"), args.events)
        Path(str(raw_path) + ".tmp").rename(raw_path)
    asyncio.run(run(store_path, raw_path, args.reps, args.only.split(",")))


if __name__ == "__main__":
    main()
