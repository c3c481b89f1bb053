"""PostgreSQL ingest: COPY a batch into a staging table, insert with ON CONFLICT, classify what was not new."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from meterd.core.errors import InvalidInput, StorageError
from meterd.core.events import fingerprint
from meterd.core.models import Outcome, UsageEvent
from meterd.storage.base import NewRejection
from meterd.storage.common import STATS_BUCKET_MS
from meterd.storage.memory import conflict_rejection
from meterd.storage.postgres_rows import MAX_PROBES, dedup_key, dumps, encode_errors, fold_dims, text_safe

Conn = AsyncConnection[Any]

STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS _stage (key bigint, surface text, id text, meter text, customer text, "
    "time bigint, value double precision, dims text, end_time bigint, raw text, fp text, fdims text, ord integer, "
    "replaces text) ON COMMIT DELETE ROWS"
)
STAGE_COPY = (
    "COPY _stage (key, surface, id, meter, customer, time, value, dims, end_time, raw, fp, fdims, ord, replaces) "
    "FROM STDIN"
)
# One statement: new events, their batch's pending row and any unknown meter; returns what was inserted.
# Sequence numbers are (one sequence value per batch) << 24 + position in the batch, so they follow ingest
# order and the batch's events are one seq range; rows are inserted in key order so that concurrent batches
# take their unique-index locks in the same order (no deadlocks).
INSERT_SQL = """
WITH ins AS (
  INSERT INTO events (key, seq, tenant, surface, id, meter, customer, time, value, dims, fdims, end_time, raw, fp,
                      ingested_at, replaces)
  SELECT key, ((SELECT nextval('events_seq')) << 24) + ord, %(t)s, surface, id, meter, customer, time, value,
         dims, fdims, end_time, raw, fp, %(now)s, replaces
  FROM _stage ORDER BY key
  ON CONFLICT (key) DO NOTHING
  RETURNING seq, surface, id, meter),
pend AS (
  INSERT INTO pending (batch, tenant, n) SELECT seq >> 24, %(t)s, count(*) FROM ins GROUP BY 1),
met AS (
  INSERT INTO meters (tenant, key, aggregation, properties, created_at)
  SELECT %(t)s, meter, 'sum', '{}'::json, %(now)s FROM (SELECT DISTINCT meter FROM ins) AS m ORDER BY 2
  ON CONFLICT DO NOTHING)
SELECT surface, id FROM ins
"""
STORED_SQL = "SELECT key, tenant, surface, id, fp FROM events WHERE key = ANY(%s)"
REJECT_SQL = (
    "INSERT INTO rejections (tenant, surface, code, message, raw, created_at, meter, event_id, errors) "
    "SELECT %s, s, c, m, w, a, r, e, j FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], "
    "%s::text[], %s::text[], %s::json[]) WITH ORDINALITY AS x(s, c, m, w, a, r, e, j, o) ORDER BY o RETURNING id"
)
COUNTS_SQL = (
    "INSERT INTO ingest_counts (tenant, meter, surface, outcome, minute, n) "
    "SELECT %s, m, s, o, %s, n FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS c(m, s, o, n)"
)


@dataclass(slots=True)
class Staged:
    """The first occurrence of one identity in a batch, ready to COPY."""

    event: UsageEvent
    index: int
    fp: str
    key: int


def stage_row(s: Staged, key: int, replaces: str | None = None) -> tuple[Any, ...]:
    e = s.event
    dims = dumps(e.dimensions)
    return (key, e.surface, e.id, e.meter, e.customer, e.time, e.value, dims, e.end_time, text_safe(e.raw), s.fp,
            fold_dims(e.dimensions, dims), s.index, replaces)


async def copy_stage(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    async with conn.cursor().copy(STAGE_COPY) as copy:
        for row in rows:
            await copy.write_row(row)


async def insert_staged(conn: Conn, tenant: str, now: int) -> set[tuple[str, str]]:
    """Run :data:`INSERT_SQL` over the staged rows; the (surface, id) of those inserted."""
    cur = await conn.execute(INSERT_SQL, {"t": tenant, "now": now})
    return {(row[0], row[1]) for row in await cur.fetchall()}


async def insert_probing(
    conn: Conn, tenant: str, s: Staged, now: int, bits: int, replaces: str | None = None
) -> tuple[bool, str]:
    """Insert one identity whose first key is taken by another identity: try the next probes in order.

    Returns whether it was inserted here, and the fingerprint stored for the identity.
    """
    ident = (tenant, s.event.surface, s.event.id)
    for probe in range(1, MAX_PROBES):
        key = dedup_key(*ident, probe, bits)
        await conn.execute("TRUNCATE _stage")
        await copy_stage(conn, [stage_row(s, key, replaces)])
        if await insert_staged(conn, tenant, now):
            return True, s.fp
        cur = await conn.execute("SELECT tenant, surface, id, fp FROM events WHERE key = %s", (key,))
        row = await cur.fetchone()
        if row is not None and (row[0], row[1], row[2]) == ident:
            return False, str(row[3])
    raise StorageError(f"no free dedup key for event {s.event.id!r}")


def stage_batch(tenant: str, events: Sequence[UsageEvent], bits: int) -> tuple[list[Staged], list[str], list[int]]:
    """First occurrences to stage, every event's fingerprint, and each event's index into the staged list."""
    staged: list[Staged] = []
    fps: list[str] = []
    slots: list[int] = []
    firsts: dict[tuple[str, str], int] = {}
    for index, event in enumerate(events):
        fp = fingerprint(event)
        fps.append(fp)
        ident = (event.surface, event.id)
        slot = firsts.get(ident)
        if slot is None:
            slot = firsts[ident] = len(staged)
            staged.append(Staged(event, index, fp, dedup_key(tenant, event.surface, event.id, 0, bits)))
        slots.append(slot)
    return staged, fps, slots


async def ingest_batch(
    conn: Conn,
    tenant: str,
    events: Sequence[UsageEvent],
    rejections: Sequence[NewRejection],
    now: int,
    bits: int,
) -> list[Outcome]:
    """The whole ingest transaction body (the caller opens and commits the transaction)."""
    staged, fps, slots = stage_batch(tenant, events, bits)
    if len(staged) >= 1 << 24:
        raise InvalidInput(f"at most {1 << 24} events per batch")
    stored: dict[int, str] = {}
    inserted: set[tuple[str, str]] = set()
    if staged:
        await copy_stage(conn, [stage_row(s, s.key) for s in staged])
        inserted = await insert_staged(conn, tenant, now)
        stored = await classify_rest(conn, tenant, staged, inserted, now, bits)
    outcomes: list[Outcome] = []
    conflicts: list[NewRejection] = []
    for index, event in enumerate(events):
        s = staged[slots[index]]
        if s.index == index and (event.surface, event.id) in inserted:
            outcomes.append(Outcome.ACCEPTED)
        elif fps[index] == stored.get(slots[index], s.fp):
            outcomes.append(Outcome.DUPLICATE)
        else:
            outcomes.append(Outcome.CONFLICT)
            conflicts.append(conflict_rejection(event))
    every = [*conflicts, *rejections]
    await insert_rejections(conn, tenant, every, now)
    await count_outcomes(conn, tenant, events, outcomes, rejections, now)
    return outcomes


async def classify_rest(
    conn: Conn, tenant: str, staged: list[Staged], inserted: set[tuple[str, str]], now: int, bits: int
) -> dict[int, str]:
    """The stored fingerprint of every staged identity that was not inserted by this batch (by staged index).

    ON CONFLICT waited for any concurrent writer of the same key to finish, so what it stored is committed
    and visible to this new statement.
    """
    rest = [i for i, s in enumerate(staged) if (s.event.surface, s.event.id) not in inserted]
    if not rest:
        return {}
    cur = await conn.execute(STORED_SQL, ([staged[i].key for i in rest],))
    by_key = {row[0]: row for row in await cur.fetchall()}
    stored: dict[int, str] = {}
    for i in rest:
        s = staged[i]
        row = by_key.get(s.key)
        if row is not None and (row[1], row[2], row[3]) == (tenant, s.event.surface, s.event.id):
            stored[i] = row[4]
            continue
        done, fp = await insert_probing(conn, tenant, s, now, bits)
        if done:
            inserted.add((s.event.surface, s.event.id))
        else:
            stored[i] = fp
    return stored


async def insert_rejections(conn: Conn, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
    """Keep rejected records in order; their ids."""
    if not rejections:
        return []
    cols: list[list[Any]] = [[], [], [], [], [], [], [], []]
    for r in rejections:
        for col, value in zip(cols, (r.surface, r.code, text_safe(r.message), text_safe(r.raw), now,
                                     text_safe(r.meter), text_safe(r.event_id), encode_errors(r.errors)),
                              strict=True):
            col.append(value)
    cur = await conn.execute(REJECT_SQL, (tenant, *cols))
    return [row[0] for row in await cur.fetchall()]


async def count_outcomes(
    conn: Conn,
    tenant: str,
    events: Sequence[UsageEvent],
    outcomes: Sequence[Outcome],
    rejections: Sequence[NewRejection],
    now: int,
) -> None:
    """Append this batch's outcome counts (read back summed by ``ingest_stats``)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for event, outcome in zip(events, outcomes, strict=True):
        counts[(event.meter, event.surface, outcome.value)] += 1
    for r in rejections:
        counts[(text_safe(r.meter) or "", r.surface, Outcome.REJECTED.value)] += 1
    if not counts:
        return
    keys = list(counts)
    await conn.execute(
        COUNTS_SQL,
        (tenant, now // STATS_BUCKET_MS * STATS_BUCKET_MS, [k[0] for k in keys], [k[1] for k in keys],
         [k[2] for k in keys], [counts[k] for k in keys]),
    )
