"""Kill the server (SIGKILL) in the middle of a batch ingest, restart it, resend everything: exactly once.

Every batch acknowledged before the kill must be stored; after resending every batch, each event is stored
exactly once and the totals equal the sums of what was sent.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow
BATCHES = 60
BATCH_SIZE = 500


def start_server(db: Path, port: int) -> tuple[subprocess.Popen[str], str | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "meterd", "serve", "--database", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    key = None
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip().startswith("mk_"):
            key = line.strip()
        if "serving" in line:
            break
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                threading.Thread(target=process.stdout.read, daemon=True).start()
                return process, key
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def make_batches() -> list[list[dict[str, Any]]]:
    rng = random.Random(7)
    return [
        [
            {
                "id": f"b{b}-e{i}",
                "meter": f"m{rng.randrange(3)}",
                "customer": f"c{rng.randrange(10)}",
                "time": 1_700_000_000 + rng.randrange(86_400),
                "value": rng.randrange(1, 100),
            }
            for i in range(BATCH_SIZE)
        ]
        for b in range(BATCHES)
    ]


def send_until_failure(url: str, key: str, batches: list[list[dict[str, Any]]], acked: list[int]) -> None:
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
        for number, batch in enumerate(batches):
            try:
                response = client.post("/v1/events", json=batch)
            except httpx.TransportError:
                return
            if response.status_code == 200:
                acked.append(number)


def totals(url: str, key: str) -> dict[str, float]:
    body = {"from": "2023-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z", "group_by": [], "aggregation": "sum"}
    rows = httpx.post(f"{url}/v1/query", json=body, headers={"authorization": f"Bearer {key}"}).json()["rows"]
    counted = {**body, "aggregation": "count"}
    counts = httpx.post(f"{url}/v1/query", json=counted, headers={"authorization": f"Bearer {key}"}).json()["rows"]
    return {**{r["meter"]: r["value"] for r in rows}, **{f"{r['meter']}#": r["value"] for r in counts}}


def test_sigkill_mid_ingest_then_resend_is_exactly_once(tmp_path: Path) -> None:
    pytest.importorskip("meterd.storage.sqlite")
    db = tmp_path / "crash.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    batches = make_batches()
    server, key = start_server(db, port)
    assert key is not None
    acked: list[int] = []
    sender = threading.Thread(target=send_until_failure, args=(url, key, batches, acked))
    sender.start()
    while len(acked) < BATCHES // 3:
        time.sleep(0.005)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)
    sender.join(30)
    assert 0 < len(acked) < BATCHES

    server, _ = start_server(db, port)
    try:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            for number in acked:  # acknowledged before the kill: already stored, so only duplicates now
                outcomes = {r["outcome"] for r in client.post("/v1/events", json=batches[number]).json()["results"]}
                assert outcomes == {"duplicate"}, number
            for batch in batches:
                results = client.post("/v1/events", json=batch).json()["results"]
                assert {r["outcome"] for r in results} <= {"accepted", "duplicate"}
        expected: dict[str, float] = {}
        for batch in batches:
            for e in batch:
                expected[e["meter"]] = expected.get(e["meter"], 0) + e["value"]
                expected[e["meter"] + "#"] = expected.get(e["meter"] + "#", 0) + 1
        assert totals(url, key) == expected
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
