"""SDK benchmark: meter()'s cost in the caller's thread, and end-to-end events/s to a local server.

    python bench/sdk.py [--calls 200000] [--events 200000] [--skip-e2e]

Each figure is printed next to a raw limit measured in the same run:
- meter() median (memory queue, then the durable spool) next to a bare ``queue.Queue.put_nowait`` of the same
  dict, each with a consumer thread running (meter()'s real sender, on a transport that answers at once);
- events/s from one process with one Client to a local ``meterd serve`` (SQLite when the store is installed,
  else the in-memory store) next to the same server fed pre-encoded 1000-event batches by plain httpx, and
  the SDK alone (a transport that answers at once) to show which side bounds the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import meterd

MEMORY_LAUNCHER = """
import asyncio, sys, uvicorn
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.memory import MemoryStore
store = MemoryStore()
app = create_app(Settings(database_url="memory://"), store=store)
async def boot():
    await store.open()
    return (await app.state.meterd.bootstrap()).secret
print(asyncio.run(boot()), flush=True)
print("serving", flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


def per_call_ns(call: Callable[[], object], n: int) -> list[int]:
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        start = clock()
        call()
        out[i] = clock() - start
    return out


_answers: dict[int, bytes] = {}


def accept_all(request: httpx.Request) -> httpx.Response:
    """An instant server: every record accepted (answers cached per batch size, so it costs next to nothing)."""
    count = request.content.count(b'"id"')
    if count not in _answers:
        results = [{"index": i, "id": None, "outcome": "accepted"} for i in range(count)]
        _answers[count] = json.dumps({"results": results, "counts": {"accepted": count}}).encode()
    return httpx.Response(200, content=_answers[count], headers={"content-type": "application/json"})


def queue_baseline(n: int) -> float:
    """Median ns of Queue.put_nowait of one prebuilt event dict, with a consumer thread draining."""
    q: queue.Queue[object] = queue.Queue()
    event = {"id": "%032x" % random.getrandbits(128), "meter": "api_calls", "customer": "c17",  # noqa: UP031
             "time": time.time(), "value": 1.0, "dimensions": {"region": "eu"}}
    stop = object()

    def drain() -> None:
        while q.get() is not stop:
            pass

    consumer = threading.Thread(target=drain)
    consumer.start()
    samples = per_call_ns(lambda: q.put_nowait(event), n)
    q.put(stop)
    consumer.join()
    return statistics.median(samples)


def meter_cost(n: int, spool: str | None) -> tuple[float, float, float]:
    """Median, p99 and mean ns of meter() in the caller's thread, the sender running on an instant transport."""
    batching = meterd.Batching(max_queue_size=n + 1)
    client = meterd.Client("http://bench", "k", transport=httpx.MockTransport(accept_all), batching=batching,
                           spool_path=spool)
    customers = [f"c{i}" for i in range(100)]
    counter = iter(range(n))
    dims = {"region": "eu"}
    samples = per_call_ns(lambda: client.meter("api_calls", 1.0, customers[next(counter) % 100], dimensions=dims), n)
    client.close(timeout=60)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)], sum(samples) / len(samples)


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            import meterd.storage.sqlite  # noqa: F401
        except ImportError:
            command, self.store = [sys.executable, "-c", MEMORY_LAUNCHER, str(self.port)], "memory"
        else:
            command = [sys.executable, "-m", "meterd", "serve", "--database", str(workdir / "bench.db"),
                       "--port", str(self.port)]
            self.store = "sqlite"
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        assert self.process.stdout is not None
        self.key = ""
        for line in self.process.stdout:
            if line.strip().startswith("mk_"):
                self.key = line.strip()
            if "serving" in line:
                break
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raw_server_rate(server: Server, events: int, connections: int, batch: int = 1000) -> float:
    """Events/s of pre-encoded batches posted back to back over ``connections`` httpx connections."""
    bodies = []
    for b in range(events // batch):
        records = [{"id": f"raw{connections}-{b}-{i}", "meter": "raw", "customer": f"c{i % 100}",
                    "time": "2024-05-01T00:00:00Z", "value": 1.0, "dimensions": {"region": "eu"}}
                   for i in range(batch)]
        bodies.append(json.dumps(records).encode())
    headers = {"authorization": f"Bearer {server.key}", "content-type": "application/json"}

    def post(part: list[bytes]) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            for body in part:
                http.post("/v1/events", content=body).raise_for_status()

    threads = [threading.Thread(target=post, args=(bodies[n::connections],)) for n in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies) * batch / (time.perf_counter() - start)


def sdk_rate(server: Server | None, events: int) -> tuple[float, meterd.SenderStats]:
    """Events/s from meter() calls to the acknowledgement of the last one (flush); with no server, to a
    transport that answers at once (what the SDK alone can push)."""
    batching = meterd.Batching(max_queue_size=events + 1)
    if server is None:
        client = meterd.Client("http://instant", "k", transport=httpx.MockTransport(accept_all), batching=batching)
    else:
        client = meterd.Client(server.url, server.key, batching=batching)
    with client:
        start = time.perf_counter()
        for i in range(events):
            client.meter("sdk", 1.0, f"c{i % 100}", dimensions={"region": "eu"})
        assert client.flush(600), "flush timed out"
        elapsed = time.perf_counter() - start
        return events / elapsed, client.stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()

    base = queue_baseline(args.calls)
    median, p99, mean = meter_cost(args.calls, None)
    print(f"queue.Queue.put_nowait (raw limit)   median {base / 1000:6.2f} us")
    print(f"meter(), memory queue                median {median / 1000:6.2f} us   p99 {p99 / 1000:7.2f} us   "
          f"mean {mean / 1000:6.2f} us   ({median / base:.1f}x the raw put)")
    with tempfile.TemporaryDirectory() as tmp:
        median, p99, mean = meter_cost(args.calls // 4, str(Path(tmp) / "spool.db"))
    print(f"meter(), durable spool               median {median / 1000:6.2f} us   p99 {p99 / 1000:7.2f} us   "
          f"mean {mean / 1000:6.2f} us   ({median / base:.1f}x the raw put)")
    alone, _ = sdk_rate(None, args.events)
    print(f"one process, meter() -> instant transport        {alone:9,.0f} events/s (the SDK alone, no server)")
    if args.skip_e2e:
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            # interleaved, so that drift (load, a store growing) affects the raw limit and the SDK alike
            raw1 = raw_server_rate(server, args.events, 1)
            rate, stats = sdk_rate(server, args.events)
            raw2 = raw_server_rate(server, args.events, 2)
        finally:
            server.stop()
    raw = max(raw1, raw2)
    print(f"server ({server.store} store), raw httpx 1000-event batches: 1 connection {raw1:9,.0f} events/s, "
          f"2 connections {raw2:9,.0f} events/s (raw limit)")
    print(f"one process, meter() -> server acknowledged     {rate:9,.0f} events/s ({rate / raw:.0%} of the raw "
          f"limit; max_in_flight 2, {stats.batches} batches, accepted {stats.accepted:,}, dropped {stats.dropped})")


if __name__ == "__main__":
    main()
