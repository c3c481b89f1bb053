"""The send-and-retry protocols, written once as generators that yield I/O instructions.

A flow yields :class:`Send` (send the request; the driver answers with the ``httpx.Response`` or the
:class:`TransportError`) and :class:`Sleep` (wait; the driver answers with None). The sync client drives it
with a blocking transport and ``Event.wait``, the async client with awaits. The rules exist once, here, and
tests drive them by hand with a fake clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from meterd.core.errors import MeterdError
from meterd.sdk._http import error_from_response, json_body
from meterd.sdk._models import RecordResult
from meterd.sdk._retry import RetryBudget, RetryPolicy, retryable_status
from meterd.sdk.errors import APIError, PayloadTooLargeError, TransportError

T = TypeVar("T")
DATA_ERRORS = frozenset({400, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class Send:
    """Send the request (for a batch, ``body`` is the JSON array to post); ``attempt`` 0 is the first try."""

    attempt: int
    body: bytes = b""
    count: int = 0


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


Step = Send | Sleep
Reply = httpx.Response | TransportError | bool | None  # a Sleep is answered True (slept) or False (aborted)


@dataclass(slots=True)
class Retrier:
    """The retry state of one delivery: attempts so far, time spent, and the shared budget."""

    policy: RetryPolicy
    budget: RetryBudget | None = None
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    attempt: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def next_wait(self, retry_after: float | None) -> float | None:
        """The wait before the next retry, or None when the policy says give up."""
        self.attempt += 1
        wait = self.policy.delay(self.attempt, retry_after, self.rng)
        if not self.policy.allows(self.attempt, self.clock() - self.started, wait):
            return None
        if self.budget is not None:
            wait += self.budget.acquire()
        return wait


def call_flow(retrier: Retrier, retry: bool) -> Generator[Step, Reply, httpx.Response]:
    """One API call: the successful response, or the last error raised once retries are spent."""
    while True:
        reply = yield Send(retrier.attempt)
        if isinstance(reply, httpx.Response):
            if reply.status_code < 400:
                return reply
            error: MeterdError = error_from_response(reply)
            retry_after = error.retry_after if isinstance(error, APIError) else None
            if not retryable_status(reply.status_code):
                raise error
        else:
            error, retry_after = _transport(reply), None
        wait = retrier.next_wait(retry_after) if retry else None
        if wait is None:
            raise error
        if (yield Sleep(wait)) is False:
            raise TransportError("the client was closed while waiting to retry") from error


@dataclass(slots=True)
class Delivery:
    """What happened to a batch: a result per record (None = not delivered) and why some were not."""

    results: list[RecordResult | None]
    error: MeterdError | None = None
    retries: int = 0
    failed: dict[int, MeterdError] = field(default_factory=dict)
    aborted: bool = False


def batch_flow(
    bodies: Sequence[str], retrier: Retrier, *, persistent: bool = False
) -> Generator[Step, Reply, Delivery]:
    """Deliver records (their wire JSON) with retries; only records without a final outcome are resent.

    A 413 halves the request until it fits (one record alone that is still too large fails). Other answers
    that are not retryable fail every record still pending. ``persistent`` (the spool) retries every error
    but the data errors 400/413/415/422, so a wrong key or URL keeps events until the client is fixed.
    """
    delivery = Delivery([None] * len(bodies))
    pending = list(range(len(bodies)))
    size = len(pending)
    while pending:
        chunk = pending[:size]
        body = ("[" + ",".join(bodies[i] for i in chunk) + "]").encode()
        reply = yield Send(retrier.attempt, body, len(chunk))
        error, retry_after = _outcome(reply, chunk, delivery)
        pending = [i for i in pending if delivery.results[i] is None]
        if error is None:
            continue
        if isinstance(error, PayloadTooLargeError):
            if len(chunk) > 1:
                size = max(1, len(chunk) // 2)
                continue
            delivery.failed[chunk[0]] = error
            pending.remove(chunk[0])
            continue
        status = error.status if isinstance(error, APIError) else 0
        retryable = status == 0 or retryable_status(status) or (persistent and status not in DATA_ERRORS)
        wait = retrier.next_wait(retry_after) if retryable else None
        if wait is None:
            delivery.error = error
            return delivery
        delivery.retries += 1
        if (yield Sleep(wait)) is False:
            delivery.error, delivery.aborted = error, True
            return delivery
    return delivery


def _outcome(reply: Reply, chunk: list[int], delivery: Delivery) -> tuple[MeterdError | None, float | None]:
    """Record a 200's per-record results; otherwise the error to act on and the server's Retry-After."""
    if not isinstance(reply, httpx.Response):
        return _transport(reply), None
    if reply.status_code != 200:
        error = error_from_response(reply)
        return error, error.retry_after
    try:
        answers = json_body(reply)["results"]
        resolved = 0
        for answer in answers:
            index = answer["index"]
            if type(index) is int and 0 <= index < len(chunk) and delivery.results[chunk[index]] is None:
                delivery.results[chunk[index]] = _STORED.get(answer["outcome"]) or RecordResult.parse(answer)
                resolved += 1
    except (TransportError, KeyError, TypeError, ValueError) as exc:
        return TransportError(f"the server's ingest answer could not be read: {exc!r}"), None
    if resolved < len(chunk):
        return TransportError(f"the server answered for {resolved} of {len(chunk)} records"), None
    return None, None


# Stored records need no detail beyond their outcome: share one result object each (the common case).
_STORED = {"accepted": RecordResult(-1, None, "accepted"), "duplicate": RecordResult(-1, None, "duplicate")}


def _transport(reply: Reply) -> TransportError:
    return reply if isinstance(reply, TransportError) else TransportError("the driver sent no reply")


def drive(flow: Generator[Step, Reply, T], send: Callable[[Send], Reply], sleep: Callable[[float], bool]) -> T:
    """Run a flow with blocking I/O: ``send`` answers a Send, ``sleep`` a Sleep (False when aborted)."""
    try:
        step = next(flow)
        while True:
            step = flow.send(sleep(step.seconds) if isinstance(step, Sleep) else send(step))
    except StopIteration as stop:
        result: T = stop.value
        return result
