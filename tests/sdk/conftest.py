"""SDK test fixtures: a fake native server behind MockTransport, clients on it, a hermetic environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import meterd
from meterd.sdk._retry import RetryPolicy
from tests.sdk.fakeserver import FakeServer

FAST_RETRY = RetryPolicy(base=0.001, cap=0.01, max_attempts=10, max_elapsed=10.0)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERD_URL", raising=False)
    monkeypatch.delenv("METERD_API_KEY", raising=False)


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make_client(fake: FakeServer) -> Iterator[Callable[..., meterd.Client]]:
    made: list[meterd.Client] = []

    def make(**options: Any) -> meterd.Client:
        options.setdefault("retry", FAST_RETRY)
        client = meterd.Client("http://fake", "k", transport=fake.transport(), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=1.0)
