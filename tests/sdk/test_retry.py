"""Retry classification and backoff maths, and the send flows driven by hand with a fake clock (no sleeping)."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.sdk._flow import Delivery, Reply, Retrier, Send, Sleep, Step, batch_flow, call_flow
from meterd.sdk._retry import RetryBudget, RetryPolicy, parse_retry_after, retryable_status
from meterd.sdk.errors import (
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    TransportError,
    UnprocessableError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"status": status}, headers=headers)


def results_for(body: bytes, only: set[int] | None = None) -> httpx.Response:
    records = json.loads(body)
    results = [
        {"index": i, "id": r["id"], "outcome": "accepted"} for i, r in enumerate(records) if only is None or i in only
    ]
    return response(200, {"results": results, "counts": {"accepted": len(results)}})


# policy maths ----------------------------------------------------------------------------------------------
@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_full_jitter_stays_under_the_exponential_ceiling(attempt: int, u: float) -> None:
    policy = RetryPolicy(base=0.5, cap=30.0)
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    wait = policy.backoff(attempt, lambda: u)
    assert 0 <= wait <= ceiling
    assert wait == pytest.approx(ceiling * u)


def test_backoff_ceiling_doubles_then_caps() -> None:
    policy = RetryPolicy(base=0.5, cap=30.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(3, lambda: 0.0) == 0.0


def test_retry_after_is_a_floor_capped_by_retry_after_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=30.0, retry_after_cap=60.0)
    assert policy.delay(1, 7.0, lambda: 0.0) == 7.0  # jitter says 0, the server says 7
    assert policy.delay(8, 2.0, lambda: 1.0) == 30.0  # backoff already above the hint
    assert policy.delay(1, 3600.0, lambda: 0.0) == 60.0  # an hour is capped
    assert policy.delay(1, None, lambda: 1.0) == 0.5


def test_attempt_and_time_limits() -> None:
    policy = RetryPolicy(max_attempts=3, max_elapsed=10.0)
    assert policy.allows(3, 0.0, 1.0)
    assert not policy.allows(4, 0.0, 1.0)
    assert policy.allows(1, 9.0, 1.0)
    assert not policy.allows(1, 9.5, 1.0)
    assert RetryPolicy().unbounded().allows(10_000, 1e9, 30.0)
    assert not RetryPolicy.none().allows(1, 0.0, 0.0)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (425, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
        (501, False),
    ],
)
def test_retry_classification(status: int, retry: bool) -> None:
    assert retryable_status(status) is retry


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("0.25", 0.25),
        (" 3 ", 3.0),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == seconds


def test_budget_allows_a_burst_then_slows_retries_to_the_refill_rate() -> None:
    clock = FakeClock()
    budget = RetryBudget(capacity=3, refill_per_second=2.0, clock=clock)
    assert [budget.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.acquire() == pytest.approx(0.5)  # the 4th retry waits for its token
    assert budget.acquire() == pytest.approx(1.0)
    clock.now = 10.0  # refilled (capped at capacity)
    assert budget.tokens == pytest.approx(3.0)
    assert budget.acquire() == 0.0


# call flow -------------------------------------------------------------------------------------------------
def run_by_hand(flow: Generator[Step, Reply, Any], replies: list[Reply], clock: FakeClock) -> tuple[Any, list[Step]]:
    """Drive a flow: answer Sends from ``replies``, Sleeps by advancing the clock."""
    steps: list[Step] = []
    try:
        step = next(flow)
        while True:
            steps.append(step)
            if isinstance(step, Sleep):
                clock.now += step.seconds
                step = flow.send(True)
            else:
                step = flow.send(replies.pop(0))
    except StopIteration as stop:
        return stop.value, steps


def retrier(clock: FakeClock, policy: RetryPolicy | None = None, u: float = 0.5) -> Retrier:
    return Retrier(policy or RetryPolicy(), None, clock, lambda: u)


def test_call_flow_retries_temporary_failures_then_returns() -> None:
    clock = FakeClock()
    ok = response(200, {"ok": 1})
    result, steps = run_by_hand(call_flow(retrier(clock), True), [response(503), TransportError("reset"), ok], clock)
    assert result is ok
    assert [type(s).__name__ for s in steps] == ["Send", "Sleep", "Send", "Sleep", "Send"]
    assert [s.attempt for s in steps if isinstance(s, Send)] == [0, 1, 2]
    assert clock.now == pytest.approx(0.25 + 0.5)  # full jitter at u=0.5: 0.5*0.5, then 1.0*0.5


def test_call_flow_honours_retry_after() -> None:
    clock = FakeClock()
    replies: list[Reply] = [response(429, headers={"retry-after": "7"}), response(200)]
    _, steps = run_by_hand(call_flow(retrier(clock), True), replies, clock)
    assert [s.seconds for s in steps if isinstance(s, Sleep)] == [7.0]


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFoundError), (401, AuthenticationError), (422, UnprocessableError)]
)
def test_call_flow_raises_client_errors_without_retrying(status: int, error: type[Exception]) -> None:
    clock = FakeClock()
    flow = call_flow(retrier(clock), True)
    assert isinstance(next(flow), Send)
    with pytest.raises(error):
        flow.send(response(status))


def test_call_flow_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock = FakeClock()
    flow = call_flow(retrier(clock, RetryPolicy(max_attempts=2)), True)
    with pytest.raises(ServerError) as caught:
        run_by_hand(flow, [response(500), response(502), response(503)], clock)
    assert caught.value.status == 503


def test_non_idempotent_calls_are_not_retried_and_abort_stops_waiting() -> None:
    clock = FakeClock()
    flow = call_flow(retrier(clock), False)
    next(flow)
    with pytest.raises(ServerError):
        flow.send(response(503))
    flow = call_flow(retrier(clock), True)
    next(flow)
    assert isinstance(flow.send(response(503)), Sleep)
    with pytest.raises(TransportError, match="closed"):
        flow.send(False)


# batch flow ------------------------------------------------------------------------------------------------
BODIES = [json.dumps({"id": f"e{i}", "meter": "m", "customer": "c", "value": i}) for i in range(6)]


def drive_batch(flow: Generator[Step, Reply, Delivery], server: Any, clock: FakeClock) -> tuple[Delivery, list[bytes]]:
    sent: list[bytes] = []
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                clock.now += step.seconds
                step = flow.send(True)
            else:
                sent.append(step.body)
                step = flow.send(server(step.body))
    except StopIteration as stop:
        return stop.value, sent


def ids(body: bytes) -> list[str]:
    return [r["id"] for r in json.loads(body)]


def test_only_records_without_an_answer_are_resent() -> None:
    clock = FakeClock()
    answers = iter([lambda b: results_for(b, only={0, 2, 3}), lambda b: results_for(b)])
    delivery, sent = drive_batch(batch_flow(BODIES, retrier(clock)), lambda b: next(answers)(b), clock)
    assert ids(sent[0]) == ["e0", "e1", "e2", "e3", "e4", "e5"]
    assert ids(sent[1]) == ["e1", "e4", "e5"]
    assert [r.outcome for r in delivery.results if r] == ["accepted"] * 6
    assert delivery.retries == 1 and delivery.error is None


def test_server_errors_resend_the_whole_pending_batch() -> None:
    clock = FakeClock()
    answers = iter([response(503), TransportError("reset"), None])
    delivery, sent = drive_batch(batch_flow(BODIES, retrier(clock)), lambda b: next(answers) or results_for(b), clock)
    assert [len(ids(b)) for b in sent] == [6, 6, 6]
    assert all(r is not None and r.outcome == "accepted" for r in delivery.results)
    assert delivery.retries == 2


def test_413_halves_until_it_fits_and_a_lone_oversized_record_fails() -> None:
    clock = FakeClock()

    def server(body: bytes) -> httpx.Response:
        records = ids(body)
        if len(records) > 2 or ("e3" in records and len(records) > 1) or records == ["e3"]:
            return response(413)
        return results_for(body)

    delivery, _sent = drive_batch(batch_flow(BODIES, retrier(clock)), server, clock)
    assert delivery.results[3] is None and isinstance(delivery.failed[3], PayloadTooLargeError)
    assert [i for i, r in enumerate(delivery.results) if r and r.stored] == [0, 1, 2, 4, 5]
    assert delivery.retries == 0 and delivery.error is None


def test_data_errors_fail_the_batch_without_retrying() -> None:
    clock = FakeClock()
    delivery, sent = drive_batch(batch_flow(BODIES, retrier(clock)), lambda b: response(422), clock)
    assert len(sent) == 1 and isinstance(delivery.error, UnprocessableError)
    assert delivery.results == [None] * 6


def test_persistent_mode_retries_auth_errors_but_not_data_errors() -> None:
    clock = FakeClock()
    answers = iter([response(401), response(404), None])
    flow = batch_flow(BODIES, retrier(clock), persistent=True)
    delivery, sent = drive_batch(flow, lambda b: next(answers) or results_for(b), clock)
    assert len(sent) == 3 and delivery.error is None
    delivery, sent = drive_batch(batch_flow(BODIES, retrier(clock), persistent=True), lambda b: response(400), clock)
    assert len(sent) == 1 and delivery.error is not None


@given(st.floats(0.01, 0.999))
def test_a_dead_server_is_given_up_within_max_elapsed(u: float) -> None:
    clock = FakeClock()
    policy = RetryPolicy(base=0.5, cap=30.0, max_attempts=None, max_elapsed=120.0)
    flow = batch_flow(BODIES[:1], Retrier(policy, None, clock, lambda: u))
    delivery, sent = drive_batch(flow, lambda b: TransportError("refused"), clock)
    assert isinstance(delivery.error, TransportError)
    assert clock.now <= 120.0
    assert len(sent) == delivery.retries + 1


def test_budget_delays_retries_when_exhausted() -> None:
    clock = FakeClock()
    budget = RetryBudget(capacity=1, refill_per_second=0.5, clock=clock)
    flow = batch_flow(BODIES[:1], Retrier(RetryPolicy(base=0.001, max_attempts=3), budget, clock, lambda: 0.0))
    delivery, _ = drive_batch(flow, lambda b: TransportError("refused"), clock)
    assert delivery.retries == 3
    assert clock.now == pytest.approx(2.0 + 2.0)  # first retry free, then one token every 2 s


def test_tickets_complete_markers_only_after_every_earlier_batch() -> None:
    from meterd.sdk._queue import Tickets

    tickets = Tickets()
    done: list[str] = []
    first, second = tickets.issue(), tickets.issue()
    tickets.after_taken(lambda: done.append("flush-1"))  # behind both batches
    third = tickets.issue()
    tickets.after_taken(lambda: done.append("flush-2"))  # behind all three
    tickets.close(second)
    assert done == []
    tickets.close(first)
    assert done == ["flush-1"]
    tickets.close(third)
    assert done == ["flush-1", "flush-2"]
    tickets.after_taken(lambda: done.append("now"))  # nothing open: at once
    assert done[-1] == "now"
