"""The in-memory event queue between callers and the sender, and the batch the sender takes from it.

Callers append records to a ``collections.deque`` without a lock (``append`` and ``len`` are atomic); only
the sender pops. A flush puts a :class:`Marker` into the same deque, so it completes exactly when
everything enqueued before it has been dealt with.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from meterd.sdk._record import Record, encode

Item = tuple[int, str]  # (spool row id or 0, wire JSON)


class Marker:
    """A flush request travelling through the queue; ``done`` is called once the sender passes it."""

    __slots__ = ("done",)

    def __init__(self, done: Callable[[], None]) -> None:
        self.done = done


@dataclass(slots=True)
class Batch:
    """Items to deliver in order, and flush callbacks to run once they are dealt with."""

    items: list[Item] = field(default_factory=list)
    markers: list[Callable[[], None]] = field(default_factory=list)
    nbytes: int = 0


class Source(Protocol):
    """What the sender takes records from: the memory queue or the durable spool."""

    durable: bool

    def pending(self) -> int: ...

    def add_marker(self, done: Callable[[], None]) -> None: ...

    def take(self, max_count: int, max_bytes: int) -> Batch: ...

    def finish(self, items: list[Item]) -> None: ...

    def drop_all(self) -> int: ...

    def maintain(self) -> None: ...


class Tickets:
    """Completes flush markers only when every batch taken before them is dealt with, in whatever order
    concurrent senders finish (a marker can be taken while an earlier batch is still in flight)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._open: set[int] = set()
        self._waiting: list[tuple[int, Callable[[], None]]] = []

    def issue(self) -> int:
        """A ticket for a batch being taken (call under the take lock, in take order)."""
        with self._lock:
            ticket = self._next
            self._next += 1
            self._open.add(ticket)
            return ticket

    def after_taken(self, done: Callable[[], None]) -> None:
        """Call ``done`` once every batch issued so far is closed (now, if none is open)."""
        with self._lock:
            if self._open:
                self._waiting.append((self._next, done))
                return
        done()

    def close(self, ticket: int) -> None:
        """A batch is dealt with: complete the markers no open batch holds back."""
        with self._lock:
            self._open.discard(ticket)
            oldest = min(self._open, default=self._next)
            ready = [done for limit, done in self._waiting if limit <= oldest]
            self._waiting = [(limit, done) for limit, done in self._waiting if limit > oldest]
        for done in ready:
            done()


class MemoryQueue:
    """A bounded deque of records (the bound is checked by the caller before appending)."""

    durable = False

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("max_queue_size must be at least 1")
        self.maxsize = maxsize
        self.items: deque[Record | Marker] = deque()
        self.taken = 0
        self.markers_queued = 0
        self._marker_lock = threading.Lock()  # flushes are rare; the hot path never takes it

    def pending(self) -> int:
        """Records waiting (approximate while callers append)."""
        return max(0, len(self.items) - self.markers_queued)

    def add_marker(self, done: Callable[[], None]) -> None:
        with self._marker_lock:
            self.markers_queued += 1
            self.items.append(Marker(done))

    def take(self, max_count: int, max_bytes: int) -> Batch:
        """Pop up to ``max_count`` records / ``max_bytes`` of JSON, stopping after the first flush marker."""
        batch = Batch()
        items = self.items
        while items and len(batch.items) < max_count:
            head = items[0]
            if isinstance(head, Marker):
                items.popleft()
                with self._marker_lock:
                    self.markers_queued -= 1
                batch.markers.append(head.done)
                break
            body = encode(head)
            if batch.items and batch.nbytes + len(body) + 1 > max_bytes:
                break
            items.popleft()
            self.taken += 1
            batch.items.append((0, body))
            batch.nbytes += len(body) + 1
        return batch

    def finish(self, items: list[Item]) -> None:
        """Nothing to release: popped records are gone from memory."""

    def maintain(self) -> None:
        """Nothing to maintain in memory."""

    def drop_all(self) -> int:
        """Empty the queue (after a fork the parent owns what is queued); the number of records dropped."""
        count = self.pending()
        self.items = deque()
        self.markers_queued = 0
        return count
