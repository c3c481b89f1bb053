"""Write jobs of the SQLite store for usage events: ingest with dedup, rejections and counts; void and amend.

Each function runs on the writer thread inside the group transaction (see ``sqlite_conn.Writer``), so the
dedup check and the insert happen under the database write lock, across threads and processes alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from meterd.core.errors import Conflict, NotFound
from meterd.core.events import canonical_content
from meterd.core.models import Correction, EventStatus, Outcome, UsageEvent
from meterd.storage.base import NewRejection
from meterd.storage.common import STATS_BUCKET_MS, replacement_id
from meterd.storage.memory import conflict_rejection
from meterd.storage.sqlite_conn import Tx
from meterd.storage.sqlite_rollup import DimRegistry, ValueKey, recompute_cells, watermark
from meterd.storage.sqlite_rows import (
    EVENT_COLUMNS,
    Names,
    dims_text,
    dims_value,
    errors_text,
    identity_hash,
    stored_event,
)

PROBE_SIZES = (16, 64, 256, 1024, 4096)
INSERT_EVENT = (
    "INSERT INTO events (h, mid, sid, surface, id, time, value, dims, end_time, raw, ingested_at, replaces) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(slots=True)
class Context:
    """Process-wide caches the write jobs share (see ``Names`` and ``DimRegistry``)."""

    names: Names = field(default_factory=Names)
    registry: DimRegistry = field(default_factory=DimRegistry)


@dataclass(slots=True)
class Batch:
    """The pending writes of one job."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    mids: dict[tuple[str, str], int] = field(default_factory=dict)
    sids: dict[tuple[int, str], int] = field(default_factory=dict)
    values: dict[ValueKey, str] = field(default_factory=dict)
    meters: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch with its identity hashes and dimension texts computed (in the caller's thread, off the writer)."""

    tenant: str
    events: Sequence[UsageEvent]
    hashes: list[int]
    texts: list[str | None]


def prepare(tenant: str, events: Sequence[UsageEvent]) -> Prepared:
    return Prepared(
        tenant,
        events,
        [identity_hash(tenant, e.surface, e.id) for e in events],
        [dims_text(e.dimensions) if e.dimensions else None for e in events],
    )


def _probe(conn: sqlite3.Connection, hashes: list[int]) -> dict[int, list[tuple[Any, ...]]]:
    """Stored (h, seq, mid, surface, id) rows whose hash is among ``hashes``."""
    found: dict[int, list[tuple[Any, ...]]] = {}
    start = 0
    while start < len(hashes):
        part = hashes[start : start + PROBE_SIZES[-1]]
        start += len(part)
        size = next(s for s in PROBE_SIZES if s >= len(part))
        padded = part + [part[0]] * (size - len(part))
        marks = ",".join("?" * size)
        for row in conn.execute(f"SELECT h, seq, mid, surface, id FROM events WHERE h IN ({marks})", padded):
            found.setdefault(row[0], []).append(row)
    return found


def _stored_content(ctx: Context, conn: sqlite3.Connection, seqs: list[int]) -> dict[int, str]:
    """The canonical content of stored events, by seq (to tell a duplicate from a conflict)."""
    contents: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        part = seqs[start : start + 500]
        marks = ",".join("?" * len(part))
        sql = f"SELECT seq, mid, sid, time, value, dims, end_time FROM events WHERE seq IN ({marks})"
        for seq, mid, sid, time, value, dims, end_time in conn.execute(sql, part):
            meter = ctx.names.meter(conn, mid, cache=False)[1]
            customer = ctx.names.customer(conn, sid, cache=False)
            event = UsageEvent("", meter, customer, time, value, dims_value(dims), end_time)
            contents[seq] = canonical_content(event)
    return contents


def _stored_seqs(
    ctx: Context, conn: sqlite3.Connection, prep: Prepared, found: dict[int, list[tuple[Any, ...]]]
) -> dict[tuple[str, str], int]:
    """(surface, id) -> seq of the batch's identities already stored (hash matches verified on the full id)."""
    wanted = {(e.surface, e.id) for e, h in zip(prep.events, prep.hashes, strict=True) if h in found}
    stored: dict[tuple[str, str], int] = {}
    for rows in found.values():
        for _, seq, mid, surface, event_id in rows:
            if (surface, event_id) in wanted and ctx.names.meter(conn, mid, cache=False)[0] == prep.tenant:
                stored[(surface, event_id)] = seq
    return stored


class _Known:
    """Identities a batch meets again: stored before, or accepted earlier in the same batch."""

    def __init__(self, ctx: Context, conn: sqlite3.Connection, prep: Prepared) -> None:
        found = _probe(conn, prep.hashes)
        self.stored = _stored_seqs(ctx, conn, prep, found) if found else {}
        self.contents = _stored_content(ctx, conn, sorted(set(self.stored.values()))) if self.stored else {}
        self.hashes = set(found)

    def outcome(self, event: UsageEvent, earlier: list[UsageEvent]) -> Outcome | None:
        """Duplicate or conflict when the identity is known; None when it is new (a mere hash collision)."""
        ident = (event.surface, event.id)
        seq = self.stored.get(ident)
        if seq is not None:
            content = self.contents[seq]
        else:
            same = [e for e in earlier if e.surface == event.surface and e.id == event.id]
            if not same:
                return None
            content = canonical_content(same[0])
        return Outcome.DUPLICATE if content == canonical_content(event) else Outcome.CONFLICT


def ingest(ctx: Context, tx: Tx, prep: Prepared, rejections: Sequence[NewRejection], now: int) -> list[Outcome]:
    """Decide and write every event's outcome, keep conflicts and ``rejections``, count outcomes."""
    conn, tenant, events = tx.conn, prep.tenant, prep.events
    known = _Known(ctx, conn, prep)
    seen = known.hashes
    fresh: dict[int, list[UsageEvent]] = {}
    batch = Batch()
    rows, meters, values = batch.rows, batch.meters, batch.values
    names, note = ctx.names, ctx.registry.note
    mids, sids = names.mids, names.sids
    outcomes: list[Outcome] = []
    conflicts: list[NewRejection] = []
    counts: dict[tuple[str, str, str], int] = {}
    accepted = Outcome.ACCEPTED
    for e, h, text in zip(events, prep.hashes, prep.texts, strict=True):
        if h in seen or h in fresh:
            outcome = known.outcome(e, fresh.get(h, []))
            if outcome is not None:
                outcomes.append(outcome)
                key = (e.meter, e.surface, outcome.value)
                counts[key] = counts.get(key, 0) + 1
                if outcome is Outcome.CONFLICT:
                    conflicts.append(conflict_rejection(e))
                continue
        fresh.setdefault(h, []).append(e)
        meter = e.meter
        mid = mids.get((tenant, meter)) or names.mid_for(tx, batch.mids, tenant, meter)
        sid = sids.get((mid, e.customer)) or names.sid_for(tx, batch.sids, mid, e.customer)
        if text is not None:
            note(values, mid, e.dimensions, text)
        meters.add(meter)
        rows.append((h, mid, sid, e.surface, e.id, e.time, e.value, text, e.end_time, e.raw, now, None))
        outcomes.append(accepted)
        key = (meter, e.surface, "accepted")
        counts[key] = counts.get(key, 0) + 1
    _flush(ctx, tx, batch, tenant, now)
    insert_rejections(conn, tenant, [*conflicts, *rejections], now)
    for r in rejections:
        key = (r.meter or "", r.surface, "rejected")
        counts[key] = counts.get(key, 0) + 1
    _bump(conn, tenant, counts, now)
    return outcomes


def _add_row(
    ctx: Context, tx: Tx, batch: Batch, tenant: str, event: UsageEvent, h: int, now: int, replaces: str | None
) -> None:
    names = ctx.names
    mid = names.mids.get((tenant, event.meter)) or names.mid_for(tx, batch.mids, tenant, event.meter)
    sid = names.sids.get((mid, event.customer)) or names.sid_for(tx, batch.sids, mid, event.customer)
    text = dims_text(event.dimensions)
    if text is not None:
        ctx.registry.note(batch.values, mid, event.dimensions, text)
    batch.meters.add(event.meter)
    batch.rows.append(
        (h, mid, sid, event.surface, event.id, event.time, event.value, text, event.end_time,
         event.raw, now, replaces)
    )


def _flush(ctx: Context, tx: Tx, batch: Batch, tenant: str, now: int) -> None:
    conn = tx.conn
    if batch.rows:
        conn.executemany(INSERT_EVENT, batch.rows)
        tx.events_written += len(batch.rows)
    if batch.values:
        ctx.registry.flush(tx, batch.values)
    if batch.meters:
        conn.executemany(
            "INSERT OR IGNORE INTO meters (tenant, key, aggregation, unit, description, unique_dimension, "
            "properties, created_at) VALUES (?, ?, 'sum', NULL, NULL, NULL, '{}', ?)",
            [(tenant, meter, now) for meter in sorted(batch.meters)],
        )


def insert_rejections(conn: sqlite3.Connection, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
    ids: list[int] = []
    for r in rejections:
        cur = conn.execute(
            "INSERT INTO rejections (tenant, surface, code, message, raw, created_at, meter, event_id, errors) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant, r.surface, r.code, r.message, r.raw, now, r.meter, r.event_id, errors_text(r.errors)),
        )
        ids.append(int(cur.lastrowid or 0))
    return ids


def count_rejections(conn: sqlite3.Connection, tenant: str, rejections: Sequence[NewRejection], now: int) -> None:
    counts: dict[tuple[str, str, str], int] = {}
    for r in rejections:
        key = (r.meter or "", r.surface, "rejected")
        counts[key] = counts.get(key, 0) + 1
    _bump(conn, tenant, counts, now)


def _bump(conn: sqlite3.Connection, tenant: str, counts: dict[tuple[str, str, str], int], now: int) -> None:
    if not counts:
        return
    minute = now // STATS_BUCKET_MS * STATS_BUCKET_MS
    conn.executemany(
        "INSERT INTO ingest_counts (tenant, meter, surface, outcome, minute, n) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(tenant, m, s, o, minute, n) for (m, s, o), n in counts.items()],
    )


# corrections ---------------------------------------------------------------------------------------------
def find_event(
    ctx: Context, conn: sqlite3.Connection, tenant: str, surface: str, event_id: str, cache: bool = False
) -> tuple[Any, ...] | None:
    """The stored row (``EVENT_COLUMNS``) of an identity, or None."""
    h = identity_hash(tenant, surface, event_id)
    for row in conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE h = ?", (h,)):
        if row[3] == surface and row[4] == event_id and ctx.names.meter(conn, row[1], cache)[0] == tenant:
            return tuple(row)
    return None


def _void(ctx: Context, tx: Tx, tenant: str, surface: str, event_id: str, replaced_by: str | None) -> None:
    conn = tx.conn
    row = find_event(ctx, conn, tenant, surface, event_id)
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    seq, mid, sid, time, dims, live = row[0], row[1], row[2], row[5], row[7], row[11]
    if not live:
        raise Conflict(f"event {event_id!r} is already voided")
    conn.execute("UPDATE events SET live = 0, replaced_by = ? WHERE seq = ?", (replaced_by, seq))
    if seq <= watermark(conn):
        recompute_cells(conn, mid, sid, time, dims)


def _audit(conn: sqlite3.Connection, tenant: str, c: Correction) -> Correction:
    cur = conn.execute(
        "INSERT INTO corrections (tenant, event_id, surface, action, reason, key_id, created_at, replacement_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (tenant, c.event_id, c.surface, c.action, c.reason, c.key_id, c.created_at, c.replacement_id),
    )
    return Correction(int(cur.lastrowid or 0), *(c.event_id, c.surface, c.action, c.reason, c.key_id),
                      c.created_at, c.replacement_id)


def void(
    ctx: Context, tx: Tx, tenant: str, surface: str, event_id: str, reason: str, key_id: str | None, now: int
) -> Correction:
    _void(ctx, tx, tenant, surface, event_id, None)
    return _audit(tx.conn, tenant, Correction(0, event_id, surface, "void", reason, key_id, now))


def amend(
    ctx: Context,
    tx: Tx,
    tenant: str,
    surface: str,
    event_id: str,
    replacement: UsageEvent,
    reason: str,
    key_id: str | None,
    now: int,
) -> Correction:
    new_id = replacement.id or replacement_id(event_id, now)
    conn = tx.conn
    if find_event(ctx, conn, tenant, surface, new_id) is not None:
        raise Conflict(f"event {new_id!r} exists already")
    _void(ctx, tx, tenant, surface, event_id, new_id)
    event = UsageEvent(
        new_id, replacement.meter, replacement.customer, replacement.time, replacement.value,
        replacement.dimensions, replacement.end_time, surface, replacement.raw,
    )
    batch = Batch()
    _add_row(ctx, tx, batch, tenant, event, identity_hash(tenant, surface, new_id), now, event_id)
    _flush(ctx, tx, batch, tenant, now)
    return _audit(conn, tenant, Correction(0, event_id, surface, "amend", reason, key_id, now, new_id))


def close_interval(
    ctx: Context, tx: Tx, tenant: str, surface: str, event_id: str, end_time: int, now: int
) -> Outcome:
    """Give a live open interval its end; the same end again is a duplicate, anything else a conflict."""
    conn = tx.conn
    row = find_event(ctx, conn, tenant, surface, event_id)
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    stored = stored_event(ctx.names, conn, row, cache=False)
    event = stored.event
    if event.end_time == end_time:
        outcome = Outcome.DUPLICATE
    elif event.end_time is not None or end_time < event.time or stored.status is not EventStatus.LIVE:
        insert_rejections(conn, tenant, [conflict_rejection(replace(event, end_time=end_time))], now)
        outcome = Outcome.CONFLICT
    else:
        conn.execute("UPDATE events SET end_time = ? WHERE seq = ?", (end_time, stored.seq))
        outcome = Outcome.ACCEPTED
    _bump(conn, tenant, {(event.meter, surface, outcome.value): 1}, now)
    return outcome
