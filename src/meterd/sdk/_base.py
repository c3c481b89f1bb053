"""What ``Client`` and ``AsyncClient`` share without I/O: options, ``meter()``'s hot path, drops, stats.

``meter()`` validates in the caller's thread, then appends a tuple to a deque: no lock, no I/O. The bound
is a length check, and the sender is woken only when a batch is ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meterd.core.events import Limits
from meterd.sdk._http import Connection
from meterd.sdk._options import Batching, SpoolPolicy
from meterd.sdk._queue import MemoryQueue
from meterd.sdk._record import Record, RecordBuilder, TimeInput, encode
from meterd.sdk._retry import RetryBudget, RetryPolicy
from meterd.sdk._sender import OnError
from meterd.sdk._stats import Counters, SenderStats
from meterd.sdk.errors import ConfigurationError

if TYPE_CHECKING:
    from meterd.sdk._spool import Spool

log = logging.getLogger("meterd.sdk")
WARN_EVERY = 10.0


class ClientBase:
    """Options, the record builder, the queue or spool, and counters of one client."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int,
        retry: RetryPolicy | None,
        batching: Batching | None,
        spool_path: str | None,
        spool_max_bytes: int,
        spool_full: SpoolPolicy,
        on_error: OnError | None,
        send: bool,
        limits: Limits,
    ) -> None:
        self.connection = Connection.resolve(base_url, api_key, timeout)
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        self.retry = retry or RetryPolicy()
        self.call_retry = RetryPolicy(self.retry.base, self.retry.cap, max_retries, 60.0, self.retry.retry_after_cap)
        try:
            self.batching = batching or Batching()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        self.shutdown_timeout = self.batching.shutdown_timeout
        self.on_error = on_error
        self.send_enabled = send
        self._builder = RecordBuilder(limits)
        self._build = self._builder.build
        self._spool_args = (spool_path, spool_max_bytes, spool_full)
        self._last_warning: dict[str, float] = {}
        self._closed = False
        self._setup(fork=False)

    def _setup(self, fork: bool) -> None:
        """(Re)create the per-process state: counters, budget, queue or spool."""
        self.counters = Counters()
        self.budget = RetryBudget()
        self._direct_lock = threading.Lock()
        path, max_bytes, policy = self._spool_args
        old: Spool | None = getattr(self, "spool", None)
        self.spool = None
        if path is not None and self.send_enabled:
            from meterd.sdk._spool import Spool  # sqlite3 is imported only when a spool is used

            try:
                self.spool = old.reopened() if fork and old is not None else Spool(path, max_bytes, policy)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
            except Exception as exc:  # sqlite3 or OS errors: a path that cannot hold a database
                raise ConfigurationError(f"the spool {path!r} cannot be opened: {exc}") from exc
        self.queue = MemoryQueue(self.batching.max_queue_size)
        # The hot path reads these: a deque when records go to the memory queue, None otherwise.
        self._items: deque[Any] | None = self.queue.items if self._uses_memory_queue() else None
        self._maxsize = self.batching.max_queue_size
        self._threshold = self.batching.max_batch_size

    def _uses_memory_queue(self) -> bool:
        return self.send_enabled and self.spool is None and not self._closed

    # the hot path ---------------------------------------------------------------------------------------
    def meter(
        self,
        meter: str,
        value: float,
        customer: str,
        *,
        time: TimeInput = None,
        dimensions: Mapping[str, Any] | None = None,
        id: str | None = None,
        end_time: TimeInput = None,
    ) -> str:
        """Record usage without blocking; returns the event id (generated when not given).

        Raises :class:`~meterd.core.errors.InvalidInput` for a record the server would reject; never raises
        for transport problems (see :meth:`stats` and ``on_error``).
        """
        record = self._build(meter, value, customer, time, dimensions, id, end_time)
        items = self._items
        if items is None:
            self._meter_other(record)
        elif len(items) < self._maxsize:
            items.append(record)
            if len(items) >= self._threshold:
                self._kick()
            if not self._running():
                self._start()
        else:
            self._drop("queue_full")
        return record[0]

    def _meter_other(self, record: Record) -> None:
        """The paths that are not the in-memory queue: closed, send=False, sync mode, spool."""
        if self._closed:
            self._drop("closed")
        elif not self.send_enabled:
            self.counters.count_enqueued()
        elif self.spool is not None:
            try:
                written = self.spool.put(encode(record))
            except Exception:  # a broken disk must not break the host application; the loss is counted
                log.exception("meterd: the spool could not be written")
                self._drop("spool_error")
                return
            if not written:
                self._drop("spool_full")
                return
            if self.spool.count >= self._threshold:
                self._kick()
            if not self._running():
                self._start()
        else:
            self._send_now(record)

    def _drop(self, reason: str, count: int = 1) -> None:
        self.counters.drop(reason, count)
        now = time.monotonic()
        if now - self._last_warning.get(reason, -WARN_EVERY) >= WARN_EVERY:
            self._last_warning[reason] = now
            log.warning("meterd: dropping events (%s); see client.stats()", reason)

    # supplied by the concrete clients ---------------------------------------------------------------------
    def _kick(self) -> None:
        raise NotImplementedError

    def _running(self) -> bool:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _send_now(self, record: Record) -> None:
        raise NotImplementedError

    # counters ---------------------------------------------------------------------------------------------
    def stats(self) -> SenderStats:
        """Counters of enqueued, delivered (by outcome), retried and dropped (by reason) events."""
        spool = self.spool
        if spool is not None:
            enqueued = spool.inserted
            pending = spool.count
            recovered = spool.recovered
        else:
            pending = self.queue.pending()
            enqueued = self.queue.taken + pending
            recovered = 0
        enqueued += self.counters.enqueued_direct
        snapshot = self.counters.snapshot(enqueued, pending, recovered)
        if spool is not None and spool.evicted:
            snapshot.dropped["spool_evicted"] = spool.evicted
        return snapshot
