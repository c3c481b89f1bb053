"""The ``store`` fixture: every Store implementation, so the one contract suite runs against each of them.

To add a backend, add a param and a branch in ``_make``. PostgreSQL runs only when METERD_TEST_POSTGRES is
set (e.g. ``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meterd.storage.base import Store
from meterd.storage.memory import MemoryStore
from meterd.storage.sqlite import SQLiteStore, Tuning

# sqlite: rollups only when idle (queries read the raw tail); sqlite-rolled: rolled after every write.
STORES = ["memory", "sqlite", "sqlite-rolled", "postgres"]


async def _make(kind: str, tmp_path: Path) -> tuple[Store, Any]:
    if kind == "memory":
        return MemoryStore(), None
    if kind == "sqlite":
        return SQLiteStore(str(tmp_path / "m.db"), tuning=Tuning(idle_seconds=3600, roll_every=10**9)), None
    if kind == "sqlite-rolled":
        return SQLiteStore(str(tmp_path / "m.db"), tuning=Tuning(idle_seconds=3600, roll_every=1)), None
    url = os.environ.get("METERD_TEST_POSTGRES")
    if not url:
        pytest.skip("METERD_TEST_POSTGRES is not set")
    try:
        module = importlib.import_module("meterd.storage.postgres")
    except ImportError:
        pytest.skip("meterd.storage.postgres is not available")
    schema = f"contract_{uuid.uuid4().hex[:12]}"
    return module.PostgresStore(url, schema=schema), (url, schema)


async def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made, cleanup = await _make(request.param, tmp_path)
    await made.open()
    try:
        yield made
    finally:
        await made.close()
        if cleanup is not None:
            await _drop_schema(*cleanup)


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    """The backend under test (for the few assertions that differ, e.g. id reuse)."""
    return str(request.node.callspec.params["store"])


@pytest.fixture(params=STORES)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An async context manager factory: each call opens a fresh, empty store of the param's kind."""
    import contextlib

    counter = iter(range(10**9))

    @contextlib.asynccontextmanager
    async def fresh() -> AsyncIterator[Store]:
        folder = tmp_path / f"s{next(counter)}"
        folder.mkdir()
        made, cleanup = await _make(request.param, folder)
        await made.open()
        try:
            yield made
        finally:
            await made.close()
            if cleanup is not None:
                await _drop_schema(*cleanup)

    return fresh
