"""A meter defined or changed while an ingest is in flight: the ingest reconciles after its writes, so the event
is counted exactly once under the definition that holds when both are done."""

from __future__ import annotations

from typing import Any

import pytest

from meterd.core.cloudevents import MeterDefinition, definition_of
from meterd.core.models import Aggregation, EventStatus, Meter
from meterd.service import cloudevents
from meterd.storage.base import EventFilter
from tests.conftest import Served

EVENT = {"id": "1", "source": "s", "specversion": "1.0", "type": "t", "subject": "acme", "data": {"v": 4}}


def meter(version: str) -> Meter:
    spec = {"id": "x", "eventType": "t", "valueProperty": "$.v", "groupBy": {}, "version": version}
    return Meter("m", Aggregation.SUM, properties={"openmeter": spec})


def stale_first_read(monkeypatch: pytest.MonkeyPatch, stale: list[MeterDefinition]) -> None:
    """The ingest's first read of the definitions sees ``stale`` (as if the change landed just after it)."""
    real = cloudevents.definitions
    calls = {"n": 0}

    async def definitions(meterd: Any, tenant: str) -> list[MeterDefinition]:
        calls["n"] += 1
        return stale if calls["n"] == 1 else await real(meterd, tenant)

    monkeypatch.setattr(cloudevents, "definitions", definitions)


async def live_usage(served: Served) -> list[tuple[str, float]]:
    where = EventFilter(surface="openmeter", meter="m", status=EventStatus.LIVE)
    page = await served.store.list_events("default", where)
    return [(s.event.id.rsplit(":", 1)[1], s.event.value) for s in page.items]


async def test_meter_created_during_ingest(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    await served.store.put_meter("default", meter("v1"))  # its backfill ran before the event was kept
    stale_first_read(monkeypatch, [])
    assert await cloudevents.ingest_cloudevents(served.meterd, "default", [EVENT]) == [None]
    assert await live_usage(served) == [("v1", 4.0)]


async def test_meter_changed_during_ingest(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    old = definition_of(meter("v1"))
    assert old is not None
    await served.store.put_meter("default", meter("v2"))  # the change's re-derivation missed the event
    stale_first_read(monkeypatch, [old])
    await cloudevents.ingest_cloudevents(served.meterd, "default", [EVENT])
    assert await live_usage(served) == [("v2", 4.0)]
    voided = await served.store.list_events(
        "default", EventFilter(surface="openmeter", meter="m", status=EventStatus.VOIDED)
    )
    assert [s.event.id.rsplit(":", 1)[1] for s in voided.items] == ["v1"]


async def test_meter_deleted_during_ingest(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    old = definition_of(meter("v1"))
    assert old is not None
    stale_first_read(monkeypatch, [old])
    await cloudevents.ingest_cloudevents(served.meterd, "default", [EVENT])
    assert await live_usage(served) == []
