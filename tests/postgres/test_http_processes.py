"""Four server processes on one PostgreSQL schema, 8 concurrent HTTP clients each: exactly once over the wire.

``meterd serve --workers 2`` on one port plus two single-process servers on two other ports. 200,000 events,
20% of them resends of an id already sent (same content), shuffled so that copies of one id reach different
processes at the same time. Every id must be answered ``accepted`` exactly once across all responses, the
database must hold each id once, and the query totals must equal the sums over the distinct events.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
EVENTS, UNIQUE, BATCH, CLIENTS_PER_PORT = 200_000, 160_000, 500, 8
T0 = 1_700_000_000  # epoch seconds, as the native API takes them


def start(url: str, port: int, workers: int) -> tuple[subprocess.Popen[str], str | None]:
    """Start ``meterd serve`` in its own process group; wait until it answers; the admin key it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "meterd", "serve", "--database", url, "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    assert process.stdout is not None
    key = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if line.strip().startswith("mk_"):
            key = line.strip()
        if "serving" in line:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            break
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, key
        except httpx.TransportError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"server on port {port} did not start")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def make_events() -> list[dict[str, Any]]:
    """UNIQUE distinct events plus resends of random earlier ones, shuffled."""
    rng = random.Random(11)
    distinct = [
        {"id": f"e{i}", "meter": f"m{i % 3}", "customer": f"c{rng.randrange(20)}",
         "time": T0 + rng.randrange(86_400), "value": rng.randrange(1, 100),
         "dimensions": {"region": rng.choice(["eu", "us", "ap"])}}
        for i in range(UNIQUE)
    ]
    events = distinct + [dict(rng.choice(distinct)) for _ in range(EVENTS - UNIQUE)]
    rng.shuffle(events)
    return events


async def send_all(ports: list[int], key: str, batches: list[list[dict[str, Any]]]) -> list[tuple[int, Any]]:
    """8 clients per port, each taking the next batch from a shared queue; (status, body) of every response."""
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    answers: list[tuple[int, Any]] = []

    async def client(port: int) -> None:
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            while not queue.empty():
                batch = queue.get_nowait()
                response = await http.post("/v1/events", json=batch)
                answers.append((response.status_code, response.json()))

    await asyncio.gather(*(client(port) for port in ports for _ in range(CLIENTS_PER_PORT)))
    return answers


def query(port: int, key: str, aggregation: str) -> dict[str, float]:
    body = {"from": "2023-11-14T00:00:00Z", "to": "2023-11-17T00:00:00Z", "group_by": [], "aggregation": aggregation}
    response = httpx.post(f"http://127.0.0.1:{port}/v1/query", json=body, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return {r["meter"]: r["value"] for r in response.json()["rows"]}


def test_four_processes_eight_clients_each_store_every_id_exactly_once(pg_url: str, pg_schema: str) -> None:
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}schema={pg_schema}"
    events = make_events()
    batches = [events[i:i + BATCH] for i in range(0, EVENTS, BATCH)]
    ports = [free_port() for _ in range(3)]
    servers: list[subprocess.Popen[str]] = []
    try:
        first, key = start(url, ports[0], workers=2)
        servers.append(first)
        assert key is not None
        for port in ports[1:]:
            servers.append(start(url, port, workers=1)[0])
        # the --workers 2 server serves its port from two processes: 16 clients there, 8 on each other port
        started = time.monotonic()
        answers = asyncio.run(send_all([ports[0], *ports], key, batches))
        elapsed = time.monotonic() - started
        assert [status for status, _ in answers] == [200] * len(batches)
        accepted: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for _, body in answers:
            for result in body["results"]:
                outcomes[result["outcome"]] += 1
                if result["outcome"] == "accepted":
                    accepted[result["id"]] += 1
        assert outcomes == {"accepted": UNIQUE, "duplicate": EVENTS - UNIQUE}, outcomes
        assert len(accepted) == UNIQUE and set(accepted.values()) == {1}
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(f'SELECT count(*), count(DISTINCT id) FROM "{pg_schema}".events').fetchone()
        assert row == (UNIQUE, UNIQUE)
        distinct = {e["id"]: e for e in events}
        sums: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for e in distinct.values():
            sums[e["meter"]] += e["value"]
            counts[e["meter"]] += 1
        for port in ports:  # every process answers the same exact totals
            assert query(port, key, "sum") == {m: float(v) for m, v in sums.items()}
            assert query(port, key, "count") == {m: float(v) for m, v in counts.items()}
        print(f"\n{EVENTS:,} events over HTTP from {len(ports) + 1} processes in {elapsed:.1f} s "
              f"({EVENTS / elapsed:,.0f} events/s)")
    finally:
        for server in servers:
            stop(server)
