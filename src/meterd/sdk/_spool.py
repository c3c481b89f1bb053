"""The durable spool: events written to a local SQLite file before ``meter()`` returns, deleted only once
the server has acknowledged them.

One table, rows in insertion order (``AUTOINCREMENT`` keeps sequence numbers increasing even after deletes,
so the sender's cursor never skips a row). Each opening claims every row left by an earlier process (the
drain-first-on-restart rule); a forked child opens its own connection and sends only its own rows. Writes
share one connection under a lock; WAL with ``synchronous=NORMAL`` survives a crash of the process. The
sender reads through a second connection (WAL readers do not block writers) and checkpoints the WAL from
there, so callers rarely pay for a checkpoint.

Bounded by ``max_bytes`` of event JSON. Policy when full: ``drop_new`` refuses the new event (counted as
``spool_full``) and ``drop_oldest`` deletes the oldest events not being sent (counted as ``spool_evicted``).
Sizes are measured in characters of JSON (bytes for ASCII records).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable

from meterd.sdk._options import SpoolPolicy
from meterd.sdk._queue import Batch, Item

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_owner ON spool (owner, seq);
"""


class Spool:
    """A SQLite-backed queue of wire records owned by one process."""

    durable = True

    def __init__(self, path: str, max_bytes: int, policy: SpoolPolicy = "drop_new", *, claim: bool = True) -> None:
        if max_bytes < 1024:
            raise ValueError("spool_max_bytes must be at least 1024")
        if policy not in ("drop_new", "drop_oldest"):
            raise ValueError("spool_full must be 'drop_new' or 'drop_oldest'")
        self.path, self.max_bytes, self.policy = path, max_bytes, policy
        self.owner = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._lock = threading.Lock()  # the writer connection (callers' inserts, the senders' deletes)
        self._read_lock = threading.Lock()  # the reader connection (concurrent senders take and checkpoint)
        self._db = _connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA wal_autocheckpoint=100000")  # a safety net: the sender checkpoints
        self._db.executescript(SCHEMA)
        self._reader = _connect(path)
        if claim:
            self._db.execute("UPDATE spool SET owner = ?", (self.owner,))
        count, nbytes, high = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0), coalesce(max(seq), 0) FROM spool WHERE owner = ?",
            (self.owner,),
        ).fetchone()
        self.count, self.nbytes, self.high = int(count), int(nbytes), int(high)
        self.recovered = self.count
        self.inserted = 0
        self.cursor = 0
        self.evicted = 0
        self._waiters: list[tuple[int, Callable[[], None]]] = []

    # caller side ----------------------------------------------------------------------------------------
    def put(self, body: str) -> bool:
        """Write one record durably; False when the spool is full and the policy refuses it."""
        size = len(body)
        with self._lock:
            if self.nbytes + size > self.max_bytes and not self._make_room(size):
                return False
            seq = self._db.execute("INSERT INTO spool (owner, body) VALUES (?, ?)", (self.owner, body)).lastrowid
            self.high = seq or self.high
            self.count += 1
            self.inserted += 1
            self.nbytes += size
        return True

    def _make_room(self, size: int) -> bool:
        if self.policy == "drop_new":
            return False
        rows = self._db.execute(
            "SELECT seq, length(body) FROM spool WHERE owner = ? AND seq > ? ORDER BY seq LIMIT 256",
            (self.owner, self.cursor),
        ).fetchall()
        freed, victims = 0, []
        for seq, length in rows:
            if self.nbytes - freed + size <= self.max_bytes:
                break
            victims.append(seq)
            freed += length
        if self.nbytes - freed + size > self.max_bytes:
            return False
        self.evicted += self._delete(victims)
        return True

    def pending(self) -> int:
        """Records written and not yet dealt with (including those being sent)."""
        return self.count

    def add_marker(self, done: Callable[[], None]) -> None:
        """Call ``done`` once every record written so far has been dealt with."""
        with self._lock:
            self._waiters.append((self.high, done))

    # sender side ----------------------------------------------------------------------------------------
    def take(self, max_count: int, max_bytes: int) -> Batch:
        """The next records after the cursor, in order, and the flush callbacks they complete.

        Read without the writers' lock: every row up to ``high`` read beforehand was committed before
        this read began, so it is seen.
        """
        high = self.high
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, body FROM spool WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
                (self.owner, self.cursor, max_count),
            ).fetchall()
        batch = Batch()
        for seq, body in rows:
            if batch.items and batch.nbytes + len(body) + 1 > max_bytes:
                break
            batch.items.append((seq, body))
            batch.nbytes += len(body) + 1
        with self._lock:
            # Batches are dealt with one at a time, so once this one is, every row up to the cursor is.
            self.cursor = batch.items[-1][0] if batch.items else max(self.cursor, high)
            ready = [w for w in self._waiters if w[0] <= self.cursor]
            self._waiters = [w for w in self._waiters if w[0] > self.cursor]
        batch.markers.extend(done for _, done in ready)
        return batch

    def finish(self, items: list[Item]) -> None:
        """Delete records that are dealt with (stored on the server, or given up as invalid), then let the
        WAL be checkpointed here rather than in a caller's ``meter()``."""
        if not items:
            return
        with self._lock:
            self._delete([seq for seq, _ in items])
        self.maintain()

    def maintain(self) -> None:
        """Checkpoint the WAL (called by the sender after each batch and while it waits to retry); best effort:
        a busy database just means the next call does it."""
        with self._read_lock, contextlib.suppress(sqlite3.OperationalError):
            self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _delete(self, seqs: list[int]) -> int:
        """Delete rows by sequence number; the counters follow what was really deleted. Returns that count."""
        seqs = sorted(seqs)
        if not seqs:
            return 0
        if seqs[-1] - seqs[0] + 1 == len(seqs):  # the usual case: one contiguous run
            chunks = [("seq BETWEEN ? AND ?", [seqs[0], seqs[-1]])]
        else:
            chunks = [
                (f"seq IN ({','.join('?' * len(part))})", part)
                for part in (seqs[i : i + 500] for i in range(0, len(seqs), 500))
            ]
        deleted = 0
        for where, params in chunks:
            lengths = self._db.execute(f"DELETE FROM spool WHERE {where} RETURNING length(body)", params).fetchall()
            deleted += len(lengths)
            self.count -= len(lengths)
            self.nbytes -= sum(n for (n,) in lengths)
        return deleted

    def drop_all(self) -> int:
        """Nothing is dropped: what is not sent stays in the file for the next run."""
        return 0

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()

    def reopened(self) -> Spool:
        """A new spool on the same file for a forked child: own connection, own rows, nothing claimed.

        The inherited connection must not be used (nor closed) in the child; it is kept referenced here so
        garbage collection never closes it.
        """
        _ABANDONED.extend((self._db, self._reader))
        return Spool(self.path, self.max_bytes, self.policy, claim=False)


_ABANDONED: list[sqlite3.Connection] = []


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=NORMAL")
    return db
