"""Fixtures for PostgreSQL tests: skipped unless METERD_TEST_POSTGRES names a server; one schema per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from meterd.storage.postgres import PostgresStore

ENV = "METERD_TEST_POSTGRES"


def postgres_url() -> str:
    """The test server's URL, or skip the test with a clear reason."""
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set (e.g. {ENV}=postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture
def pg_url() -> str:
    return postgres_url()


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name, dropped (with everything in it) after the test."""
    name = "meterd_test_" + secrets.token_hex(6)
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def pg_store(pg_url: str, pg_schema: str) -> AsyncIterator[PostgresStore]:
    """An open store in its own schema; folding runs only when a test calls ``fold()``."""
    store = PostgresStore(pg_url, schema=pg_schema, fold_interval=None, pool_size=4)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
