"""The rollup cache: fold pending events into exact per-hour/day aggregates, and unfold voided ones.

Every ingest transaction that stores events adds its batch to ``pending``. A fold takes pending batches and
adds their live events to ``rollup`` in one transaction, so at any snapshot each live event counts exactly
once: either in a pending batch or in ``rollup``. Folds and voids hold one transaction-level advisory lock,
so they never race.
Dimension keys of a meter are rolled up (by UTC day) while they have at most ``max_values`` distinct values.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
LVL_HOUR, LVL_DAY = 1, 2
WIDTH = {LVL_HOUR: HOUR_MS, LVL_DAY: DAY_MS}
FOLD_LOCK = "meterd.fold:"

Conn = AsyncConnection[Any]

FOLD_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS _fold (seq bigint, tenant text COLLATE \"C\", meter text COLLATE \"C\", "
    "customer text COLLATE \"C\", time bigint, value double precision, dims json) ON COMMIT DELETE ROWS"
)
# Whole pending batches, oldest first, up to about ``limit`` events (at least one batch).
TAKE_SQL = """
DELETE FROM pending WHERE batch IN (
  SELECT batch FROM (SELECT batch, sum(n) OVER (ORDER BY batch) - n AS before FROM pending) AS r WHERE before < %s)
RETURNING batch
"""
# The live events of the taken batches (each batch is one seq range).
FILL_SQL = """
INSERT INTO _fold
SELECT e.seq, e.tenant, e.meter, e.customer, e.time, e.value, coalesce(e.fdims, e.dims)::json
FROM unnest(%s::bigint[]) AS b(batch) JOIN events AS e ON e.seq >= b.batch << 24 AND e.seq < (b.batch + 1) << 24
WHERE NOT e.voided
"""
# New values of rolled keys in this batch are recorded; the keys that got any are returned.
VALUES_SQL = """
WITH v AS (
  SELECT DISTINCT f.tenant, f.meter, k.dkey, dval(f.dims -> k.dkey) AS dval
  FROM _fold AS f JOIN rollup_keys AS k ON k.tenant = f.tenant AND k.meter = f.meter AND k.rolled),
ins AS (
  INSERT INTO rollup_values (tenant, meter, dkey, dval, cls)
  SELECT tenant, meter, dkey, dval, dcls(dval) FROM v WHERE dval IS NOT NULL ORDER BY 1, 2, 3, 4
  ON CONFLICT DO NOTHING RETURNING tenant, meter, dkey)
SELECT tenant, meter, dkey, count(*) FROM ins GROUP BY 1, 2, 3
UNION ALL
SELECT DISTINCT tenant, meter, dkey, 0 FROM v WHERE dval IS NULL
"""
# A key stops being rolled up once it has too many values, an unrollable one, or two equal-in-Python ones.
CHECK_KEY_SQL = """
UPDATE rollup_keys SET nvalues = nvalues + %(n)s, rolled = rolled AND nvalues + %(n)s <= %(max)s AND NOT %(bad)s
  AND NOT EXISTS (SELECT 1 FROM rollup_values WHERE tenant = %(t)s AND meter = %(m)s AND dkey = %(k)s
                  GROUP BY cls HAVING count(*) > 1)
WHERE tenant = %(t)s AND meter = %(m)s AND dkey = %(k)s RETURNING rolled
"""
DROP_KEY_SQL = """
WITH a AS (DELETE FROM rollup WHERE tenant = %(t)s AND meter = %(m)s AND lvl = 2 AND dkey = %(k)s)
DELETE FROM rollup_values WHERE tenant = %(t)s AND meter = %(m)s AND dkey = %(k)s
"""
UPSERT = """
ON CONFLICT (tenant, meter, lvl, dkey, customer, bucket, dval) DO UPDATE SET
  n = rollup.n + excluded.n, total = rollup.total + excluded.total,
  lo = least(rollup.lo, excluded.lo), hi = greatest(rollup.hi, excluded.hi)
"""
FOLD_SQL = """
INSERT INTO rollup (tenant, meter, lvl, dkey, customer, bucket, dval, n, total, lo, hi)
SELECT tenant, meter, lvl, dkey, customer, bucket, dval, count(*), sum(value), min(value), max(value) FROM (
  SELECT tenant, meter, 1 AS lvl, '' AS dkey, customer, time - time %% 3600000 AS bucket, 'null' AS dval, value
  FROM _fold
  UNION ALL
  SELECT tenant, meter, 2, '', customer, time - time %% 86400000, 'null', value FROM _fold
  UNION ALL
  SELECT f.tenant, f.meter, 2, k.dkey, f.customer, f.time - f.time %% 86400000, dval(f.dims -> k.dkey), f.value
  FROM _fold AS f JOIN rollup_keys AS k ON k.tenant = f.tenant AND k.meter = f.meter AND k.rolled
) AS x
GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
""" + UPSERT
NEW_KEYS_SQL = """
SELECT DISTINCT f.tenant, f.meter, k FROM _fold AS f, json_object_keys(f.dims) AS k
WHERE NOT EXISTS (SELECT 1 FROM rollup_keys AS r WHERE r.tenant = f.tenant AND r.meter = f.meter AND r.dkey = k)
ORDER BY 1, 2, 3
"""
# The number of distinct values a new key has in this batch (over the cap means it is never rolled up).
BATCH_VALUES_SQL = """
SELECT count(DISTINCT dval(dims -> %(k)s)) FROM _fold WHERE tenant = %(t)s AND meter = %(m)s
"""
# A new key: every earlier folded live event of the meter lacks it, so its ('null') cells are exactly the
# meter's daily cells as they stand before this batch is folded (copied, no arithmetic: min and max stay exact).
BACKFILL_SQL = """
WITH cells AS (
  INSERT INTO rollup (tenant, meter, lvl, dkey, customer, bucket, dval, n, total, lo, hi)
  SELECT tenant, meter, 2, %(k)s, customer, bucket, 'null', n, total, lo, hi FROM rollup
  WHERE tenant = %(t)s AND meter = %(m)s AND lvl = 2 AND dkey = '' AND n > 0 RETURNING 1),
vals AS (
  INSERT INTO rollup_values (tenant, meter, dkey, dval, cls)
  SELECT %(t)s, %(m)s, %(k)s, 'null', 'null' WHERE EXISTS (SELECT 1 FROM cells) RETURNING 1)
SELECT count(*) FROM vals
"""
REGISTER_SQL = (
    "INSERT INTO rollup_keys (tenant, meter, dkey, rolled, nvalues) VALUES (%(t)s, %(m)s, %(k)s, %(r)s, %(n)s)"
)


async def lock_fold(conn: Conn, schema: str, *, wait: bool) -> bool:
    """Take the fold lock for the current transaction (``wait=False``: only if free)."""
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    cur = await conn.execute(f"SELECT {fn}(hashtextextended(%s, 0))::text", (FOLD_LOCK + schema,))
    row = await cur.fetchone()
    return wait or (row is not None and row[0] == "true")


async def fold_batch(conn: Conn, schema: str, limit: int, max_values: int) -> tuple[int, bool]:
    """Fold pending batches of up to about ``limit`` events (inside the caller's transaction).

    Returns how many events were folded and whether pending batches remain; (0, False) without waiting when
    another process is folding.
    """
    if not await lock_fold(conn, schema, wait=False):
        return 0, False
    await conn.execute("SET LOCAL work_mem = '64MB'")
    cur = await conn.execute(TAKE_SQL, (limit,))
    batches = [row[0] for row in await cur.fetchall()]
    if not batches:
        return 0, False
    cur = await conn.execute(FILL_SQL, (batches,))
    taken = cur.rowcount
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pending)")
    row = await cur.fetchone()
    more = bool(row and row[0])
    if taken <= 0:
        return 0, more
    cur = await conn.execute(NEW_KEYS_SQL)
    for tenant, meter, dkey in await cur.fetchall():
        await register_key(conn, tenant, meter, dkey, max_values)
    cur = await conn.execute(VALUES_SQL)
    for tenant, meter, dkey, grown in await cur.fetchall():
        params = {"t": tenant, "m": meter, "k": dkey, "n": grown, "bad": grown == 0, "max": max_values}
        cur = await conn.execute(CHECK_KEY_SQL, params)
        row = await cur.fetchone()
        if row is not None and not row[0]:
            await conn.execute(DROP_KEY_SQL, params)
    await conn.execute(FOLD_SQL, {})
    return taken, more


async def register_key(conn: Conn, tenant: str, meter: str, dkey: str, max_values: int) -> None:
    """Start rolling up a meter's new dimension key (before this batch is folded, which then includes it).

    The key is rolled unless this batch alone has too many values; :data:`VALUES_SQL` then records the batch's
    values and drops the key when they clash or overflow.
    """
    params: dict[str, Any] = {"t": tenant, "m": meter, "k": dkey}
    cur = await conn.execute(BATCH_VALUES_SQL, params)
    row = await cur.fetchone()
    rolled = row is not None and row[0] <= max_values
    nvalues = 0
    if rolled:
        cur = await conn.execute(BACKFILL_SQL, params)
        row = await cur.fetchone()
        nvalues = row[0] if row else 0
    await conn.execute(REGISTER_SQL, {**params, "r": rolled, "n": nvalues})


async def unfold_event(conn: Conn, seq: int, tenant: str, meter: str, customer: str, time: int) -> None:
    """Take a just-voided event out of the cache (the caller holds the fold lock and voided the row)."""
    cur = await conn.execute("SELECT 1 FROM pending WHERE batch = %s", (seq >> 24,))
    if await cur.fetchone() is not None:
        return  # not folded yet: the fold and the pending half of queries skip voided events
    params: dict[str, Any] = {"t": tenant, "m": meter, "c": customer, "seq": seq}
    for lvl, width in WIDTH.items():
        bucket = time - time % width
        await conn.execute(RECOMPUTE_SQL, {**params, "lvl": lvl, "b": bucket, "e": bucket + width})
    await conn.execute(RECOMPUTE_DIMS_SQL, {**params, "b": time - time % DAY_MS, "e": time - time % DAY_MS + DAY_MS})


# Recompute the cells the voided event was in from the folded live events (exact, floats included).
RECOMPUTE_SQL = """
UPDATE rollup AS r SET n = a.n, total = a.total, lo = a.lo, hi = a.hi FROM (
  SELECT count(*) AS n, coalesce(sum(e.value), 0) AS total, min(e.value) AS lo, max(e.value) AS hi
  FROM events AS e WHERE e.tenant = %(t)s AND e.meter = %(m)s AND e.customer = %(c)s AND e.time >= %(b)s
  AND e.time < %(e)s AND NOT e.voided AND NOT EXISTS (SELECT 1 FROM pending AS p WHERE p.batch = e.seq >> 24)
) AS a
WHERE r.tenant = %(t)s AND r.meter = %(m)s AND r.lvl = %(lvl)s AND r.dkey = '' AND r.customer = %(c)s
AND r.bucket = %(b)s AND r.dval = 'null'
"""
RECOMPUTE_DIMS_SQL = """
UPDATE rollup AS r SET n = coalesce(a.n, 0), total = coalesce(a.total, 0), lo = a.lo, hi = a.hi
FROM (SELECT dkey, dval(v.dims -> dkey) AS dval FROM rollup_keys,
      (SELECT coalesce(fdims, dims)::json AS dims FROM events WHERE seq = %(seq)s AND tenant = %(t)s) AS v
      WHERE tenant = %(t)s AND meter = %(m)s AND rolled) AS cell
LEFT JOIN LATERAL (
  SELECT count(*) AS n, sum(e.value) AS total, min(e.value) AS lo, max(e.value) AS hi
  FROM events AS e WHERE e.tenant = %(t)s AND e.meter = %(m)s AND e.customer = %(c)s AND e.time >= %(b)s
  AND e.time < %(e)s AND NOT e.voided AND NOT EXISTS (SELECT 1 FROM pending AS p WHERE p.batch = e.seq >> 24)
  AND dval(coalesce(e.fdims, e.dims)::json -> cell.dkey) = cell.dval
) AS a ON true
WHERE r.tenant = %(t)s AND r.meter = %(m)s AND r.lvl = 2 AND r.dkey = cell.dkey AND r.customer = %(c)s
AND r.bucket = %(b)s AND r.dval = cell.dval
"""
