"""Retry policy maths: which failures to retry, full-jitter backoff, Retry-After, and a retry budget.

Everything here is pure or takes its clock and random source as arguments, so tests check the maths
without sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    ``base``/``cap``: full jitter, the n-th retry waits ``uniform(0, min(cap, base * 2**(n-1)))`` seconds.
    A server's ``Retry-After`` is a floor on that wait, itself capped at ``retry_after_cap``.
    ``max_attempts`` counts retries after the first try; ``max_elapsed`` bounds the whole delivery.
    ``None`` means no limit (the durable spool retries until it is closed).
    """

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int | None = 10
    max_elapsed: float | None = 120.0
    retry_after_cap: float = 60.0

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry (tests, and callers that do their own retrying)."""
        return cls(max_attempts=0, max_elapsed=0.0)

    def unbounded(self) -> RetryPolicy:
        """The same waits with no attempt or time limit (used when a spool keeps the events)."""
        return RetryPolicy(self.base, self.cap, None, None, self.retry_after_cap)

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The full-jitter wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 62))
        return ceiling * rng()

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry ``attempt``: the jittered backoff, raised to the capped Retry-After."""
        wait = self.backoff(attempt, rng)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.retry_after_cap))
        return wait

    def allows(self, attempt: int, elapsed: float, wait: float) -> bool:
        """Whether retry ``attempt`` may happen after ``elapsed`` seconds, waiting ``wait`` more."""
        if self.max_attempts is not None and attempt > self.max_attempts:
            return False
        return self.max_elapsed is None or elapsed + wait <= self.max_elapsed


def retryable_status(status: int) -> bool:
    """Statuses worth trying again: timeouts, too-early, rate limits and temporary server failures."""
    return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


class RetryBudget:
    """A token bucket shared by every delivery of one client, so a dead server cannot cause a retry storm.

    Each retry takes one token; tokens refill at ``refill_per_second`` up to ``capacity``. When the bucket is
    empty the retry is not refused but delayed until its token exists: retries slow to the refill rate.
    """

    def __init__(
        self,
        capacity: float = 20.0,
        refill_per_second: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or refill_per_second <= 0:
            raise ValueError("a retry budget needs capacity >= 1 and a positive refill rate")
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token for one retry; the extra seconds to wait before it is available (0 when at hand)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill_per_second)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.refill_per_second

    @property
    def tokens(self) -> float:
        """Tokens left now (negative when retries are queued for tokens not yet refilled)."""
        with self._lock:
            elapsed = self._clock() - self._stamp
            return min(self.capacity, self._tokens + elapsed * self.refill_per_second)
