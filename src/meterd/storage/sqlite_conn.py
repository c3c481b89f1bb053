"""SQLite connections of the store: pragmas and migrations, one group-committing writer thread, a reader pool.

Every write goes through :class:`Writer`: callers submit jobs (functions of a connection) and await them; the
writer thread takes every job queued so far, runs them in ONE ``BEGIN IMMEDIATE`` transaction (each inside its
own savepoint, so a failing job rolls back alone), commits, and only then answers each caller. Concurrent
ingest calls thus share one commit (group commit) while each keeps its own outcome. ``BEGIN IMMEDIATE`` plus
``busy_timeout`` keeps writers of several processes on one file correct: each transaction sees every row
committed before it started, and holds the write lock until it commits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from meterd.core.errors import MeterdError, StorageError
from meterd.storage import migrate

T = TypeVar("T")
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class Tuning:
    """Connection settings; the defaults keep the server under ~300 MB RSS while ingesting."""

    synchronous: str = "NORMAL"
    writer_cache_kib: int = 65_536
    reader_cache_kib: int = 32_768
    readers: int = 3
    wal_autocheckpoint: int = 10_000
    max_txn_events: int = 50_000
    roll_every: int = 50_000
    idle_seconds: float = 0.3


def connect(path: str, *, cache_kib: int, synchronous: str, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with meterd's pragmas."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, cached_statements=512
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA mmap_size = 0")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


class _MigrationTarget:
    """Applies one SQLite migration under the write lock, skipping versions another process applied."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )

    def applied_versions(self) -> set[int]:
        return {row[0] for row in self.conn.execute("SELECT version FROM schema_migrations")}

    def apply(self, migration: migrate.Migration) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone()
            if done is None:
                for statement in migrate.split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time() * 1000)),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def prepare(path: str, tuning: Tuning) -> sqlite3.Connection:
    """Open the writer connection: WAL mode, checkpoint size, pending migrations applied."""
    conn = connect(path, cache_kib=tuning.writer_cache_kib, synchronous=tuning.synchronous)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"could not put {path!r} in WAL mode (got {mode!r})")
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(tuning.wal_autocheckpoint)}")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    migrate.run(_MigrationTarget(conn), migrate.packaged("sqlite"))
    return conn


class Tx:
    """What a write job sees: the connection inside the open transaction, and work to do once it commits."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.after_commit: list[Callable[[], None]] = []
        self.events_written = 0


@dataclass(slots=True)
class Job(Generic[T]):
    fn: Callable[[Tx], T]
    weight: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    result: Any = None
    error: BaseException | None = None
    done_work: list[Callable[[], None]] = field(default_factory=list)


def _hand_back(job: Job[Any]) -> None:
    """From the writer thread: schedule :func:`_settle` on the caller's loop (gone loops are skipped)."""
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this answer any more
        job.loop.call_soon_threadsafe(_settle, job)


def _settle(job: Job[Any]) -> None:
    """Runs on the caller's event loop: hand the job's result or error to its awaiting caller."""
    if job.future.done():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.result)


class Writer:
    """The one writer thread of a store: group-commits queued jobs, then runs maintenance when asked."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        tuning: Tuning,
        maintenance: Callable[[sqlite3.Connection, int, bool], int],
    ) -> None:
        self.conn = conn
        self.tuning = tuning
        self.maintenance = maintenance
        self.idle_seconds = tuning.idle_seconds
        self._queue: collections.deque[Job[Any]] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._unrolled = 0
        self._thread = threading.Thread(target=self._run, name="meterd-sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Tx], T], weight: int = 1) -> asyncio.Future[T]:
        """Queue ``fn`` for the next transaction; the future resolves after that transaction commits."""
        loop = asyncio.get_running_loop()
        job: Job[T] = Job(fn, weight, loop, loop.create_future())
        with self._cond:
            if self._stopping:
                raise StorageError("the store is closed")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def stop(self) -> None:
        """Finish the queued jobs, run a last maintenance pass, and stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _take(self) -> list[Job[Any]] | None:
        with self._cond:
            if not self._queue and not self._stopping:
                self._cond.wait(self.idle_seconds)
            if not self._queue:
                return None if self._stopping else []
            jobs = [self._queue.popleft()]
            weight = jobs[0].weight
            while self._queue and weight + self._queue[0].weight <= self.tuning.max_txn_events:
                job = self._queue.popleft()
                weight += job.weight
                jobs.append(job)
            return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                self._maintain(final=True)
                return
            if jobs:
                self._run_batch(jobs)
                if self._unrolled >= self.tuning.roll_every:
                    self._maintain(final=False)
            else:
                self._maintain(final=False, idle=True)

    def _maintain(self, *, final: bool, idle: bool = False) -> None:
        # Maintenance keeps rollups current; a failure leaves them stale but exact (queries read the tail).
        with contextlib.suppress(sqlite3.Error):
            self._unrolled = self.maintenance(self.conn, self._unrolled, idle or final)

    def _run_batch(self, jobs: list[Job[Any]]) -> None:
        conn = self.conn
        tx = Tx(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail(jobs, StorageError(f"could not start a write transaction: {exc}"))
            return
        for job in jobs:
            if not self._run_job(tx, job):
                self._abort(jobs, "the write transaction was aborted")
                return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._abort(jobs, f"could not commit: {exc}")
            return
        self._unrolled += tx.events_written
        for job in jobs:
            for work in job.done_work:
                work()
            _hand_back(job)

    def _run_job(self, tx: Tx, job: Job[Any]) -> bool:
        """Run one job in its savepoint; False when the whole transaction is lost."""
        conn = tx.conn
        tx.after_commit = []
        written = tx.events_written
        conn.execute("SAVEPOINT job")
        try:
            job.result = job.fn(tx)
            conn.execute("RELEASE job")
            job.done_work = tx.after_commit
            return True
        except Exception as exc:
            if isinstance(exc, MeterdError):
                job.error = exc
            else:
                job.error = StorageError(f"write failed: {exc!r}")
                job.error.__cause__ = exc
            tx.events_written = written
        try:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        except sqlite3.Error:
            return False
        return conn.in_transaction

    def _abort(self, jobs: list[Job[Any]], why: str) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._fail(jobs, StorageError(why))

    @staticmethod
    def _fail(jobs: list[Job[Any]], error: StorageError) -> None:
        for job in jobs:
            job.error = error
            _hand_back(job)


class Readers:
    """A small pool of reader threads, each with its own connection (WAL readers never block the writer)."""

    def __init__(self, path: str, tuning: Tuning) -> None:
        self.path = path
        self.tuning = tuning
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=tuning.readers, thread_name_prefix="meterd-sqlite-reader")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(
                self.path, cache_kib=self.tuning.reader_cache_kib, synchronous=self.tuning.synchronous, readonly=True
            )
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a reader connection in a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"read failed: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class ReadTx:
    """A read transaction: every statement inside sees one snapshot of the database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT" if exc[0] is None else "ROLLBACK")
