"""Fixtures for the browser tests: a seeded real server (module-wide) and headless Chromium via Playwright."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.service import Meterd
from meterd.service.marketplace import Catalog
from meterd.storage.base import Store
from meterd.storage.factory import create_store
from tests.conftest import free_port
from tests.surfaces.ui.helpers import seed_events

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The system Chromium: $METERD_CHROMIUM, else the first of the usual names on PATH."""
    configured = os.environ.get("METERD_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class Collector(logging.Handler):
    """Keeps every server log line, to check that no key ever reaches a log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


T = TypeVar("T")


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in another thread (pytest-asyncio may own this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class UiServer:
    url: str
    admin_key: str
    read_key: str
    events: list[dict[str, Any]]
    logs: Collector
    requested: list[str] = field(default_factory=list)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.admin_key}"}, timeout=10)


async def _prepare(store: Store, meterd: Meterd) -> str:
    """Bootstrap the admin key and keep the facts a marketplace surface would (entitlement, token)."""
    await store.open()
    try:
        minted = await meterd.bootstrap()
        assert minted is not None
        catalog = Catalog(store, meterd.clock)
        await catalog.put_product("default", "prod-1", "Product one", [("seats", None, None)])
        await catalog.grant("default", "acme", "prod-1", None, 1798761600000, None)
        await catalog.issue_token("default", "acme", "prod-1", 3_600_000)
        return minted.secret
    finally:
        await store.close()


def _seed(url: str, admin_key: str) -> tuple[str, list[dict[str, Any]]]:
    events = seed_events(time.time())
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {admin_key}"}, timeout=10) as api:
        api.post("/v1/meters", json={"key": "api_calls", "unit": "calls", "description": "API requests"})
        api.put(
            "/v1/customers/acme",
            json={"name": "Acme Corp", "email": "ops@acme.test", "traits": {"plan": "gold", "seats": 25}},
        )
        api.post("/v1/customers", json={"id": "globex", "name": "Globex"})
        counts = api.post(
            "/v1/events",
            json=[
                *events,
                {"meter": "api_calls", "value": 1},
                {"meter": "api_calls", "customer": "x", "value": "lots"},
                {"meter": "api_calls", "customer": "y", "value": "many"},
            ],
        ).json()
        assert counts["counts"] == {"accepted": len(events), "duplicate": 0, "conflict": 0, "rejected": 3}
        reader = api.post("/v1/keys", json={"name": "viewer", "scopes": ["read"]}).json()["key"]
    return str(reader), events


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A real uvicorn server (access log on) with seeded data, shared by a module's browser tests."""
    try:
        import meterd.storage.sqlite  # noqa: F401

        database_url = str(tmp_path_factory.mktemp("ui") / "meterd.db")
    except ImportError:
        database_url = "memory://"
    settings = Settings(database_url=database_url)
    store = create_store(database_url)
    app = create_app(settings, store=store)
    admin = in_own_loop(_prepare(store, app.state.meterd))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True, lifespan="on")
    logs = Collector()
    watched = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error", "meterd", "meterd.ui")]
    for logger in watched:
        logger.addHandler(logs)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        url = f"http://127.0.0.1:{port}"
        reader, events = _seed(url, admin)
        yield UiServer(url, admin, reader, events, logs)
    finally:
        server.should_exit = True
        thread.join(10)
        for logger in watched:
            logger.removeHandler(logs)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium from the distribution, driven by Playwright (never a downloaded browser)."""
    path = find_chromium()
    if path is None:
        pytest.skip(
            "Chromium is not installed, so the dashboard browser tests are skipped "
            "(install Debian's package: apt-get install -y chromium; or set METERD_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    )
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()
