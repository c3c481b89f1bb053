"""``SQLiteStore``: the default Store, one SQLite file in WAL mode, exactly the semantics of ``MemoryStore``.

Design (issue #2):

- Writes go to one writer thread per process that group-commits: concurrent ``ingest`` calls (and every other
  write) queued while a transaction runs share the next ``BEGIN IMMEDIATE`` ... ``COMMIT``; each caller gets
  its outcomes only after that COMMIT. Dedup check and insert happen inside the write lock, so several
  processes on one file (``uvicorn --workers N``) stay exact.
- Identity (tenant, surface, id) is found through a 64-bit hash in a small integer index; a match is verified
  on the full identity, so true hash collisions behave correctly. Events are appended in ``seq`` order.
- Queries read hourly/daily rollups (an exact cache maintained in bulk by the writer; see
  ``sqlite_rollup``) plus raw events, or raw events alone (see ``sqlite_query``). Reads use a small pool of
  reader threads with their own connections; WAL readers never block the writer.

Durability: ``synchronous=NORMAL`` (the default) in WAL mode never loses a committed transaction when the
process crashes or is killed (SIGKILL): the WAL is written before COMMIT returns and the OS keeps it. A power
loss or kernel crash may lose the last transactions since the previous checkpoint; pass
``synchronous="FULL"`` to fsync the WAL at every commit (one fsync per group commit, not per event).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from meterd.core.errors import NotFound, StorageError
from meterd.core.models import (
    ApiKey,
    Correction,
    Customer,
    EventStatus,
    Meter,
    Outcome,
    StoredEvent,
    Tenant,
    UsageEvent,
)
from meterd.core.query import QuerySpec, Row
from meterd.storage import sqlite_ingest, sqlite_query, sqlite_rollup
from meterd.storage.base import EventFilter, IngestStats, NewRejection, Page, Store
from meterd.storage.common import STATS_BUCKET_MS, group_rejections, seq_cursor
from meterd.storage.migrate import MigrationError
from meterd.storage.sqlite_conn import SYNCHRONOUS, Readers, ReadTx, Tuning, Tx, Writer, prepare
from meterd.storage.sqlite_rows import (
    CORRECTION_COLUMNS,
    EVENT_COLUMNS,
    REJECTION_COLUMNS,
    correction_row,
    customer_params,
    customer_row,
    encode_json,
    key_params,
    key_row,
    meter_params,
    meter_row,
    rejection_row,
    stored_event,
    tenant_row,
)

T = TypeVar("T")


class SQLiteStore(Store):
    """A Store on one SQLite file; ``synchronous`` is NORMAL (survives process crashes) or FULL (power loss)."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL", tuning: Tuning | None = None) -> None:
        if path in ("", ":memory:") or path.startswith("file::memory:"):
            raise ValueError("SQLiteStore needs a file: its reader and writer connections share it (WAL)")
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
        self.path = path
        self.tuning = dataclasses.replace(tuning or Tuning(), synchronous=mode)
        self.ctx = sqlite_ingest.Context()
        self._writer: Writer | None = None
        self._readers: Readers | None = None

    # lifecycle -----------------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            conn = await asyncio.to_thread(prepare, self.path, self.tuning)
        except (sqlite3.Error, MigrationError) as exc:
            raise StorageError(f"cannot open {self.path!r}: {exc}") from exc
        self._writer = Writer(conn, self.tuning, sqlite_rollup.maintain)
        self._readers = Readers(self.path, self.tuning)

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        if readers is not None:
            await asyncio.to_thread(readers.close)
        if writer is not None:
            await asyncio.to_thread(writer.stop)
            writer.conn.close()

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    async def roll_up(self) -> None:
        """Fold every unrolled event into the rollups now (queries are exact either way; this makes them fast)."""

        def job(tx: Tx) -> None:
            while sqlite_rollup.roll(tx.conn):
                pass

        await self._write(job)

    # plumbing ------------------------------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StorageError("the store is not open")
        return await self._readers.run(fn)

    async def _write(self, fn: Callable[[Tx], T], weight: int = 1) -> T:
        if self._writer is None:
            raise StorageError("the store is not open")
        return await self._writer.submit(fn, weight)

    # tenants and keys ----------------------------------------------------------------------------------
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        def job(tx: Tx) -> Tenant:
            tx.conn.execute(
                "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
                (tenant.id, tenant.name, tenant.created_at),
            )
            row = tx.conn.execute("SELECT id, name, created_at FROM tenants WHERE id = ?", (tenant.id,)).fetchone()
            return tenant_row(row)

        return await self._write(job)

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._read(lambda c: c.execute("SELECT id, name, created_at FROM tenants ORDER BY id").fetchall())
        return [tenant_row(r) for r in rows]

    async def add_key(self, key: ApiKey) -> None:
        def job(tx: Tx) -> None:
            tx.conn.execute(
                "INSERT INTO api_keys (id, tenant, name, scopes, secret_hash, created_at, last_used_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, "
                "name = excluded.name, scopes = excluded.scopes, secret_hash = excluded.secret_hash, "
                "created_at = excluded.created_at, last_used_at = excluded.last_used_at, "
                "revoked_at = excluded.revoked_at",
                key_params(key),
            )

        await self._write(job)

    _KEY_SQL = "SELECT id, tenant, name, scopes, secret_hash, created_at, last_used_at, revoked_at FROM api_keys"

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._read(lambda c: c.execute(f"{self._KEY_SQL} WHERE id = ?", (key_id,)).fetchone())
        return key_row(row) if row else None

    async def list_keys(self, tenant: str) -> list[ApiKey]:
        sql = f"{self._KEY_SQL} WHERE tenant = ? ORDER BY created_at, rowid"
        return [key_row(r) for r in await self._read(lambda c: c.execute(sql, (tenant,)).fetchall())]

    async def revoke_key(self, tenant: str, key_id: str, at: int) -> ApiKey:
        def job(tx: Tx) -> ApiKey:
            where = "WHERE id = ? AND tenant = ?"
            tx.conn.execute(f"UPDATE api_keys SET revoked_at = ? {where} AND revoked_at IS NULL", (at, key_id, tenant))
            row = tx.conn.execute(f"{self._KEY_SQL} {where}", (key_id, tenant)).fetchone()
            if row is None:
                raise NotFound(f"no key {key_id!r}")
            return key_row(row)

        return await self._write(job)

    async def touch_key(self, key_id: str, at: int) -> None:
        await self._write(lambda tx: tx.conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id)))

    # customers and meters ------------------------------------------------------------------------------
    _CUSTOMER_SQL = "SELECT id, name, email, traits, enabled, created_at, updated_at FROM customers"

    async def put_customer(self, tenant: str, customer: Customer) -> Customer:
        def job(tx: Tx) -> Customer:
            tx.conn.execute(
                "INSERT INTO customers (tenant, id, name, email, traits, enabled, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, "
                "email = excluded.email, traits = excluded.traits, enabled = excluded.enabled, "
                "updated_at = excluded.updated_at",
                customer_params(tenant, customer),
            )
            row = tx.conn.execute(f"{self._CUSTOMER_SQL} WHERE tenant = ? AND id = ?", (tenant, customer.id))
            return customer_row(row.fetchone())

        return await self._write(job)

    async def get_customer(self, tenant: str, customer_id: str) -> Customer | None:
        sql = f"{self._CUSTOMER_SQL} WHERE tenant = ? AND id = ?"
        row = await self._read(lambda c: c.execute(sql, (tenant, customer_id)).fetchone())
        return customer_row(row) if row else None

    async def list_customers(self, tenant: str, limit: int = 100, cursor: str | None = None) -> Page:
        after = "" if cursor is None else " AND id > ?"
        sql = f"{self._CUSTOMER_SQL} WHERE tenant = ?{after} ORDER BY id LIMIT ?"
        params = (tenant, limit + 1) if cursor is None else (tenant, cursor, limit + 1)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        items = [customer_row(r) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    async def delete_customer(self, tenant: str, customer_id: str) -> bool:
        def job(tx: Tx) -> bool:
            cur = tx.conn.execute("DELETE FROM customers WHERE tenant = ? AND id = ?", (tenant, customer_id))
            return cur.rowcount > 0

        return await self._write(job)

    _METER_SQL = "SELECT key, aggregation, unit, description, unique_dimension, properties, created_at FROM meters"

    async def put_meter(self, tenant: str, meter: Meter) -> Meter:
        def job(tx: Tx) -> Meter:
            tx.conn.execute(
                "INSERT INTO meters (tenant, key, aggregation, unit, description, unique_dimension, properties, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, key) DO UPDATE SET "
                "aggregation = excluded.aggregation, unit = excluded.unit, description = excluded.description, "
                "unique_dimension = excluded.unique_dimension, properties = excluded.properties",
                meter_params(tenant, meter),
            )
            row = tx.conn.execute(f"{self._METER_SQL} WHERE tenant = ? AND key = ?", (tenant, meter.key))
            return meter_row(row.fetchone())

        return await self._write(job)

    async def get_meter(self, tenant: str, key: str) -> Meter | None:
        sql = f"{self._METER_SQL} WHERE tenant = ? AND key = ?"
        row = await self._read(lambda c: c.execute(sql, (tenant, key)).fetchone())
        return meter_row(row) if row else None

    async def list_meters(self, tenant: str) -> list[Meter]:
        sql = f"{self._METER_SQL} WHERE tenant = ? ORDER BY key"
        return [meter_row(r) for r in await self._read(lambda c: c.execute(sql, (tenant,)).fetchall())]

    async def delete_meter(self, tenant: str, key: str) -> bool:
        def job(tx: Tx) -> bool:
            return tx.conn.execute("DELETE FROM meters WHERE tenant = ? AND key = ?", (tenant, key)).rowcount > 0

        return await self._write(job)

    # events --------------------------------------------------------------------------------------------
    async def ingest(
        self,
        tenant: str,
        events: Sequence[UsageEvent],
        rejections: Sequence[NewRejection] = (),
        now: int = 0,
    ) -> list[Outcome]:
        if not events and not rejections:
            return []
        ctx = self.ctx
        prep = sqlite_ingest.prepare(tenant, events)
        return await self._write(lambda tx: sqlite_ingest.ingest(ctx, tx, prep, rejections, now), max(1, len(events)))

    async def close_interval(self, tenant: str, surface: str, event_id: str, end_time: int, now: int) -> Outcome:
        ctx = self.ctx
        return await self._write(
            lambda tx: sqlite_ingest.close_interval(ctx, tx, tenant, surface, event_id, end_time, now)
        )

    async def get_event(self, tenant: str, surface: str, event_id: str) -> StoredEvent | None:
        def read(conn: sqlite3.Connection) -> StoredEvent | None:
            row = sqlite_ingest.find_event(self.ctx, conn, tenant, surface, event_id, cache=True)
            return stored_event(self.ctx.names, conn, row) if row else None

        return await self._read(read)

    async def list_events(self, tenant: str, where: EventFilter, limit: int = 100, cursor: str | None = None) -> Page:
        after = seq_cursor(cursor)

        def read(conn: sqlite3.Connection) -> Page:
            with ReadTx(conn):
                mids = self.ctx.names.tenant_mids(conn, tenant)
                if where.meter is not None:
                    mids = {m: k for m, k in mids.items() if k == where.meter}
                if not mids:
                    return Page([], None)
                sql, params = _event_filter(conn, self.ctx, mids, where)
                rows = conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? AND {sql} ORDER BY seq LIMIT ?",
                    (after, *params, limit + 1),
                ).fetchall()
                items = [stored_event(self.ctx.names, conn, r) for r in rows[:limit]]
            return Page(items, str(items[-1].seq) if len(rows) > limit and items else None)

        return await self._read(read)

    async def void_event(
        self, tenant: str, surface: str, event_id: str, reason: str, key_id: str | None, now: int
    ) -> Correction:
        ctx = self.ctx
        return await self._write(lambda tx: sqlite_ingest.void(ctx, tx, tenant, surface, event_id, reason, key_id, now))

    async def amend_event(
        self,
        tenant: str,
        surface: str,
        event_id: str,
        replacement: UsageEvent,
        reason: str,
        key_id: str | None,
        now: int,
    ) -> Correction:
        ctx = self.ctx
        return await self._write(
            lambda tx: sqlite_ingest.amend(ctx, tx, tenant, surface, event_id, replacement, reason, key_id, now)
        )

    async def list_corrections(self, tenant: str, surface: str, event_id: str) -> list[Correction]:
        def read(conn: sqlite3.Connection) -> list[Correction]:
            with ReadTx(conn):
                related = {event_id}
                found: dict[int, Correction] = {}
                frontier = [event_id]
                while frontier:
                    marks = ",".join("?" * len(frontier))
                    rows = conn.execute(
                        f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE tenant = ? AND surface = ? "
                        f"AND event_id IN ({marks})",
                        (tenant, surface, *frontier),
                    ).fetchall()
                    frontier = []
                    for c in map(correction_row, rows):
                        found[c.id] = c
                        if c.replacement_id and c.replacement_id not in related:
                            related.add(c.replacement_id)
                            frontier.append(c.replacement_id)
            return [found[i] for i in sorted(found)]

        return await self._read(read)

    async def query(self, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
        return await self._read(lambda conn: sqlite_query.run(self.ctx.names, conn, tenant, spec, now))

    # rejections and ingest health ----------------------------------------------------------------------
    async def add_rejections(self, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
        def job(tx: Tx) -> list[int]:
            ids = sqlite_ingest.insert_rejections(tx.conn, tenant, rejections, now)
            sqlite_ingest.count_rejections(tx.conn, tenant, rejections, now)
            return ids

        return await self._write(job)

    async def list_rejections(
        self, tenant: str, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        after = seq_cursor(cursor)
        sql = f"SELECT {REJECTION_COLUMNS} FROM rejections WHERE tenant = ? AND id > ?"
        params: list[Any] = [tenant, after]
        if surface is not None:
            sql += " AND surface = ?"
            params.append(surface)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit + 1)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        items = [rejection_row(r) for r in rows[:limit]]
        return Page(items, str(items[-1].id) if len(rows) > limit and items else None)

    async def delete_rejections(self, tenant: str, ids: Sequence[int]) -> int:
        unique = sorted({int(i) for i in ids})

        def job(tx: Tx) -> int:
            deleted = 0
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                sql = f"DELETE FROM rejections WHERE tenant = ? AND id IN ({marks})"
                deleted += tx.conn.execute(sql, (tenant, *part)).rowcount
            return deleted

        return await self._write(job) if unique else 0

    async def ingest_stats(self, tenant: str, start: int, end: int, samples: int = 3) -> IngestStats:
        def read(conn: sqlite3.Connection) -> IngestStats:
            stats = IngestStats()
            with ReadTx(conn):
                rows = conn.execute(
                    "SELECT meter, surface, outcome, sum(n) FROM ingest_counts WHERE tenant = ? AND minute >= ? "
                    "AND minute < ? GROUP BY meter, surface, outcome",
                    (tenant, start, end),
                )
                stats.counts = {(m, s, o): int(n) for m, s, o, n in rows}
                rejected = conn.execute(
                    f"SELECT {REJECTION_COLUMNS} FROM rejections WHERE tenant = ? AND created_at >= ? "
                    "AND created_at < ? ORDER BY id",
                    (tenant, start, end),
                ).fetchall()
            stats.rejection_groups = group_rejections([rejection_row(r) for r in rejected], samples)
            return stats

        return await self._read(read)

    # surface objects -----------------------------------------------------------------------------------
    async def put_object(
        self, tenant: str, kind: str, key: str, body: dict[str, Any], *, only_if_absent: bool = False
    ) -> bool:
        text = encode_json(body)
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"

        def job(tx: Tx) -> bool:
            cur = tx.conn.execute(
                f"{verb} INTO objects (tenant, kind, key, body) VALUES (?, ?, ?, ?)", (tenant, kind, key, text)
            )
            return cur.rowcount > 0

        return await self._write(job)

    async def get_object(self, tenant: str, kind: str, key: str) -> dict[str, Any] | None:
        sql = "SELECT body FROM objects WHERE tenant = ? AND kind = ? AND key = ?"
        row = await self._read(lambda c: c.execute(sql, (tenant, kind, key)).fetchone())
        return _json_object(row[0]) if row else None

    async def list_objects(self, tenant: str, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        sql = (
            "SELECT key, body FROM objects WHERE tenant = ? AND kind = ? AND substr(key, 1, length(?)) = ? ORDER BY key"
        )
        rows = await self._read(lambda c: c.execute(sql, (tenant, kind, prefix, prefix)).fetchall())
        return [(k, _json_object(b)) for k, b in rows]

    async def delete_object(self, tenant: str, kind: str, key: str) -> bool:
        def job(tx: Tx) -> bool:
            sql = "DELETE FROM objects WHERE tenant = ? AND kind = ? AND key = ?"
            return tx.conn.execute(sql, (tenant, kind, key)).rowcount > 0

        return await self._write(job)


def _json_object(text: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(text)
    return decoded


def _event_filter(
    conn: sqlite3.Connection, ctx: sqlite_ingest.Context, mids: dict[int, str], where: EventFilter
) -> tuple[str, list[Any]]:
    """SQL (after ``seq > ?``) selecting the events of ``mids`` that pass ``where``."""
    parts = [f"mid IN ({','.join('?' * len(mids))})"]
    params: list[Any] = list(mids)
    if where.customer is not None:
        sids = [sid for mid in mids for sid in ctx.names.sids_of(conn, mid, (where.customer,))]
        parts.append(f"sid IN ({','.join('?' * len(sids))})" if sids else "0")
        params += sids
    if where.surface is not None:
        parts.append("surface = ?")
        params.append(where.surface)
    if where.start is not None:
        parts.append("time >= ?")
        params.append(where.start)
    if where.end is not None:
        parts.append("time < ?")
        params.append(where.end)
    if where.status is not None:
        parts.append("live = ?")
        params.append(1 if where.status is EventStatus.LIVE else 0)
    return " AND ".join(parts), params


__all__ = ["STATS_BUCKET_MS", "SQLiteStore", "Tuning"]
