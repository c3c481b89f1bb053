"""AMIE and influx ingest over real HTTP, next to the raw limit of the same store measured in the same run.

Run by hand:  .venv/bin/python bench/amie_influx.py [--database PATH|memory://|postgresql://…] [--records 20000]
Prints records/s for AMIE sends (1900 Compute records a message, amieclient's largest safe size), events/s
for influx stats (100 stats x 5 values a request), and events/s of ``store.ingest`` of the same events.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from meterd.core.amie_records import COMPUTE, to_event, validate
from meterd.core.timeutil import format_ms
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.service import Meterd
from meterd.storage.factory import create_store

JAN = 1_704_067_200_000


def compute(i: int) -> dict[str, Any]:
    start = JAN + i * 1000
    return {
        "Username": "alice",
        "LocalProjectID": f"p{i % 50}",
        "LocalRecordID": f"job-{i:08d}",
        "Resource": f"r{i % 3}",
        "SubmitTime": format_ms(start),
        "StartTime": format_ms(start),
        "EndTime": format_ms(start + 3_600_000),
        "Charge": "1.5",
        "Attributes": {"NodeCount": "2", "CpuCoreCount": "64", "Queue": "normal"},
        "ParentRecordID": [None],
    }


def fresh_database(given: str | None, schemas: list[str]) -> str:
    """A new empty database per run: a PostgreSQL schema (dropped at the end), a SQLite file, or memory."""
    if given and given.startswith(("postgresql://", "postgres://")):
        schema = "bench_amie_" + secrets.token_hex(4)
        schemas.append(schema)
        return f"{given}{'&' if '?' in given else '?'}schema={schema}"
    return given or default_database()


def drop_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def default_database() -> str:
    try:
        import meterd.storage.sqlite  # noqa: F401
    except ImportError:
        return "memory://"
    return str(Path(tempfile.mkdtemp(prefix="meterd-bench-")) / "bench.db")


def serve(database: str) -> tuple[uvicorn.Server, threading.Thread, str, str]:
    store = create_store(database)
    app = create_app(Settings(database_url=database), store=store)

    async def boot() -> str:
        # Bootstrap through its own store object (a database store's connections belong to one event loop);
        # the in-memory store has to be the app's instance.
        boot_store = store if database == "memory://" else create_store(database)
        await boot_store.open()
        try:
            minted = await Meterd(boot_store).bootstrap()
            assert minted is not None
            return minted.secret
        finally:
            await boot_store.close()

    key = asyncio.run(boot())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}", key


def bench_amie(url: str, key: str, total: int, per_message: int = 1900) -> float:
    headers = {"XA-API-KEY": key, "XA-SITE": "default"}
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
        for first in range(0, total, per_message):
            records = [compute(i) for i in range(first, min(first + per_message, total))]
            r = c.post("/amie/api/v1/usage/", json={"UsageType": "Compute", "Records": records})
            assert r.status_code == 200 and not r.json()["ValidationFailedRecords"], r.text[:200]
    return total / (time.perf_counter() - started)


def bench_influx(url: str, events: int) -> float:
    stats = [{"name": f"s{n}", "tags": {"db": "x"}, "values": {f"v{k}": k for k in range(5)}} for n in range(100)]
    body = {"cluster_id": "c", "server_id": "s", "stats": stats}
    requests = max(1, events // 500)
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as c:
        for _ in range(requests):
            r = c.post("/api/v1/stats/influxdb", json=body)
            assert r.status_code == 200, r.text[:200]
    return requests * 500 / (time.perf_counter() - started)


def bench_raw(database: str, total: int, per_batch: int = 1900) -> float:
    """The limit under the surface: ``store.ingest`` of already-validated events, same batch size."""
    events = [to_event(validate(COMPUTE, compute(i)), "{}") for i in range(total)]

    async def run() -> float:
        store = create_store(database)
        await store.open()
        meterd = Meterd(store)
        try:
            started = time.perf_counter()
            for first in range(0, total, per_batch):
                await meterd.ingest_events("raw", events[first : first + per_batch])
            return total / (time.perf_counter() - started)
        finally:
            await store.close()

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    amie, influx, raw = [], [], []
    schemas: list[str] = []
    try:
        for _ in range(args.runs):
            server, thread, url, key = serve(fresh_database(args.database, schemas))
            try:
                amie.append(bench_amie(url, key, args.records))
                influx.append(bench_influx(url, args.records))
            finally:
                server.should_exit = True
                thread.join(10)
            raw.append(bench_raw(fresh_database(args.database, schemas), args.records))
    finally:
        if schemas and args.database:
            drop_schemas(args.database, schemas)
    print(f"store: {args.database or 'sqlite (temp file) if available, else memory://'}  records/run: {args.records}")
    print(f"AMIE POST usage/ (1900 records/message):   {statistics.median(amie):10,.0f} records/s")
    print(f"influx POST stats (500 values/request):    {statistics.median(influx):10,.0f} events/s")
    print(f"raw limit: store.ingest, 1900-event batches: {statistics.median(raw):8,.0f} events/s")


if __name__ == "__main__":
    main()
