"""Counters of what happened to metered events: enqueued, delivered by outcome, retried, dropped by reason.

The sender thread owns the delivery counters (one writer, no lock). Drops decided in callers' threads are
rare and counted under a lock, so the hot path of ``meter()`` never takes one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SenderStats:
    """A snapshot of a client's counters (``client.stats()``).

    ``enqueued``: records accepted by ``meter()``. ``accepted``/``duplicate``/``rejected``/``conflict``: the
    server's outcomes (``sent`` = accepted + duplicate, the records the server now holds). ``retried``: retry
    attempts. ``dropped``: records given up, by reason (``queue_full``, ``closed``, ``spool_full``,
    ``spool_evicted``, ``retries_exhausted``, ``shutdown``, ``http_<status>``). ``pending``: waiting to be
    sent. ``recovered``: records found in the spool when it was opened.
    """

    enqueued: int
    sent: int
    accepted: int
    duplicate: int
    rejected: int
    conflict: int
    retried: int
    batches: int
    pending: int
    recovered: int
    dropped: dict[str, int] = field(default_factory=dict)


class Counters:
    """Mutable counters behind :class:`SenderStats`."""

    def __init__(self) -> None:
        self.enqueued_direct = 0  # counted by send=False / sync mode / spool paths (under a lock there)
        self.outcomes: dict[str, int] = {"accepted": 0, "duplicate": 0, "rejected": 0, "conflict": 0}
        self.retried = 0
        self.batches = 0
        self.dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self.dropped[reason] = self.dropped.get(reason, 0) + count

    def count_enqueued(self, count: int = 1) -> None:
        with self._lock:
            self.enqueued_direct += count

    def snapshot(self, enqueued: int, pending: int, recovered: int) -> SenderStats:
        with self._lock:
            dropped = dict(self.dropped)
        o = dict(self.outcomes)
        return SenderStats(
            enqueued=enqueued,
            sent=o["accepted"] + o["duplicate"],
            accepted=o["accepted"],
            duplicate=o["duplicate"],
            rejected=o["rejected"],
            conflict=o["conflict"],
            retried=self.retried,
            batches=self.batches,
            pending=pending,
            recovered=recovered,
            dropped=dropped,
        )
