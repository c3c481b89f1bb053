"""The background sender thread, how a delivered batch is settled, and the process-wide exit and fork hooks.

One daemon thread per client, started lazily by the first ``meter()``. It sleeps until the queue reaches a
batch (callers wake it), a flush marker arrives, or ``flush_interval`` passes, then drains the queue batch
by batch. Nothing it does can raise into the host application: errors go to ``on_error`` and the log.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from meterd.core.errors import MeterdError
from meterd.sdk._flow import Delivery
from meterd.sdk._options import Batching
from meterd.sdk._queue import Batch, Item, Source, Tickets
from meterd.sdk._record import decode
from meterd.sdk._retry import retryable_status
from meterd.sdk._stats import Counters
from meterd.sdk.errors import APIError, EventRejected

log = logging.getLogger("meterd.sdk")
OnError = Callable[[MeterdError, list[dict[str, object]]], None]
Deliver = Callable[[list[str], Callable[[float], bool]], Delivery]


def settle(batch: Batch, delivery: Delivery, counters: Counters, queue: Source, on_error: OnError | None) -> None:
    """Count a delivered batch, report rejections and losses, and release what is dealt with."""
    done: list[Item] = []
    lost: list[Item] = []
    for index, (item, result) in enumerate(zip(batch.items, delivery.results, strict=True)):
        if result is not None:
            counters.outcomes[result.outcome] = counters.outcomes.get(result.outcome, 0) + 1
            if not result.stored:
                rejected = EventRejected(
                    f"the server answered {result.outcome} for event {result.id}",
                    outcome=result.outcome,
                    event_id=result.id,
                    errors=list(result.errors),
                )
                report(on_error, rejected, [item])
            done.append(item)
        elif index in delivery.failed:
            counters.drop(loss_reason(delivery.failed[index]))
            report(on_error, delivery.failed[index], [item])
            done.append(item)
        else:
            lost.append(item)
    keep = queue.durable and delivery.aborted
    if lost and not keep and delivery.error is not None:
        counters.drop("shutdown" if delivery.aborted else loss_reason(delivery.error), len(lost))
        report(on_error, delivery.error, lost)
        done.extend(lost)
    counters.retried += delivery.retries
    counters.batches += 1
    queue.finish(done)


def loss_reason(error: MeterdError) -> str:
    """The drop counter for records given up because of ``error``."""
    if isinstance(error, APIError) and not retryable_status(error.status):
        return f"http_{error.status}"
    return "retries_exhausted"


def report(on_error: OnError | None, error: MeterdError, items: list[Item]) -> None:
    """Hand an error and its records to ``on_error`` (never raising), or log it."""
    if on_error is None:
        log.warning("meterd: %s (%d event(s))", error, len(items))
        return
    try:
        on_error(error, [decode(body) for _, body in items])
    except Exception:
        log.exception("meterd: on_error raised")


class ThreadSender:
    """The sender threads of one :class:`~meterd.Client` (``batching.max_in_flight`` of them)."""

    def __init__(
        self, queue: Source, deliver: Deliver, batching: Batching, counters: Counters, on_error: OnError | None
    ) -> None:
        self.queue, self.batching, self.counters, self.on_error = queue, batching, counters, on_error
        self._deliver = deliver
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._take_lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._tickets = Tickets()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.running = False

    def start(self) -> None:
        """Start the threads (idempotent; quietly impossible during interpreter shutdown)."""
        with self._lock:
            if self.running or self._stopping:
                return
            for number in range(self.batching.max_in_flight):
                thread = threading.Thread(target=self._run, name=f"meterd-sender-{number}", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutting down: nothing more can be started
                    break
                self._threads.append(thread)
            self.running = bool(self._threads)

    def kick(self) -> None:
        """Wake the threads: a batch is ready."""
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        interval = self.batching.flush_interval
        while True:
            if not self._stopping:
                self._wake.wait(interval * random.uniform(0.9, 1.1))
                self._wake.clear()
            stopping = self._stopping
            try:
                self._drain()
            except Exception:  # the sender must survive anything; the batch's records stay counted
                log.exception("meterd: the sender failed while draining")
            if stopping or self._abort.is_set():
                return

    def _drain(self) -> None:
        size, nbytes = self.batching.max_batch_size, self.batching.max_batch_bytes
        while not self._abort.is_set():
            with self._take_lock:
                batch = self.queue.take(size, nbytes)
                ticket = self._tickets.issue() if batch.items else None
                for done in batch.markers:
                    self._tickets.after_taken(done)
            if ticket is None:
                if not batch.markers:
                    return
                continue
            try:
                delivery = self._deliver([body for _, body in batch.items], self._sleep)
                with self._settle_lock:
                    settle(batch, delivery, self.counters, self.queue, self.on_error)
            finally:
                self._tickets.close(ticket)

    def _sleep(self, seconds: float) -> bool:
        self.queue.maintain()
        return not self._abort.wait(seconds)

    def flush(self, timeout: float) -> bool:
        """Send everything enqueued so far; True when it was dealt with within ``timeout`` seconds."""
        if not self.running:
            if self.queue.pending() == 0:
                return True
            self.start()
            if not self.running:
                return False
        done = threading.Event()
        self.queue.add_marker(done.set)
        self._wake.set()
        return done.wait(max(0.0, timeout))

    def close(self, timeout: float) -> bool:
        """Flush within ``timeout``, then stop the threads; unsent in-memory records count as ``shutdown``."""
        deadline = time.monotonic() + max(0.0, timeout)
        flushed = self.flush(timeout)
        with self._lock:
            self._stopping = True
        if not flushed:
            self._abort.set()
        self._wake.set()
        others = [t for t in self._threads if t is not threading.current_thread()]
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in others):
            self._abort.set()
            for thread in others:
                thread.join(0.05)
        if not self.queue.durable:
            self.counters.drop("shutdown", self.queue.drop_all())
        self.running = False
        return flushed


class Closable(Protocol):
    shutdown_timeout: float

    def close(self, timeout: float | None = None) -> bool: ...

    def _after_fork_in_child(self) -> None: ...


_LIVE: weakref.WeakSet[Closable] = weakref.WeakSet()
_hooks_installed = False
_hooks_lock = threading.Lock()


def register(client: Closable) -> None:
    """Track a client for the exit flush and the fork hook (installed once per process, on first use)."""
    global _hooks_installed
    with _hooks_lock:
        _LIVE.add(client)
        if not _hooks_installed:
            atexit.register(_close_all)
            os.register_at_fork(after_in_child=_after_fork)
            _hooks_installed = True


def unregister(client: Closable) -> None:
    with _hooks_lock:
        _LIVE.discard(client)


def _close_all() -> None:
    """At exit: close every live client within one shared deadline (the largest shutdown_timeout)."""
    clients = list(_LIVE)
    if not clients:
        return
    deadline = time.monotonic() + max(c.shutdown_timeout for c in clients)
    for client in clients:
        try:
            client.close(max(0.0, deadline - time.monotonic()))
        except Exception:
            log.exception("meterd: closing a client at exit failed")


def _after_fork() -> None:
    """In a forked child: give every client fresh threads, locks, connections and an empty queue."""
    global _hooks_lock
    _hooks_lock = threading.Lock()
    for client in list(_LIVE):
        client._after_fork_in_child()
