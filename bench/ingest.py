"""Ingest throughput of the SQLite store next to the raw limit of this disk, measured in the same run.

    python bench/ingest.py                       # raw limit + in-process store.ingest, 1M events
    python bench/ingest.py --events 200000 --callers 8
    python bench/ingest.py --http --clients 8    # also through the real server (meterd serve) over HTTP

raw limit: a bare ``executemany`` INSERT OR IGNORE of the same rows into a table with a UNIQUE index on the
uuid4 id, one transaction per batch, WAL + synchronous=NORMAL + 256 MiB cache (reference/limits.md §1a).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import statistics
import time
import uuid
from pathlib import Path

from meterd.core.models import UsageEvent
from meterd.storage.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
T0 = 1_760_000_000_000


def make_events(n: int, seed: int = 1) -> list[UsageEvent]:
    """Live-metering shaped events: 20 meters x 100 customers, region (5) and user (10k) dims, times near now."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(UsageEvent(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"meter_{rng.randrange(20)}",
            f"customer_{rng.randrange(100)}",
            T0 + i * 3,
            float(rng.randrange(1, 100)),
            {"region": f"r{rng.randrange(5)}", "user": f"u{rng.randrange(10_000)}"},
        ))
    return out


def fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def raw_limit(events: list[UsageEvent], batch: int, path: Path) -> float:
    """Rows/s of a bare executemany INSERT OR IGNORE into a UNIQUE(id) table (the machine's ceiling)."""
    import json

    fresh(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TABLE t (id TEXT, meter TEXT, customer TEXT, ts INTEGER, value REAL, dims TEXT)")
    conn.execute("CREATE UNIQUE INDEX t_id ON t (id)")
    rows = [(e.id, e.meter, e.customer, e.time, e.value, json.dumps(e.dimensions)) for e in events]
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO t VALUES (?, ?, ?, ?, ?, ?)", rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    fresh(path)
    return len(rows) / elapsed


async def store_rate(events: list[UsageEvent], batch: int, callers: int, path: Path) -> tuple[float, float, int]:
    """(events/s committed through store.ingest, seconds to finish the rollups after, accepted count)."""
    fresh(path)
    store = SQLiteStore(str(path))
    await store.open()
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    queue = iter(batches)
    accepted = 0

    async def caller() -> None:
        nonlocal accepted
        for b in queue:
            outcomes = await store.ingest("bench", b, now=T0)
            accepted += sum(1 for o in outcomes if o.value == "accepted")

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - start
    t = time.perf_counter()
    await store.roll_up()
    roll = time.perf_counter() - t
    await store.close()
    fresh(path)
    return len(events) / elapsed, roll, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=HERE / "data")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--skip-store", action="store_true", help="skip the in-process store.ingest run")
    parser.add_argument("--http", action="store_true", help="also measure through the HTTP server")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (HTTP mode)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (HTTP mode)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.events:,} events ...", flush=True)
    events = make_events(args.events)
    raw: list[float] = []
    store: list[float] = []
    for rep in range(args.reps):
        if not args.skip_raw:
            raw.append(raw_limit(events, args.batch, args.dir / "raw_limit.db"))
            print(f"[{rep}] raw limit (executemany INSERT OR IGNORE, UNIQUE(id), {args.batch}-row txns): "
                  f"{raw[-1]:,.0f} rows/s", flush=True)
        if args.skip_store:
            continue
        rate, roll, accepted = asyncio.run(store_rate(events, args.batch, args.callers, args.dir / "store.db"))
        store.append(rate)
        print(f"[{rep}] store.ingest, {args.callers} concurrent callers, {args.batch}-event batches: "
              f"{rate:,.0f} events/s ({accepted:,} accepted; final rollup pass {roll:.2f} s)", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench process peak RSS: {peak:.0f} MB (includes the generated events)")
    if raw and store:
        print(f"median: store {statistics.median(store):,.0f} events/s, raw limit {statistics.median(raw):,.0f} "
              f"rows/s, ratio {statistics.median(store) / statistics.median(raw):.2f}")
    if args.http:
        import ingest_http  # bench/ is on sys.path when this file runs as a script

        ingest_http.run(events, args, statistics.median(raw) if raw else None)


if __name__ == "__main__":
    main()
