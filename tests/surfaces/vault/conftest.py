"""Fixtures of the vault surface tests: settings allowing loopback callbacks, a Basic-auth client, a receiver."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from meterd.server.settings import Settings
from tests.conftest import Served

ID1 = "d8bb95d1-6279-4488-961d-133514b772fa"
ID2 = "0b7e8f1c-58a2-4f0e-9a57-2c1d3e4f5a6b"
ID3 = "5c2a9e3d-7b41-4c8f-8e2d-9f0a1b2c3d4e"
ID4 = "9e1d2c3b-4a5f-4e6d-8c7b-0a1f2e3d4c5b"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Callbacks to 127.0.0.1 allowed, fast retries (tests wait for them)."""
    return Settings(
        database_url=database_url,
        vault_callback_hosts=("127.0.0.1",),
        vault_callback_attempts=3,
        vault_callback_backoff_ms=20,
        vault_callback_timeout_ms=1500,
    )


def basic(secret: str, user: str = "user") -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
async def vault(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client that authenticates as the Ruby client does: Basic, the API key as the password."""
    transport = httpx.ASGITransport(app=served.app)
    headers = {"authorization": basic(served.admin_key)}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@pytest.fixture
async def native(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """The native API with the admin key."""
    transport = httpx.ASGITransport(app=served.app)
    headers = {"authorization": f"Bearer {served.admin_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@dataclass
class Receiver:
    """A loopback HTTP server that records POSTs and answers the scripted statuses (then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.received.append(
                {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
            )
            if state.delay:
                time.sleep(state.delay)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/cb"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"events"}
    events: list[dict[str, Any]] = body["events"]
    return events


def decoded(body: bytes) -> Any:
    return json.loads(body)
