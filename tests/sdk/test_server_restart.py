"""A server SIGKILLed and restarted in the middle of a 100,000-event run from 8 threads: the server ends with
exactly 100,000 events and exact totals, with the spool on, and with it off (the outage being shorter than
the retry window)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import meterd
from tests.sdk.server_process import ServerProcess, drop_schema, durable_databases

pytestmark = pytest.mark.slow
THREADS, PER_THREAD = 8, 12_500
TOTAL = THREADS * PER_THREAD
START = datetime(2024, 5, 1, tzinfo=UTC)
FROM, TO = "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"


def produce(client: meterd.Client, thread: int) -> None:
    for i in range(PER_THREAD):
        client.meter(f"m{thread % 4}", i % 10 + 1, f"c{i % 50}", time=START + timedelta(milliseconds=i))
        if i % 25 == 0:
            time.sleep(0.002)  # keep the run going across the outage


def expected_totals() -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    per_thread = float(sum(i % 10 + 1 for i in range(PER_THREAD)))
    for thread in range(THREADS):
        total, count = out.get(f"m{thread % 4}", (0.0, 0.0))
        out[f"m{thread % 4}"] = (total + per_thread, count + PER_THREAD)
    return out


def kill_and_restart(server: ServerProcess, client: meterd.Client, outage: list[float]) -> None:
    deadline = time.monotonic() + 120
    while client.stats().accepted < 15_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed = time.monotonic()
    server.kill()
    time.sleep(0.5)
    server.start()
    outage.append(time.monotonic() - killed)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("spooled", [True, False], ids=["spool", "no-spool"])
def test_server_killed_and_restarted_mid_run(tmp_path: Path, spooled: bool, store: str) -> None:
    database = durable_databases(tmp_path).get(store)
    if database is None:
        pytest.skip(f"no durable {store} store here (SQLite: meterd.storage.sqlite; PostgreSQL: METERD_TEST_POSTGRES)")
    server = ServerProcess(database)
    server.start()
    options: dict[str, Any] = {"spool_path": str(tmp_path / "spool.db")} if spooled else {}
    client = meterd.Client(server.url, server.key, timeout=10, **options)
    try:
        outage: list[float] = []
        killer = threading.Thread(target=kill_and_restart, args=(server, client, outage))
        killer.start()
        producers = [threading.Thread(target=produce, args=(client, t)) for t in range(THREADS)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        killer.join()
        assert client.flush(180)
        stats = client.stats()
        assert stats.dropped == {} and stats.enqueued == TOTAL
        assert stats.sent == TOTAL and stats.rejected == stats.conflict == 0
        assert stats.retried > 0, "the outage was not noticed"
        assert outage and outage[0] < client.retry.max_elapsed  # type: ignore[operator]
        sums = {r.meter: r.value for r in client.query(["m0", "m1", "m2", "m3"], FROM, TO, aggregation="sum").rows}
        counts = {r.meter: r.value for r in client.query(["m0", "m1", "m2", "m3"], FROM, TO, aggregation="count").rows}
        assert {m: (sums[m], counts[m]) for m in sums} == expected_totals()
        assert sum(counts.values()) == TOTAL
    finally:
        client.close(timeout=5)
        server.stop()
        drop_schema(database)
