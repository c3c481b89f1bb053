"""PostgresStore: the Store contract on PostgreSQL (psycopg 3 async, pooled), for many processes on one database.

The URL is a libpq URL (``postgresql://user@host:5432/db``); an optional ``schema`` query parameter (or the
``schema`` argument) names the schema meterd keeps its tables in (default ``meterd``). Ingest, folding and
queries live in ``postgres_ingest``, ``postgres_fold`` and ``postgres_query``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from meterd.core.errors import MeterdError, StorageError
from meterd.core.models import (
    Outcome,
    UsageEvent,
)
from meterd.core.query import QuerySpec, Row
from meterd.storage.base import NewRejection, Store
from meterd.storage.postgres_base import PgBase
from meterd.storage.postgres_crud import CrudMixin
from meterd.storage.postgres_events import EventsMixin
from meterd.storage.postgres_fold import FOLD_DDL, fold_batch
from meterd.storage.postgres_ingest import STAGE_DDL, ingest_batch
from meterd.storage.postgres_migrate import migrate
from meterd.storage.postgres_query import run_query

log = logging.getLogger(__name__)
Conn = AsyncConnection[Any]
T = TypeVar("T")
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)
DEFAULT_SCHEMA = "meterd"
CLOSE_WAIT_SECONDS = 10


def split_url(url: str, schema: str | None) -> tuple[str, str]:
    """The libpq URL without meterd's own ``schema`` parameter, and the schema to use."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = schema or next((v for k, v in query if k == "schema"), None) or DEFAULT_SCHEMA
    if not SCHEMA_RE.match(chosen):
        raise ValueError(f"invalid schema name {chosen!r} (lower-case letters, digits and _)")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(scheme="postgresql", query=rest)), chosen


class PostgresStore(EventsMixin, CrudMixin, PgBase, Store):
    """Every Store operation on PostgreSQL; safe to share one database between many processes."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        fold_interval: float | None = 0.5,
        fold_limit: int = 100_000,
        rollup_max_values: int = 32,
        key_bits: int = 64,
    ) -> None:
        self.conninfo, self.schema = split_url(url, schema)
        self.pool_size = pool_size
        self.fold_interval = fold_interval
        self.fold_limit = fold_limit
        self.rollup_max_values = rollup_max_values
        self.key_bits = key_bits
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._folder: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # lifecycle -----------------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo) as conn:
                await migrate(conn, self.schema)
            pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                self.conninfo,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"options": f"-c search_path={self.schema} -c jit=off"},  # JIT costs ~12 ms per query here
                configure=self._configure,
                open=False,
            )
            await pool.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            raise StorageError(f"cannot open PostgreSQL store: {exc}") from exc
        self._pool = pool
        self._closing = False
        if self.fold_interval is not None:
            self._folder = asyncio.create_task(self._fold_loop())

    async def _configure(self, conn: Conn) -> None:
        await conn.execute(STAGE_DDL)
        await conn.execute(FOLD_DDL)
        await conn.commit()

    async def close(self) -> None:
        self._closing = True
        folder, self._folder = self._folder, None
        if folder is not None:
            folder.cancel()
            # The driver may turn the cancellation into a query error; the loop then sees _closing and ends.
            await asyncio.wait({folder}, timeout=CLOSE_WAIT_SECONDS)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1"))

    # folding -------------------------------------------------------------------------------------------
    async def fold(self) -> int:
        """Fold pending events into the rollup cache until none are left (or another process folds)."""
        total = 0
        while True:
            done, more = await self._run(
                lambda conn: fold_batch(conn, self.schema, self.fold_limit, self.rollup_max_values)
            )
            total += done
            if not more:
                return total

    async def _fold_loop(self) -> None:
        assert self.fold_interval is not None
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.fold_interval)
            self._wake.clear()
            try:
                await self.fold()
            except MeterdError as exc:
                if not self._closing:
                    log.warning("rollup fold failed: %s", exc)

    # events --------------------------------------------------------------------------------------------
    async def ingest(
        self,
        tenant: str,
        events: Sequence[UsageEvent],
        rejections: Sequence[NewRejection] = (),
        now: int = 0,
    ) -> list[Outcome]:
        outcomes = await self._run(lambda conn: ingest_batch(conn, tenant, events, rejections, now, self.key_bits))
        return outcomes

    async def query(self, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
        return await self._run(lambda conn: run_query(conn, tenant, spec, now))
