"""BatchMeterUsage through boto3 against a local meterd, next to the native ingest of the same records.

Run by hand: ``.venv/bin/python bench/aws_metering.py [--batches 200] [--database memory://]``. It prints
records/s of BatchMeterUsage (25 records, SigV4-signed by boto3) and, as the raw limit measured in the same
run, records/s of POST /v1/events carrying the same 25 records per request with httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

import boto3
import httpx
import uvicorn
from botocore.config import Config

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store


def serve(database: str) -> tuple[uvicorn.Server, str, str]:
    store = create_store(database)
    app = create_app(Settings(database_url=database), store=store)

    async def bootstrap() -> str:
        await store.open()
        try:
            minted = await app.state.meterd.bootstrap()
            assert minted is not None
            return minted.secret
        finally:
            await store.close()

    admin = asyncio.run(bootstrap())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", admin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file if available, else memory://")
    args = parser.parse_args()
    database = args.database
    if database is None:
        try:
            import meterd.storage.sqlite  # noqa: F401

            database = str(Path(tempfile.mkdtemp()) / "bench.db")
        except ImportError:
            database = "memory://"
    server, url, admin = serve(database)
    http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {admin}"}, timeout=60)
    http.post("/v1/aws/products", json={"code": "bench", "dimensions": [{"name": "calls"}]}).raise_for_status()
    http.post("/v1/aws/entitlements", json={"customer": "acme", "product": "bench", "start": time.time() - 3600})
    key = http.post("/v1/aws/access-keys", json={"name": "bench"}).json()
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=key["secret_access_key"],
        config=Config(retries={"max_attempts": 1}),
    )
    base = time.time() - 60
    started = time.perf_counter()
    for b in range(args.batches):
        records = [
            {"Timestamp": base - (b * 25 + i) / 1000, "CustomerIdentifier": "acme", "Dimension": "calls", "Quantity": 1}
            for i in range(25)
        ]
        answer = client.batch_meter_usage(ProductCode="bench", UsageRecords=records)
        assert all(r["Status"] == "Success" for r in answer["Results"])
    aws_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for b in range(args.batches):
        events = [
            {"id": f"n-{b}-{i}", "meter": "native", "customer": "acme", "time": base, "value": 1} for i in range(25)
        ]
        http.post("/v1/events", json=events).raise_for_status()
    native_seconds = time.perf_counter() - started
    n = args.batches * 25
    print(f"store: {database}")
    print(
        f"BatchMeterUsage (boto3, 25/request):   {n / aws_seconds:8.0f} records/s  "
        f"{aws_seconds / args.batches * 1000:6.1f} ms/request"
    )
    print(
        f"raw limit: POST /v1/events (25/req):   {n / native_seconds:8.0f} records/s  "
        f"{native_seconds / args.batches * 1000:6.1f} ms/request"
    )
    print(f"ratio: {aws_seconds / native_seconds:.2f}x the native request time")
    server.should_exit = True


if __name__ == "__main__":
    main()
