"""OpenMeter /api/v1/events at the wire: content types, 204, dedup on source + id, invalid events kept and
reported, and the event listing with its validation errors."""

from __future__ import annotations

import json
from typing import Any

import httpx

SINGLE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
METER = {"slug": "tokens", "eventType": "prompt", "aggregation": "SUM", "valueProperty": "$.tokens"}


def ev(event_id: str, tokens: Any = 5, source: str = "app", subject: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": source,
        "specversion": "1.0",
        "type": "prompt",
        "subject": subject,
        "time": "2024-01-01T10:00:00Z",
        "data": {"tokens": tokens},
        **extra,
    }


async def total(client: httpx.AsyncClient, slug: str = "tokens") -> float:
    r = await client.get(f"/api/v1/meters/{slug}/query")
    assert r.status_code == 200, r.text
    return sum(row["value"] for row in r.json()["data"])


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/events", content=json.dumps(body), headers=headers)


async def test_every_content_type_is_204_and_counts(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/meters", json=METER)).status_code == 201
    assert (await post(client, ev("1"), SINGLE)).status_code == 204
    assert (await post(client, [ev("2"), ev("3")], BATCH)).status_code == 204
    json_ct = {"content-type": "application/json"}
    assert (await post(client, ev("4"), json_ct)).status_code == 204
    r = await post(client, [ev("5")], {"content-type": "application/json; charset=utf-8"})
    assert (r.status_code, r.content) == (204, b"")
    assert await total(client) == 25.0


async def test_dedup_on_source_and_id(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=METER)
    await post(client, [ev("1"), ev("1"), ev("1", source="other")], BATCH)
    assert await total(client) == 10.0
    # a resend with other content: still 204, the first content stays, the conflict is kept
    assert (await post(client, ev("1", tokens=99), SINGLE)).status_code == 204
    assert await total(client) == 10.0
    kept = (await client.get("/v1/rejections", params={"surface": "openmeter"})).json()["items"]
    assert {k["code"] for k in kept} == {"conflict"}


CASES_SHAPE_MUST_MATCH_THE_CONTENT_TYPE = [
    ([ev("1")], SINGLE, 400),
    (ev("1"), BATCH, 400),
    (ev("1"), {"content-type": "text/plain"}, 415),
    ("", SINGLE, 400),
]


async def test_shape_must_match_the_content_type(client: httpx.AsyncClient) -> None:
    for body, headers, status in CASES_SHAPE_MUST_MATCH_THE_CONTENT_TYPE:
        content = b"" if body == "" else json.dumps(body).encode()
        r = await client.post("/api/v1/events", content=content, headers=headers)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == status


async def test_invalid_events_are_400_listed_and_kept_while_valid_ones_are_stored(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=METER)
    bad = {"id": "x", "source": "app", "specversion": "0.3", "type": "prompt", "time": "yesterday"}
    r = await post(client, [ev("1"), bad, ev("2", data=[1])], BATCH)
    assert r.status_code == 400
    body = r.json()
    assert body["detail"] == "2 of 3 events are invalid; the others were ingested"
    assert body["errors"] == [
        {"path": "1.specversion", "message": "must be '1.0'"},
        {"path": "1.subject", "message": "is required and must be a non-empty string"},
        {"path": "1.time", "message": "is not an RFC 3339 time: 'yesterday'"},
        {"path": "2.data", "message": "must be a JSON object when given"},
    ]
    assert await total(client) == 5.0
    kept = (await client.get("/v1/rejections", params={"surface": "openmeter"})).json()["items"]
    assert len(kept) == 2 and json.loads(kept[0]["raw"])["id"] == "x"


async def test_events_without_a_usable_value_are_kept_with_a_validation_error(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=METER)
    await post(client, [ev("ok"), ev("missing", data={}), ev("text", tokens="many")], BATCH)
    assert await total(client) == 5.0
    listed = (await client.get("/api/v1/events", params={"from": "2024-01-01T00:00:00Z"})).json()
    errors = {e["event"]["id"]: e.get("validationError") for e in listed}
    assert errors == {
        "ok": None,
        "missing": "meter 'tokens': $.tokens is missing",
        "text": "meter 'tokens': $.tokens is not a number",
    }
    # a resend does not repeat the rejection
    await post(client, [ev("missing", data={})], BATCH)
    kept = (await client.get("/v1/rejections", params={"surface": "openmeter"})).json()["items"]
    assert sorted(k["message"] for k in kept) == [
        "meter 'tokens': $.tokens is missing",
        "meter 'tokens': $.tokens is not a number",
    ]


async def test_event_listing_filters_orders_and_limits(client: httpx.AsyncClient) -> None:
    events = [
        {**ev(f"e{i}", subject="acme" if i % 2 else "beta"), "time": f"2024-01-0{i}T00:00:00Z"} for i in range(1, 7)
    ]
    await post(client, events, BATCH)
    params: dict[str, Any] = {"from": "2024-01-01T00:00:00Z"}
    listed = (await client.get("/api/v1/events", params=params)).json()
    assert [e["event"]["id"] for e in listed] == ["e6", "e5", "e4", "e3", "e2", "e1"]
    first = listed[-1]
    assert first["event"] == events[0] and first["customerId"] == "acme"
    assert set(first) == {"event", "customerId", "ingestedAt", "storedAt"}
    r = await client.get("/api/v1/events", params={**params, "subject": "ACM", "limit": 2})
    assert [e["event"]["id"] for e in r.json()] == ["e5", "e3"]
    r = await client.get("/api/v1/events", params={**params, "to": "2024-01-03T00:00:00Z", "id": "e"})
    assert [e["event"]["id"] for e in r.json()] == ["e3", "e2", "e1"]  # to is inclusive
    r = await client.get("/api/v1/events", params=[("from", params["from"]), ("customerId", "beta")])
    assert [e["event"]["id"] for e in r.json()] == ["e6", "e4", "e2"]
    assert (await client.get("/api/v1/events")).json() == []  # the default range is the last 72 hours


CASES_EVENT_LISTING_VALIDATION_ERRORS = [
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "to"),
    ({"from": "soon"}, "from"),
    ({"ingestedAtFrom": "2024-01-02T00:00:00Z", "ingestedAtTo": "2024-01-01T00:00:00Z"}, "ingestedAtTo"),
    ({"color": "red"}, "color"),
]


async def test_event_listing_validation_errors(client: httpx.AsyncClient) -> None:
    for params, path in CASES_EVENT_LISTING_VALIDATION_ERRORS:
        r = await client.get("/api/v1/events", params=params)
        assert r.status_code == 400
        assert [e["path"] for e in r.json()["errors"]] == [path]


async def test_bearer_key_is_required(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", json=ev("1"), headers={"authorization": ""})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    reader = (await client.post("/v1/keys", json={"name": "r", "scopes": ["read"]})).json()["key"]
    r = await client.post("/api/v1/events", json=ev("1"), headers={"authorization": f"Bearer {reader}"})
    assert r.status_code == 403
