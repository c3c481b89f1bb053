"""The transaction runner every PostgresStore part uses: one pooled connection, one transaction, retries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from meterd.core.errors import MeterdError, StorageError

Conn = AsyncConnection[Any]
T = TypeVar("T")
RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)


class PgBase:
    """Holds the pool; ``_run`` executes a unit of work in one transaction."""

    schema: str
    _pool: AsyncConnectionPool[Conn] | None = None

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StorageError("the PostgreSQL store is not open")
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def _run(self, work: Callable[[Conn], Awaitable[T]], retries: int = 5) -> T:
        """Run ``work`` in one transaction; retry deadlocks and serialization failures; map driver errors."""
        for attempt in range(retries + 1):
            try:
                async with self._tx() as conn:
                    return await work(conn)
            except RETRYABLE:
                if attempt == retries:
                    raise StorageError("the database stayed busy; retry later") from None
                await asyncio.sleep(0.01 * (attempt + 1))
            except MeterdError:
                raise
            except (psycopg.Error, OSError) as exc:
                raise StorageError(f"database error ({exc.__class__.__name__})") from exc
        raise StorageError("the database stayed busy; retry later")

    async def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """All rows of one statement, in its own transaction."""

        async def work(conn: Conn) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall() if cur.description else []

        return await self._run(work)

    async def _count(self, sql: str, params: Any = None) -> int:
        """The number of rows one statement changed, in its own transaction."""

        async def work(conn: Conn) -> int:
            cur = await conn.execute(sql, params)
            return cur.rowcount

        return await self._run(work)
