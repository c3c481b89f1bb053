"""Rollups of the SQLite store: an exact cache of hourly and daily (UTC) sum/count/min/max of live events.

Invariant: the rollup tables hold exactly the live events with ``seq <= rollup_state.watermark`` (the "rolled"
events). Events above the watermark (the "tail") are read raw by queries, in the same read transaction, so
answers stay exact at every instant. The writer thread rolls the tail in one bulk pass every
``roll_every`` events or when idle (far cheaper than updating rollup cells in every ingest transaction);
voiding a rolled event recomputes its cells from the raw events in the void's own transaction.

Per meter, every dimension key with at most ``MAX_ROLLED_VALUES`` distinct values is rolled up per value
(``dv``: the value as JSON text, ``'null'`` when absent). A key's state in ``dim_keys`` is ``pending`` (seen,
not rolled yet), ``rolled``, or ``high`` (too many values: never rolled; its rollups are dropped).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable

from meterd.core.models import Dimensions, Scalar
from meterd.storage.sqlite_conn import Tx
from meterd.storage.sqlite_rows import json_path

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MAX_ROLLED_VALUES = 32
MAX_ROLL_ROWS = 500_000
AGG_UPSERT = (
    " ON CONFLICT DO UPDATE SET s = s + excluded.s, c = c + excluded.c, "
    "mn = min(mn, excluded.mn), mx = max(mx, excluded.mx)"
)
TABLES = (("roll_hour", "roll_hour_dim", HOUR_MS), ("roll_day", "roll_day_dim", DAY_MS))

ValueKey = tuple[int, str, object]


def value_key(mid: int, key: str, value: Scalar) -> ValueKey:
    """A hashable key telling apart values Python calls equal (1, 1.0, True; 0.0, -0.0)."""
    if type(value) is str:
        return (mid, key, value)
    return (mid, key, (type(value).__name__, repr(value)))


class DimRegistry:
    """Per-process memory of which (meter, key, value) the ``dim_values`` table already holds.

    It only saves redundant writes: the table is the truth, read and written inside the ingest transaction.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.high: set[tuple[int, str]] = set()
        self.known: set[ValueKey] = set()

    def note(self, new: dict[ValueKey, str], mid: int, dims: Dimensions, text: str) -> None:
        """Collect the values of ``dims`` (stored as ``text``) that may be new to the registry (hot path)."""
        high, known = self.high, self.known
        for key, value in dims.items():
            if (mid, key) in high:
                continue
            vk = (mid, key, value) if type(value) is str else value_key(mid, key, value)
            if vk not in known:
                new[vk] = text

    def flush(self, tx: Tx, new: dict[ValueKey, str]) -> None:
        """Record new values; a key that passes ``MAX_ROLLED_VALUES`` becomes ``high`` and loses its rollups.

        A value is recorded as the JSON text SQLite extracts from the stored dimensions, the very text the
        rollups group by, whatever JSON encoder wrote the event.
        """
        by_key: dict[tuple[int, str], list[tuple[ValueKey, str]]] = defaultdict(list)
        for vk, text in new.items():
            by_key[(int(vk[0]), str(vk[1]))].append((vk, text))
        conn = tx.conn
        for (mid, key), values in by_key.items():
            row = conn.execute("SELECT state FROM dim_keys WHERE mid = ? AND dk = ?", (mid, key)).fetchone()
            path = json_path(key)
            state = row[0] if row else ("pending" if path is not None else "high")
            if row is None:
                conn.execute("INSERT INTO dim_keys (mid, dk, state) VALUES (?, ?, ?)", (mid, key, state))
            if state != "high":
                conn.executemany(
                    "INSERT OR IGNORE INTO dim_values (mid, dk, dv) VALUES (?, ?, coalesce(? -> ?, 'null'))",
                    [(mid, key, text, path) for _, text in values],
                )
                count = conn.execute("SELECT count(*) FROM dim_values WHERE mid = ? AND dk = ?", (mid, key)).fetchone()
                if count[0] > MAX_ROLLED_VALUES:
                    state = "high"
                    _drop_key(conn, mid, key)
            if state == "high":
                tx.after_commit.append(functools.partial(self._mark_high, (mid, key)))
            else:
                tx.after_commit.append(functools.partial(self._mark_known, [vk for vk, _ in values]))

    def _mark_high(self, key: tuple[int, str]) -> None:
        with self._lock:
            self.high.add(key)

    def _mark_known(self, keys: Iterable[ValueKey]) -> None:
        with self._lock:
            self.known.update(keys)


def _drop_key(conn: sqlite3.Connection, mid: int, key: str) -> None:
    conn.execute("UPDATE dim_keys SET state = 'high' WHERE mid = ? AND dk = ?", (mid, key))
    conn.execute("DELETE FROM dim_values WHERE mid = ? AND dk = ?", (mid, key))
    for _, dim_table, _ in TABLES:
        conn.execute(f"DELETE FROM {dim_table} WHERE mid = ? AND dk = ?", (mid, key))


def watermark(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT watermark FROM rollup_state WHERE id = 1").fetchone()[0])


def max_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


def maintain(conn: sqlite3.Connection, unrolled: int, idle: bool) -> int:
    """The writer's maintenance pass: roll the tail when asked or idle; returns the events left unrolled."""
    if not idle and unrolled <= 0:
        return unrolled
    if idle and watermark(conn) >= max_seq(conn):
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        left = roll(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return left


def roll(conn: sqlite3.Connection, max_rows: int = MAX_ROLL_ROWS) -> int:
    """Fold the tail (up to ``max_rows`` sequence numbers) into the rollups; the number of seqs still unrolled."""
    low = watermark(conn)
    top = max_seq(conn)
    if top <= low:
        return 0
    high = min(top, low + max_rows)
    keys = _rolled_keys(conn)
    _roll_base(conn, low, high)
    for key, mids in keys.items():
        _roll_key(conn, key, mids, low, high)
    conn.execute("UPDATE rollup_state SET watermark = ? WHERE id = 1", (high,))
    return top - high


def _rolled_keys(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Keys to roll per name; pending keys first get their 'null' cells from the base rollups."""
    keys: dict[str, list[int]] = defaultdict(list)
    rows = conn.execute("SELECT mid, dk, state FROM dim_keys WHERE state != 'high'").fetchall()
    for mid, key, state in rows:
        if state == "pending":
            for table, dim_table, _ in TABLES:
                conn.execute(
                    f"INSERT INTO {dim_table} (mid, dk, dv, b, sid, s, c, mn, mx) "
                    f"SELECT mid, ?, 'null', b, sid, s, c, mn, mx FROM {table} WHERE mid = ?",
                    (key, mid),
                )
            conn.execute("UPDATE dim_keys SET state = 'rolled' WHERE mid = ? AND dk = ?", (mid, key))
        keys[key].append(int(mid))
    return keys


def _roll_base(conn: sqlite3.Connection, low: int, high: int) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS tail_hour (mid, b, sid, s, c, mn, mx)")
    conn.execute("DELETE FROM temp.tail_hour")
    conn.execute(
        "INSERT INTO temp.tail_hour SELECT mid, time - time % 3600000, sid, sum(value), count(*), min(value), "
        "max(value) FROM events WHERE seq > ? AND seq <= ? AND live = 1 GROUP BY 1, 2, 3",
        (low, high),
    )
    conn.execute(
        "INSERT INTO roll_hour (mid, b, sid, s, c, mn, mx) SELECT * FROM temp.tail_hour WHERE true" + AGG_UPSERT
    )
    conn.execute(
        "INSERT INTO roll_day (mid, b, sid, s, c, mn, mx) SELECT mid, b - b % 86400000, sid, sum(s), sum(c), "
        "min(mn), max(mx) FROM temp.tail_hour GROUP BY 1, 2, 3" + AGG_UPSERT
    )


def _roll_key(conn: sqlite3.Connection, key: str, mids: list[int], low: int, high: int) -> None:
    path = json_path(key)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS tail_dim (mid, dv, b, sid, s, c, mn, mx)")
    conn.execute("DELETE FROM temp.tail_dim")
    for start in range(0, len(mids), 500):
        part = mids[start : start + 500]
        marks = ",".join("?" * len(part))
        conn.execute(
            "INSERT INTO temp.tail_dim SELECT mid, coalesce(dims -> ?, 'null'), time - time % 3600000, sid, "
            "sum(value), count(*), min(value), max(value) FROM events "
            f"WHERE seq > ? AND seq <= ? AND live = 1 AND mid IN ({marks}) GROUP BY 1, 2, 3, 4",
            (path, low, high, *part),
        )
    conn.execute(
        "INSERT INTO roll_hour_dim (mid, dk, dv, b, sid, s, c, mn, mx) "
        "SELECT mid, ?, dv, b, sid, s, c, mn, mx FROM temp.tail_dim WHERE true" + AGG_UPSERT,
        (key,),
    )
    conn.execute(
        "INSERT INTO roll_day_dim (mid, dk, dv, b, sid, s, c, mn, mx) "
        "SELECT mid, ?, dv, b - b % 86400000, sid, sum(s), sum(c), min(mn), max(mx) FROM temp.tail_dim "
        "GROUP BY 1, 3, 4, 5" + AGG_UPSERT,
        (key,),
    )


def recompute_cells(conn: sqlite3.Connection, mid: int, sid: int, time: int, dims: str | None) -> None:
    """After a rolled event (stored ``dims`` text) was voided, rebuild every rollup cell it was in from raw."""
    top = watermark(conn)
    keys = [r[0] for r in conn.execute("SELECT dk FROM dim_keys WHERE mid = ? AND state = 'rolled'", (mid,))]
    for table, dim_table, width in TABLES:
        b = time - time % width
        where = "mid = ? AND live = 1 AND time >= ? AND time < ? AND sid = ? AND seq <= ?"
        args: tuple[object, ...] = (mid, b, b + width, sid, top)
        agg = conn.execute(
            f"SELECT sum(value), count(*), min(value), max(value) FROM events INDEXED BY events_q WHERE {where}", args
        ).fetchone()
        _write_cell(conn, table, "mid = ? AND b = ? AND sid = ?", (mid, b, sid), agg)
        for key in keys:
            dv = conn.execute("SELECT coalesce(? -> ?, 'null')", (dims, json_path(key))).fetchone()[0]
            agg = conn.execute(
                "SELECT sum(value), count(*), min(value), max(value) FROM events INDEXED BY events_q "
                f"WHERE {where} AND coalesce(dims -> ?, 'null') = ?",
                (*args, json_path(key), dv),
            ).fetchone()
            where_cell = "mid = ? AND dk = ? AND b = ? AND dv = ? AND sid = ?"
            _write_cell(conn, dim_table, where_cell, (mid, key, b, dv, sid), agg)


def _write_cell(
    conn: sqlite3.Connection, table: str, where: str, key: tuple[object, ...], agg: tuple[object, ...]
) -> None:
    conn.execute(f"DELETE FROM {table} WHERE {where}", key)
    if agg[1]:
        marks = ",".join("?" * (len(key) + 4))
        conn.execute(f"INSERT INTO {table} VALUES ({marks})", (*key, *agg))
