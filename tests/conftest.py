"""Shared fixtures: an app on a fresh store, an admin key, an in-process client and a real server in a thread."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.service import Meterd
from meterd.storage.base import Store
from meterd.storage.factory import create_store

POSTGRES_URL = os.environ.get("METERD_TEST_POSTGRES")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test: SQLite (or the in-memory store), and PostgreSQL in its own schema."""
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("METERD_TEST_POSTGRES is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
        schema = "meterd_api_" + secrets.token_hex(6)
        yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    try:
        import meterd.storage.sqlite  # noqa: F401
    except ImportError:
        yield "memory://"
        return
    yield str(tmp_path / "meterd.db")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@dataclass
class Served:
    """An app with its store open and an admin key of the default tenant."""

    app: FastAPI
    store: Store
    admin_key: str
    meterd: Meterd


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    store = create_store(settings.database_url)
    app = create_app(settings, store=store)
    async with app.router.lifespan_context(app):
        minted = await app.state.meterd.bootstrap()
        assert minted is not None
        yield Served(app, store, minted.secret, app.state.meterd)


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app in-process, authenticated with the admin key."""
    transport = httpx.ASGITransport(app=served.app)
    headers = {"authorization": f"Bearer {served.admin_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@dataclass
class LiveServer:
    """A real uvicorn server in a thread, on a free loopback port."""

    url: str
    admin_key: str
    app: FastAPI


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    store = create_store(settings.database_url)
    app = create_app(settings, store=store)
    minted = asyncio.run(_bootstrap(store, app.state.meterd))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", minted, app)
    finally:
        server.should_exit = True
        thread.join(10)


async def _bootstrap(store: Store, meterd: Meterd) -> str:
    await store.open()
    try:
        minted = await meterd.bootstrap()
        assert minted is not None
        return minted.secret
    finally:
        await store.close()
