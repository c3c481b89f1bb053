"""The asyncio twin: the same behaviour in a loop, and the same public methods as Client."""

from __future__ import annotations

import asyncio
import inspect

import httpx
import pytest

import meterd
from meterd.sdk._retry import RetryPolicy
from tests.sdk.conftest import FAST_RETRY
from tests.sdk.fakeserver import FakeServer


def test_async_client_has_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")}

    renamed = {"flush": "aflush", "close": "aclose"}
    assert {renamed.get(n, n) for n in public(meterd.Client)} - {"sync_mode"} == public(meterd.AsyncClient)
    for name in public(meterd.AsyncClient) - {"meter", "stats"}:
        method = getattr(meterd.AsyncClient, name)
        if callable(method):
            assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
            sync = getattr(meterd.Client, {v: k for k, v in renamed.items()}.get(name, name))
            assert list(inspect.signature(method).parameters) == list(inspect.signature(sync).parameters), name


async def test_meter_batches_and_retries_in_the_loop(fake: FakeServer) -> None:
    fake.faults.extend([503, httpx.ConnectError("refused")])
    seen: list[Exception] = []
    async with meterd.AsyncClient(
        "http://fake", "k", transport=fake.transport(), retry=FAST_RETRY, on_error=lambda e, r: seen.append(e)
    ) as client:
        for i in range(3000):
            client.meter("m", i, "c")
        client.meter("m", 1, "c", id="x", time=1714521600)
        client.meter("m", 2, "c", id="x", time=1714521600)
        assert await client.aflush(10)
        stats = client.stats()
    assert fake.total() == sum(range(3000)) + 1
    assert (stats.sent, stats.conflict, stats.retried, stats.pending) == (3001, 1, 2, 0)
    assert len(seen) == 1


async def test_aclose_is_bounded_and_counts_what_it_could_not_send(fake: FakeServer) -> None:
    fake.faults.extend([httpx.ConnectError("refused")] * 10_000)
    client = meterd.AsyncClient(
        "http://fake",
        "k",
        transport=fake.transport(),
        retry=RetryPolicy(base=0.05, cap=0.05, max_attempts=None, max_elapsed=30),
    )
    for _ in range(5):
        client.meter("m", 1, "c")
    started = asyncio.get_running_loop().time()
    assert await client.aflush(0.2) is False
    assert await client.aclose(0.3) is False
    assert asyncio.get_running_loop().time() - started < 2.0
    assert client.stats().dropped == {"shutdown": 5}
    client.meter("m", 1, "c")
    assert client.stats().dropped == {"shutdown": 5, "closed": 1}


async def test_typed_calls_raise_the_same_errors(fake: FakeServer) -> None:
    async with meterd.AsyncClient("http://fake", "k", transport=fake.transport()) as client:
        await client.create_customer("acme", email="a@example.com")
        assert (await client.get_customer("acme")).email == "a@example.com"
        with pytest.raises(meterd.errors.NotFoundError):
            await client.get_customer("nobody")
        assert [c.id for c in (await client.list_customers()).items] == ["acme"]


async def test_a_request_that_never_answers_is_cancelled_at_close_and_counted() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = meterd.AsyncClient("http://fake", "k", transport=httpx.MockTransport(hang))
    for _ in range(3):
        client.meter("m", 1, "c")
    assert await client.aclose(0.2) is False
    assert client.stats().dropped == {"shutdown": 3}
