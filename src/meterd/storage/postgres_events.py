"""PostgresStore parts for stored events: lookup, listing, voids and amendments with their audit trail."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from meterd.core.errors import Conflict, NotFound
from meterd.core.events import fingerprint
from meterd.core.models import Correction, EventStatus, Outcome, StoredEvent, UsageEvent
from meterd.storage.base import EventFilter, Page
from meterd.storage.common import replacement_id, seq_cursor
from meterd.storage.memory import conflict_rejection
from meterd.storage.postgres_base import Conn, PgBase
from meterd.storage.postgres_fold import lock_fold, unfold_event
from meterd.storage.postgres_ingest import (
    Staged,
    copy_stage,
    count_outcomes,
    insert_probing,
    insert_rejections,
    insert_staged,
    stage_row,
)
from meterd.storage.postgres_rows import CORRECTION_COLUMNS, EVENT_COLUMNS, probe_keys, to_correction, to_stored_event

FIND_SQL = f"SELECT {EVENT_COLUMNS} FROM events WHERE key = ANY(%s) AND tenant = %s AND surface = %s AND id = %s"


class EventsMixin(PgBase):
    """Reading events back, and correcting them (the rollup cache follows every correction exactly)."""

    key_bits: int = 64

    async def _find(
        self, conn: Conn, tenant: str, surface: str, event_id: str, lock: bool = False
    ) -> StoredEvent | None:
        sql = FIND_SQL + (" FOR UPDATE" if lock else "")
        keys = probe_keys(tenant, surface, event_id, self.key_bits)
        cur = await conn.execute(sql, (keys, tenant, surface, event_id))
        row = await cur.fetchone()
        return to_stored_event(row) if row else None

    async def get_event(self, tenant: str, surface: str, event_id: str) -> StoredEvent | None:
        async def work(conn: Conn) -> StoredEvent | None:
            return await self._find(conn, tenant, surface, event_id)

        return await self._run(work)

    async def list_events(self, tenant: str, where: EventFilter, limit: int = 100, cursor: str | None = None) -> Page:
        params: dict[str, Any] = {"t": tenant, "after": seq_cursor(cursor), "n": max(limit, 0) + 1}
        conds = ["tenant = %(t)s", "seq > %(after)s"]
        for name, column, op in (
            ("surface", "surface", "="),
            ("meter", "meter", "="),
            ("customer", "customer", "="),
            ("start", "time", ">="),
            ("end", "time", "<"),
        ):
            value = getattr(where, name)
            if value is not None:
                conds.append(f"{column} {op} %({name})s")
                params[name] = value
        if where.status is not None:
            conds.append("voided = %(voided)s")
            params["voided"] = where.status.value == "voided"
        rows = await self._rows(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(conds)} ORDER BY seq LIMIT %(n)s", params
        )
        items = [to_stored_event(r) for r in rows[:limit]]
        return Page(items, str(items[-1].seq) if len(rows) > limit and items else None)

    async def _void(self, conn: Conn, tenant: str, surface: str, event_id: str, replaced_by: str | None) -> StoredEvent:
        """Void a live event and take it out of the rollup cache (the caller holds the fold lock)."""
        stored = await self._find(conn, tenant, surface, event_id, lock=True)
        if stored is None:
            raise NotFound(f"no event {event_id!r}")
        if stored.status.value == "voided":
            raise Conflict(f"event {event_id!r} is already voided")
        await conn.execute(
            "UPDATE events SET voided = true, replaced_by = %s WHERE seq = %s AND tenant = %s",
            (replaced_by, stored.seq, tenant),
        )
        e = stored.event
        await unfold_event(conn, stored.seq, tenant, e.meter, e.customer, e.time)
        return stored

    async def _audit(self, conn: Conn, tenant: str, c: Correction) -> Correction:
        cur = await conn.execute(
            "INSERT INTO corrections (tenant, event_id, surface, action, reason, key_id, created_at, replacement_id) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {CORRECTION_COLUMNS}",
            (tenant, c.event_id, c.surface, c.action, c.reason, c.key_id, c.created_at, c.replacement_id),
        )
        row = await cur.fetchone()
        assert row is not None
        return to_correction(row)

    async def void_event(
        self, tenant: str, surface: str, event_id: str, reason: str, key_id: str | None, now: int
    ) -> Correction:
        async def work(conn: Conn) -> Correction:
            await lock_fold(conn, self.schema, wait=True)
            await self._void(conn, tenant, surface, event_id, None)
            return await self._audit(conn, tenant, Correction(0, event_id, surface, "void", reason, key_id, now))

        return await self._run(work)

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
        new_id = replacement.id or replacement_id(event_id, now)
        new = replace(replacement, id=new_id, surface=surface)

        async def work(conn: Conn) -> Correction:
            await lock_fold(conn, self.schema, wait=True)
            if await self._find(conn, tenant, surface, new_id) is not None:
                raise Conflict(f"event {new_id!r} exists already")
            await self._void(conn, tenant, surface, event_id, new_id)
            await self._store_one(conn, tenant, new, now, event_id)
            return await self._audit(
                conn, tenant, Correction(0, event_id, surface, "amend", reason, key_id, now, new_id)
            )

        return await self._run(work)

    async def _store_one(self, conn: Conn, tenant: str, event: UsageEvent, now: int, replaces: str) -> None:
        """Insert one event known to be absent (probing past keys taken by other identities)."""
        keys = probe_keys(tenant, event.surface, event.id, self.key_bits)
        s = Staged(event, 0, fingerprint(event), keys[0])
        await conn.execute("TRUNCATE _stage")
        await copy_stage(conn, [stage_row(s, s.key, replaces)])
        if not await insert_staged(conn, tenant, now):
            done, _ = await insert_probing(conn, tenant, s, now, self.key_bits, replaces)
            if not done:
                raise Conflict(f"event {event.id!r} exists already")

    async def close_interval(self, tenant: str, surface: str, event_id: str, end_time: int, now: int) -> Outcome:
        async def work(conn: Conn) -> Outcome:
            stored = await self._find(conn, tenant, surface, event_id, lock=True)
            if stored is None:
                raise NotFound(f"no event {event_id!r}")
            event = stored.event
            closed = replace(event, end_time=end_time)
            if event.end_time == end_time:
                outcome = Outcome.DUPLICATE
            elif event.end_time is not None or end_time < event.time or stored.status is EventStatus.VOIDED:
                await insert_rejections(conn, tenant, [conflict_rejection(closed)], now)
                outcome = Outcome.CONFLICT
            else:
                await conn.execute(
                    "UPDATE events SET end_time = %s, fp = %s WHERE seq = %s AND tenant = %s",
                    (end_time, fingerprint(closed), stored.seq, tenant),
                )
                outcome = Outcome.ACCEPTED
            await count_outcomes(conn, tenant, [event], [outcome], (), now)
            return outcome

        return await self._run(work)

    async def list_corrections(self, tenant: str, surface: str, event_id: str) -> list[Correction]:
        rows = await self._rows(
            f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE tenant = %s AND surface = %s ORDER BY id",
            (tenant, surface),
        )
        every = [to_correction(r) for r in rows]
        related = {event_id}
        for c in every:
            if c.replacement_id and c.event_id in related:
                related.add(c.replacement_id)
        return [c for c in every if c.event_id in related]
