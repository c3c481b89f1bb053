"""The sync Client against the fake native server: batching, outcomes, retries, drops, modes, lifecycle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import meterd
from meterd.core.errors import InvalidInput
from meterd.sdk._retry import RetryPolicy
from meterd.sdk.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    EventRejected,
    NotFoundError,
    ServerError,
    TransportError,
)
from tests.sdk.fakeserver import FakeServer, problem

Make = Callable[..., meterd.Client]


def event_posts(fake: FakeServer) -> list[list[dict[str, Any]]]:
    return [json.loads(r.content) for r in fake.requests if r.url.path == "/v1/events"]


def test_metered_events_arrive_exactly_with_their_values(fake: FakeServer, make_client: Make) -> None:
    client = make_client()
    ids = [client.meter("api_calls", i % 7, f"c{i % 3}", dimensions={"i": i}) for i in range(2500)]
    assert client.flush(5)
    assert sorted(fake.events) == sorted(ids)
    assert fake.total() == sum(i % 7 for i in range(2500))
    assert all(fake.events[e].dimensions == {"i": i} for i, e in enumerate(ids))
    stats = client.stats()
    assert (stats.enqueued, stats.sent, stats.accepted, stats.pending, stats.dropped) == (2500, 2500, 2500, 0, {})


def test_batches_respect_count_and_bytes(fake: FakeServer, make_client: Make) -> None:
    client = make_client(batching=meterd.Batching(max_batch_size=100, max_batch_bytes=4096))
    for _i in range(1000):
        client.meter("m", 1, "c", dimensions={"pad": "x" * 50})
    assert client.flush(5)
    sizes = [len(p) for p in event_posts(fake)]
    assert sum(sizes) == 1000 and max(sizes) <= 100
    assert all(len(r.content) <= 4096 for r in fake.requests)


def test_the_interval_sends_without_a_flush(fake: FakeServer, make_client: Make) -> None:
    client = make_client(batching=meterd.Batching(flush_interval=0.05))
    client.meter("m", 3, "c")
    deadline = time.monotonic() + 5
    while not fake.events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.total() == 3


def test_conflicts_and_rejections_go_to_on_error(fake: FakeServer, make_client: Make) -> None:
    seen: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(on_error=lambda e, records: seen.append((e, records)))
    client.meter("m", 1, "c", id="same", time=1714521600)
    client.meter("m", 2, "c", id="same", time=1714521600)  # same id, other content
    client.meter("m", 1, "c", id="same", time=1714521600)  # a harmless duplicate
    assert client.flush(5)
    assert len(seen) == 1
    error, records = seen[0]
    assert isinstance(error, EventRejected) and error.outcome == "conflict" and error.event_id == "same"
    assert records[0]["value"] == 2
    stats = client.stats()
    assert (stats.accepted, stats.conflict, stats.duplicate, stats.sent) == (1, 1, 1, 2)


def test_temporary_failures_are_retried_without_double_counting(fake: FakeServer, make_client: Make) -> None:
    client = make_client()
    committed_then_lost = lambda request: (fake.route(request), None)[1] or httpx.Response(503)  # noqa: E731
    fake.faults.extend([503, (429, {"retry-after": "0"}), httpx.ConnectError("refused"), committed_then_lost])
    for i in range(50):
        client.meter("m", i, "c")
    assert client.flush(10)
    assert fake.total() == sum(range(50)) and len(fake.events) == 50
    stats = client.stats()
    # the last failure came after the server committed: the resend finds every record already there
    assert (stats.retried, stats.sent, stats.accepted, stats.duplicate) == (4, 50, 0, 50)


def test_a_partial_answer_resends_only_the_unanswered_records(fake: FakeServer, make_client: Make) -> None:
    def half(request: httpx.Request) -> httpx.Response:
        full = json.loads(fake.route(request).content)
        return httpx.Response(200, json={"results": full["results"][:3], "counts": {}})

    fake.faults.append(half)
    client = make_client()
    for i in range(5):
        client.meter("m", 1, "c", id=f"e{i}")
    assert client.flush(5)
    posts = event_posts(fake)
    assert [r["id"] for r in posts[1]] == ["e3", "e4"]
    assert client.stats().duplicate == 2  # the server had stored them; only the answer was lost


def test_data_errors_drop_the_batch_and_say_so(fake: FakeServer, make_client: Make) -> None:
    seen: list[Exception] = []
    fake.faults.append(400)
    client = make_client(on_error=lambda e, r: seen.append(e))
    client.meter("m", 1, "c")
    client.meter("m", 1, "c")
    assert client.flush(5)
    assert client.stats().dropped == {"http_400": 2}
    assert len(seen) == 1 and getattr(seen[0], "status", None) == 400


def test_retries_end_with_the_policy_and_the_loss_is_counted(fake: FakeServer, make_client: Make) -> None:
    fake.faults.extend([503] * 10)
    client = make_client(retry=RetryPolicy(base=0.001, cap=0.002, max_attempts=2))
    client.meter("m", 1, "c")
    assert client.flush(5)
    assert client.stats().dropped == {"retries_exhausted": 1}
    assert len(fake.requests) == 3


class Gate:
    """A fault that holds requests until released."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()

    def __call__(self, request: httpx.Request) -> None:
        self.entered.set()
        self.open.wait(10)


def test_a_full_queue_drops_the_newest_and_counts_every_drop(fake: FakeServer, make_client: Make) -> None:
    gate = Gate()
    fake.faults.append(gate)
    client = make_client(batching=meterd.Batching(max_queue_size=10, max_batch_size=1, max_in_flight=1))
    client.meter("m", 1, "c")
    assert gate.entered.wait(5)  # the only sender is stuck in a request
    for _ in range(25):
        client.meter("m", 1, "c")
    assert client.stats().dropped == {"queue_full": 15}
    gate.open.set()
    assert client.flush(5)
    assert len(fake.events) == 11 and client.stats().enqueued == 11


def test_flush_and_close_are_bounded_by_their_timeouts(fake: FakeServer, make_client: Make) -> None:
    gate = Gate()
    fake.faults.append(gate)
    client = make_client(batching=meterd.Batching(max_in_flight=1))
    client.meter("m", 1, "c")
    client.meter("m", 1, "c")
    started = time.monotonic()
    assert client.flush(0.2) is False
    assert 0.15 < time.monotonic() - started < 1.0
    client.meter("m", 1, "c")  # queued behind the stuck request
    started = time.monotonic()
    assert client.close(timeout=0.3) is False
    assert time.monotonic() - started < 1.0
    assert client.stats().dropped == {"shutdown": 1}
    gate.open.set()


def test_meter_after_close_is_counted_not_raised(fake: FakeServer, make_client: Make) -> None:
    client = make_client()
    client.meter("m", 1, "c")
    assert client.close()
    assert client.close()  # idempotent
    client.meter("m", 1, "c")
    assert client.stats().dropped == {"closed": 1}
    assert len(fake.events) == 1


def test_context_manager_flushes(fake: FakeServer) -> None:
    with meterd.Client("http://fake", "k", transport=fake.transport()) as client:
        client.meter("m", 4, "c")
    assert fake.total() == 4


def test_invalid_input_raises_in_the_caller_and_nothing_is_queued(make_client: Make) -> None:
    client = make_client()
    with pytest.raises(InvalidInput) as caught:
        client.meter("bad name", float("inf"), "c", dimensions={"k": [1]})
    assert sorted(e.path for e in caught.value.errors) == ["dimensions.k", "meter", "value"]
    assert client.stats().enqueued == 0


def test_send_false_validates_and_counts_but_never_sends(fake: FakeServer, make_client: Make) -> None:
    client = make_client(send=False)
    client.meter("m", 1, "c")
    with pytest.raises(InvalidInput):
        client.meter("m", "1", "c")  # type: ignore[arg-type]
    assert client.flush(1)
    assert client.stats().enqueued == 1 and fake.requests == []


def test_sync_mode_sends_inline_and_raises(fake: FakeServer, make_client: Make) -> None:
    client = make_client(sync_mode=True)
    event_id = client.meter("m", 1, "c", id="s1", time=1714521600)
    assert "s1" in fake.events and event_id == "s1"
    assert client.meter("m", 1, "c", id="s1", time=1714521600) == "s1"  # a duplicate is fine
    with pytest.raises(EventRejected) as caught:
        client.meter("m", 2, "c", id="s1", time=1714521600)
    assert caught.value.outcome == "conflict"
    fake.faults.extend([httpx.ConnectError("refused")] * 20)
    client2 = make_client(sync_mode=True, retry=RetryPolicy(base=0.001, cap=0.001, max_attempts=1))
    with pytest.raises(TransportError):
        client2.meter("m", 1, "c")


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch, fake: FakeServer) -> None:
    with pytest.raises(ConfigurationError):
        meterd.Client()
    monkeypatch.setenv("METERD_URL", "http://fake/")
    monkeypatch.setenv("METERD_API_KEY", "k")
    with meterd.Client(transport=fake.transport()) as client:
        assert client.ready()
    assert fake.requests[0].headers["authorization"] == "Bearer k"
    assert str(fake.requests[0].url) == "http://fake/readyz"


def test_typed_errors_and_retries_of_calls(fake: FakeServer, make_client: Make) -> None:
    client = make_client()
    created = client.create_customer("acme", name="Acme", traits={"tier": "gold"})
    assert created.traits == {"tier": "gold"} and created.created_at is not None
    with pytest.raises(ConflictError) as conflict:
        client.create_customer("acme")
    assert isinstance(conflict.value, meterd.errors.APIError) and conflict.value.status == 409
    with pytest.raises(NotFoundError) as missing:
        client.get_customer("nobody")
    assert missing.value.problem["detail"] == "no such customer"
    fake.faults.append(503)  # an idempotent GET is retried
    assert client.get_customer("acme").name == "Acme"
    fake.faults.append(503)  # a POST that creates is not
    before = len(fake.requests)
    with pytest.raises(ServerError):
        client.create_customer("other")
    assert len(fake.requests) == before + 1
    fake.faults.append(lambda r: problem(401, "bad key"))
    with pytest.raises(AuthenticationError):
        client.list_customers()
    client.delete_customer("acme")
    assert client.list_customers().items == []


def test_flush_waits_for_an_earlier_batch_still_in_flight_on_another_sender(
    fake: FakeServer, make_client: Make
) -> None:
    gate = Gate()
    fake.faults.append(gate)
    client = make_client(batching=meterd.Batching(max_batch_size=1, max_in_flight=2))
    client.meter("m", 1, "c", id="slow")
    assert gate.entered.wait(5)  # sender 1 holds "slow"
    client.meter("m", 1, "c", id="fast")
    assert client.flush(0.3) is False  # "fast" is delivered by sender 2, but "slow" is not yet
    assert "fast" in fake.events and "slow" not in fake.events
    gate.open.set()
    assert client.flush(5)
    assert sorted(fake.events) == ["fast", "slow"]
