"""HTTP half of bench/ingest.py: the real server (``meterd serve``) on a temp SQLite file, fed over HTTP.

Starts the server in its own process group on a free 127.0.0.1 port, sends every event in 1,000-event JSON
bodies to ``POST /v1/events`` from several concurrent httpx clients, samples the server's RSS, and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from meterd.core.models import UsageEvent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bodies(events: list[UsageEvent], batch: int) -> list[bytes]:
    encoder = msgspec.json.Encoder()
    out = []
    for i in range(0, len(events), batch):
        records = [
            {"id": e.id, "meter": e.meter, "customer": e.customer, "time": rfc3339(e.time), "value": e.value,
             "dimensions": e.dimensions}
            for e in events[i : i + batch]
        ]
        out.append(encoder.encode(records))
    return out


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every process in a process group (the server and its workers), in KiB."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


class Server:
    """``meterd serve`` in its own process group; the admin key it prints on first start."""

    def __init__(self, database: Path, workers: int) -> None:
        self.port = free_port()
        cmd = [str(Path(sys.executable).parent / "meterd"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--database", str(database), "--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self.key = self._read_key()
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()
        self.peak_kib = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _read_key(self) -> str:
        assert self.proc.stdout is not None
        for _ in range(5):
            line = self.proc.stdout.readline()
            if line.strip().startswith("mk_") or (line.startswith("  ") and line.strip()):
                return line.strip()
        raise RuntimeError("the server printed no admin key")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not come up")

    def _sample(self) -> None:
        while self._sampling:
            self.peak_kib = max(self.peak_kib, group_rss_kib(self.proc.pid))
            time.sleep(0.2)

    def stop(self) -> None:
        self._sampling = False
        self._sampler.join()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def send(server: Server, payloads: list[bytes], clients: int) -> tuple[float, int]:
    """(seconds, accepted) for every body, ``clients`` requests in flight."""
    queue = iter(payloads)
    accepted = 0
    decoder = msgspec.json.Decoder()
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}

    async def client() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as http:
            for body in queue:
                response = await http.post("/v1/events", content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
                accepted += decoder.decode(response.content)["counts"]["accepted"]

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, accepted


def run(events: list[UsageEvent], args: argparse.Namespace, raw_limit: float | None) -> None:
    folder = args.dir / "http"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    payloads = bodies(events, args.batch)
    server = Server(folder / "meterd.db", args.workers)
    try:
        seconds, accepted = asyncio.run(send(server, payloads, args.clients))
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    rate = len(events) / seconds
    print(f"HTTP: {len(events):,} events in {args.batch}-event bodies, {args.clients} clients, "
          f"{args.workers} worker(s): {rate:,.0f} events/s ({accepted:,} accepted); "
          f"server peak RSS {server.peak_kib / 1024:.0f} MB")
    if raw_limit:
        print(f"HTTP vs raw limit ({raw_limit:,.0f} rows/s): {rate / raw_limit:.2f}")
