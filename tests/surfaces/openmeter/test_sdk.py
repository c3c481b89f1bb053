"""The real ``openmeter`` SDK (1.0.0b236) against a live meterd: events, meters, subjects, JSON and CSV queries,
checked against the independent reference."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from corehttp.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from openmeter import Client
from openmeter import models as om

from tests.conftest import LiveServer
from tests.surfaces.openmeter.reference import normalise, rows

METER = {
    "slug": "tokens",
    "eventType": "prompt",
    "aggregation": "SUM",
    "valueProperty": "$.tokens",
    "groupBy": {"model": "$.model"},
}


def event(n: int, subject: str, time: str, tokens: float | str, model: str) -> dict[str, Any]:
    return {
        "id": f"ev-{n}",
        "source": "sdk-test",
        "specversion": "1.0",
        "type": "prompt",
        "subject": subject,
        "time": time,
        "data": {"tokens": tokens, "model": model},
    }


EVENTS = [
    event(1, "acme", "2024-03-30T23:30:00Z", 100, "gpt"),
    event(2, "acme", "2024-03-31T00:30:00Z", 50, "claude"),
    event(3, "beta", "2024-03-31T01:45:00Z", "25", "gpt"),
    event(4, "beta", "2024-03-31T22:10:00Z", 10, "gpt"),
    event(5, "corp", "2024-04-01T03:00:00Z", 7, "claude"),
    event(6, "acme", "2024-04-02T12:00:00Z", 1, "gpt"),
]


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def sdk_event(e: dict[str, Any]) -> om.Event:
    return om.Event({**e, "time": dt(e["time"])})


def as_rows(result: om.MeterQueryResult) -> list[dict[str, Any]]:
    return normalise(
        [
            {
                "windowStart": r.window_start.isoformat(),
                "windowEnd": r.window_end.isoformat(),
                "subject": r.subject,
                "groupBy": dict(r.group_by),
                "value": r.value,
            }
            for r in result.data
        ]
    )


@pytest.fixture
def sdk(live_server: LiveServer) -> Client:
    return Client(endpoint=live_server.url, token=live_server.admin_key)


def test_ingest_single_and_batch_then_define_the_meter(sdk: Client) -> None:
    sdk.events.ingest_event(EVENTS[0])  # application/cloudevents+json
    sdk.events.ingest_events(EVENTS[1:3])  # application/cloudevents-batch+json
    meter = sdk.meters.create(METER)  # defined after some of its events: they count
    assert (meter.slug, meter.aggregation, meter.event_type, meter.group_by) == (
        "tokens",
        "SUM",
        "prompt",
        {"model": "$.model"},
    )
    sdk.events.ingest_events_json(sdk_event(EVENTS[3]))  # application/json, one event
    sdk.events.ingest_events_json([sdk_event(e) for e in EVENTS[4:]])  # application/json, an array
    sdk.events.ingest_events(EVENTS)  # resending everything changes nothing
    result = sdk.meters.query_json("tokens", from_parameter=dt("2024-03-01T00:00:00Z"), to=dt("2024-05-01T00:00:00Z"))
    assert [r.value for r in result.data] == [193.0]
    listed = sdk.events.list(from_parameter=dt("2024-03-01T00:00:00Z"), limit=100)
    assert sorted(e.event.id for e in listed) == sorted(e["id"] for e in EVENTS)
    assert all(e.validation_error is None for e in listed)


QUERIES: list[dict[str, Any]] = [
    {"windowSize": "HOUR", "groupBy": ["subject"]},
    {"windowSize": "DAY", "windowTimeZone": "Europe/Berlin", "groupBy": ["model"]},
    {"windowSize": "DAY", "windowTimeZone": "America/Los_Angeles", "subject": ["acme", "beta"]},
    {"windowSize": "MONTH", "groupBy": ["subject", "model"]},
    {"groupBy": ["model"], "filterGroupBy": {"model": ["gpt"]}},
]


@pytest.mark.parametrize("q", QUERIES)
def test_json_and_csv_queries_equal_the_reference(sdk: Client, q: dict[str, Any]) -> None:
    sdk.meters.create(METER)
    sdk.events.ingest_events(EVENTS)
    q = {"from": "2024-03-30T00:00:00Z", "to": "2024-04-03T00:00:00Z", **q}
    expected = rows(EVENTS, METER, q)
    assert expected
    kwargs: dict[str, Any] = {
        "from_parameter": dt(q["from"]),
        "to": dt(q["to"]),
        "window_size": q.get("windowSize"),
        "window_time_zone": q.get("windowTimeZone"),
        "subject": q.get("subject"),
        "group_by": q.get("groupBy"),
        "filter_group_by": {k: v[0] for k, v in q["filterGroupBy"].items()} if "filterGroupBy" in q else None,
    }
    result = sdk.meters.query_json("tokens", **kwargs)
    assert as_rows(result) == expected
    assert result.window_size == q.get("windowSize")
    posted = sdk.meters.query("tokens", {k: v for k, v in q.items()})
    assert as_rows(posted) == expected
    table = list(csv.DictReader(io.StringIO(sdk.meters.query_csv("tokens", **kwargs))))
    assert [float(r["value"]) for r in table] == [r["value"] for r in expected]
    assert [dt(r["window_start"]) for r in table] == [r["windowStart"] for r in expected]
    assert [r["subject"] or None for r in table] == [r["subject"] for r in expected]


def test_meters_crud_and_errors(sdk: Client) -> None:
    created = sdk.meters.create({**METER, "name": "Tokens", "description": "LLM tokens"})
    assert sdk.meters.get("tokens").id == created.id == sdk.meters.get(created.id).id
    with pytest.raises(ResourceExistsError):
        sdk.meters.create(METER)
    with pytest.raises(HttpResponseError) as bad:
        sdk.meters.create({**METER, "slug": "Nope!"})
    assert bad.value.status_code == 400
    for aggregation in ("COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"):
        sdk.meters.create({**METER, "slug": aggregation.lower(), "aggregation": aggregation})
    assert [m.slug for m in sdk.meters.list()] == ["avg", "count", "latest", "max", "min", "tokens", "unique_count"]
    updated = sdk.meters.update("tokens", {"name": "All tokens", "groupBy": {"model": "$.model", "region": "$.region"}})
    assert updated.name == "All tokens" and set(updated.group_by) == {"model", "region"}
    sdk.meters.delete("count")
    with pytest.raises(ResourceNotFoundError):
        sdk.meters.get("count")
    sdk.events.ingest_events(EVENTS)
    q = {"from": "2024-03-30T00:00:00Z", "to": "2024-04-03T00:00:00Z", "groupBy": ["subject"]}
    for aggregation in ("UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"):
        result = sdk.meters.query(aggregation.lower(), q)
        assert as_rows(result) == rows(EVENTS, {**METER, "aggregation": aggregation}, q), aggregation
    with pytest.raises(HttpResponseError) as bad:
        sdk.meters.query_json("tokens", group_by=["colour"])
    assert bad.value.status_code == 400


def test_subjects_upsert_list_get_delete(sdk: Client) -> None:
    saved = sdk.subjects.upsert([{"key": "acme", "displayName": "Acme", "metadata": {"tier": "gold"}}, {"key": "beta"}])
    assert [(s.key, s.display_name) for s in saved] == [("acme", "Acme"), ("beta", None)]
    sdk.subjects.upsert([{"key": "acme", "stripeCustomerId": "cus_1"}])  # a partial update keeps the rest
    acme = sdk.subjects.get("acme")
    assert (acme.display_name, acme.metadata, acme.stripe_customer_id) == ("Acme", {"tier": "gold"}, "cus_1")
    assert [s.key for s in sdk.subjects.list()] == ["acme", "beta"]
    sdk.meters.create(METER)
    sdk.events.ingest_events(EVENTS)
    csv_text = sdk.meters.query_csv("tokens", group_by=["subject"])
    names = {r["subject"]: r["customer_name"] for r in csv.DictReader(io.StringIO(csv_text))}
    assert names == {"acme": "Acme", "beta": "", "corp": ""}
    sdk.subjects.delete("beta")
    with pytest.raises(ResourceNotFoundError):
        sdk.subjects.get("beta")
