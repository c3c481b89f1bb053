"""A real meterd server in its own process (its own process group), on a free loopback port.

Given a database (a SQLite file or a PostgreSQL URL) it runs ``python -m meterd serve --database ...``, which
is durable: it can be killed and restarted on the same data. Given None, a small launcher serves the same app
on the in-memory store (fine for tests that never restart the server).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

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


POSTGRES_URL = os.environ.get("METERD_TEST_POSTGRES")


def durable_store_available() -> bool:
    try:
        import meterd.storage.sqlite  # noqa: F401
    except ImportError:
        return False
    return True


def durable_databases(tmp_path: Path) -> dict[str, str]:
    """The durable stores this run can restart a server on: SQLite when installed, PostgreSQL when configured."""
    found = {}
    if durable_store_available():
        found["sqlite"] = str(tmp_path / "meterd.db")
    if POSTGRES_URL:
        schema = "meterd_sdk_" + secrets.token_hex(6)
        found["postgres"] = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    return found


def drop_schema(url: str) -> None:
    """Remove the schema a PostgreSQL test database URL names (no-op for other URLs)."""
    if POSTGRES_URL and url.startswith(POSTGRES_URL) and "schema=" in url:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("schema=", 1)[1]}" CASCADE')


class ServerProcess:
    """Start, SIGKILL and restart a server; ``key`` is the admin key minted on first start."""

    def __init__(self, database: Path | str | None) -> None:
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key: str | None = None
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        if self.database is not None:
            command = [
                sys.executable,
                "-m",
                "meterd",
                "serve",
                "--database",
                str(self.database),
                "--port",
                str(self.port),
            ]
        else:
            command = [sys.executable, "-c", MEMORY_LAUNCHER, str(self.port)]
        self.process = process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            if line.strip().startswith("mk_"):
                self.key = line.strip()
            if "serving" in line:
                break
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no flush."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
