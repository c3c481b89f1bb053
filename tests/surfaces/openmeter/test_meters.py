"""OpenMeter meters at the wire: CRUD, events before their meter (backfill), definition changes (re-derive),
deletion (voids), and every query parameter form in JSON and CSV, against the independent reference."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.surfaces.openmeter.reference import normalise, rows

BATCH = {"content-type": "application/cloudevents-batch+json"}
TOKENS = {
    "slug": "tokens",
    "eventType": "prompt",
    "aggregation": "SUM",
    "valueProperty": "$.usage.tokens",
    "groupBy": {"model": "$.model", "region": "$['region']"},
}


def ev(n: int, subject: str, time: str, tokens: Any, model: str | None = "gpt", region: str = "eu") -> dict[str, Any]:
    data: dict[str, Any] = {"usage": {"tokens": tokens}, "region": region}
    if model is not None:
        data["model"] = model
    return {
        "id": f"e{n}",
        "source": "app",
        "specversion": "1.0",
        "type": "prompt",
        "subject": subject,
        "time": time,
        "data": data,
    }


EVENTS = [
    ev(1, "acme", "2024-03-30T22:30:00Z", 10),
    ev(2, "acme", "2024-03-31T00:15:00Z", 20, model="claude"),
    ev(3, "beta", "2024-03-31T01:59:00Z", 5, region="us"),
    ev(4, "beta", "2024-03-31T02:00:00Z", "7.5"),
    ev(5, "acme", "2024-04-01T12:00:00Z", 1, model=None),
    ev(6, "corp", "2024-04-02T08:00:00Z", 3, model="claude", region="us"),
]


async def ingest(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    r = await client.post("/api/v1/events", content=json.dumps(events), headers=BATCH)
    assert r.status_code == 204, r.text


async def query(client: httpx.AsyncClient, slug: str, params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/meters/{slug}/query", params=params)
    assert r.status_code == 200, r.text
    return normalise(r.json()["data"])


async def test_meter_crud(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/meters", json={**TOKENS, "name": "Tokens", "description": "LLM tokens"})
    assert r.status_code == 201
    meter = r.json()
    assert {
        k: meter[k] for k in ("slug", "name", "description", "aggregation", "eventType", "valueProperty", "groupBy")
    } == {
        "slug": "tokens",
        "name": "Tokens",
        "description": "LLM tokens",
        "aggregation": "SUM",
        "eventType": "prompt",
        "valueProperty": "$.usage.tokens",
        "groupBy": {"model": "$.model", "region": "$['region']"},
    }
    assert (await client.get("/api/v1/meters/tokens")).json() == meter
    assert (await client.get(f"/api/v1/meters/{meter['id']}")).json() == meter
    assert [m["slug"] for m in (await client.get("/api/v1/meters")).json()] == ["tokens"]
    assert (await client.post("/api/v1/meters", json=TOKENS)).status_code == 409
    r = await client.put("/api/v1/meters/tokens", json={"name": "LLM tokens", "description": "per model"})
    assert r.status_code == 200 and r.json()["name"] == "LLM tokens" and r.json()["id"] == meter["id"]
    assert (await client.delete("/api/v1/meters/tokens")).status_code == 204
    assert (await client.get("/api/v1/meters/tokens")).status_code == 404
    assert (await client.delete("/api/v1/meters/tokens")).status_code == 404
    # meters of other surfaces are not OpenMeter's to show or query
    await client.post("/v1/meters", json={"key": "native_meter"})
    assert (await client.get("/api/v1/meters")).json() == []
    assert (await client.get("/api/v1/meters/native_meter/query")).status_code == 404


CASES_INVALID_METERS_ARE_400 = [
    ({**TOKENS, "slug": "Bad-Slug"}, ["slug"]),
    ({**TOKENS, "aggregation": "MEDIAN"}, ["aggregation"]),
    ({**TOKENS, "valueProperty": None}, ["valueProperty"]),
    ({**TOKENS, "valueProperty": "$..tokens"}, ["valueProperty"]),
    ({**TOKENS, "valueProperty": "tokens"}, ["valueProperty"]),
    ({**TOKENS, "groupBy": {"subject": "$.s"}}, ["groupBy.subject"]),
    ({**TOKENS, "groupBy": {"m": "$.items[*]"}}, ["groupBy.m"]),
    ({**TOKENS, "eventType": ""}, ["eventType"]),
    ({**TOKENS, "colour": "red"}, ["colour"]),
]


async def test_invalid_meters_are_400(client: httpx.AsyncClient) -> None:
    for body, paths in CASES_INVALID_METERS_ARE_400:
        r = await client.post("/api/v1/meters", json=body)
        assert r.status_code == 400, r.text
        assert [e["path"] for e in r.json()["errors"]] == paths


async def test_count_needs_no_value_property(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/meters", json={"slug": "prompts", "eventType": "prompt", "aggregation": "count"})
    assert r.status_code == 201 and r.json()["aggregation"] == "COUNT"


async def test_events_before_their_meter_are_counted_when_it_is_defined(client: httpx.AsyncClient) -> None:
    await ingest(client, EVENTS[:3])
    await client.post("/api/v1/meters", json=TOKENS)
    await ingest(client, EVENTS[3:])
    q = {"from": "2024-03-01T00:00:00Z", "to": "2024-05-01T00:00:00Z", "groupBy": ["subject"]}
    assert await query(client, "tokens", q) == rows(EVENTS, TOKENS, q)
    assert [r["value"] for r in await query(client, "tokens", q)] == [31.0, 12.5, 3.0]


async def test_a_new_group_by_rederives_and_delete_voids(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json={**TOKENS, "groupBy": {}})
    await ingest(client, EVENTS)
    q = {"from": "2024-03-01T00:00:00Z", "to": "2024-05-01T00:00:00Z", "groupBy": ["model"]}
    assert (await client.get("/api/v1/meters/tokens/query", params=q)).status_code == 400
    r = await client.put("/api/v1/meters/tokens", json={"groupBy": {"model": "$.model"}})
    assert r.status_code == 200
    meter = {**TOKENS, "groupBy": {"model": "$.model"}}
    assert await query(client, "tokens", q) == rows(EVENTS, meter, q)
    await ingest(client, EVENTS)  # resending after the change adds nothing
    assert await query(client, "tokens", q) == rows(EVENTS, meter, q)
    native = {"meter": "tokens", "from": "2024-03-01T00:00:00Z", "to": "2024-05-01T00:00:00Z", "aggregation": "sum"}
    assert (await client.post("/v1/query", json=native)).json()["rows"][0]["value"] == 46.5
    voided = (await client.get("/v1/events", params={"meter": "tokens", "status": "voided"})).json()["items"]
    assert len(voided) == len(EVENTS)  # the first definition's usage, audited
    assert (await client.delete("/api/v1/meters/tokens")).status_code == 204
    assert (await client.post("/v1/query", json=native)).json()["rows"] == []
    await client.post("/api/v1/meters", json=TOKENS)  # defined again: derived again from the kept events
    assert (await client.post("/v1/query", json=native)).json()["rows"][0]["value"] == 46.5


QUERIES = [
    {"from": "2024-03-30T00:00:00Z", "to": "2024-04-03T00:00:00Z", "windowSize": "DAY"},
    {
        "from": "2024-03-30T00:00:00Z",
        "to": "2024-04-03T00:00:00Z",
        "windowSize": "DAY",
        "windowTimeZone": "Europe/Berlin",
    },
    {
        "from": "2024-03-30T00:00:00Z",
        "to": "2024-04-03T00:00:00Z",
        "windowSize": "HOUR",
        "groupBy": ["model", "subject"],
    },
    {"from": "2024-03-30T00:00:00Z", "to": "2024-04-03T00:00:00Z", "windowSize": "MINUTE", "subject": ["beta"]},
    {
        "from": "2024-03-01T00:00:00Z",
        "to": "2024-05-01T00:00:00Z",
        "windowSize": "MONTH",
        "windowTimeZone": "Asia/Kolkata",
    },
    {
        "from": "2024-03-30T00:00:00Z",
        "to": "2024-04-03T00:00:00Z",
        "groupBy": ["region"],
        "filterGroupBy": {"model": ["gpt"]},
    },
]


def as_params(q: dict[str, Any]) -> list[tuple[str, str]]:
    params = [(k, v) for k, v in q.items() if isinstance(v, str)]
    params += [(k, v) for k in ("groupBy", "subject") for v in q.get(k, [])]
    params += [(f"filterGroupBy[{k}]", v) for k, vs in q.get("filterGroupBy", {}).items() for v in vs]
    return params


@pytest.mark.parametrize("q", QUERIES)
async def test_queries_get_post_and_csv_equal_the_reference(client: httpx.AsyncClient, q: dict[str, Any]) -> None:
    await client.post("/api/v1/meters", json=TOKENS)
    await ingest(client, EVENTS)
    expected = rows(EVENTS, TOKENS, q)
    assert expected
    assert await query(client, "tokens", as_params(q)) == expected
    r = await client.post("/api/v1/meters/tokens/query", json=q)
    assert normalise(r.json()["data"]) == expected
    assert r.json()["from"] == q["from"] and r.json().get("windowSize") == q.get("windowSize")
    r = await client.get("/api/v1/meters/tokens/query", params=as_params(q), headers={"accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="tokens.csv"'
    lines = r.text.splitlines()
    labels = [g for g in q.get("groupBy", []) if g != "subject"]
    assert lines[0] == ",".join(
        ["window_start", "window_end", "subject", "customer_name", "customer_email", *labels, "value"]
    )
    assert [float(line.rsplit(",", 1)[1]) for line in lines[1:]] == [row["value"] for row in expected]


async def test_filter_group_by_as_the_sdk_sends_it_and_advanced_filters(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=TOKENS)
    await ingest(client, EVENTS)
    base = {"from": "2024-03-01T00:00:00Z", "to": "2024-05-01T00:00:00Z"}
    gpt = rows(EVENTS, TOKENS, {**base, "filterGroupBy": {"model": ["gpt"]}})
    for form in ("{'model': 'gpt'}", '{"model": "gpt"}'):
        assert await query(client, "tokens", {**base, "filterGroupBy": form}) == gpt
    advanced = json.dumps({"model": {"$in": ["gpt"]}, "region": {"$ne": "us"}})
    expected = rows(EVENTS, TOKENS, {**base, "filterGroupBy": {"model": ["gpt"], "region": ["eu"]}})
    assert await query(client, "tokens", {**base, "advancedMeterGroupByFilters": advanced}) == expected


async def test_unbounded_query_reports_the_minutes_the_usage_spans(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=TOKENS)
    await ingest(client, EVENTS)
    r = await client.get("/api/v1/meters/tokens/query", params={"groupBy": "subject"})
    data = {row["subject"]: (row["windowStart"], row["windowEnd"], row["value"]) for row in r.json()["data"]}
    assert data == {
        "acme": ("2024-03-30T22:30:00Z", "2024-04-01T12:01:00Z", 31.0),
        "beta": ("2024-03-31T01:59:00Z", "2024-03-31T02:01:00Z", 12.5),
        "corp": ("2024-04-02T08:00:00Z", "2024-04-02T08:01:00Z", 3.0),
    }
    assert "from" not in r.json() and "windowSize" not in r.json()


CASES_QUERY_VALIDATION_ERRORS_ARE_400 = [
    ({"groupBy": "colour"}, "groupBy"),
    ({"filterGroupBy[colour]": "red"}, "filterGroupBy"),
    ({"windowSize": "YEAR"}, "windowSize"),
    ({"windowTimeZone": "Mars/Base"}, "time_zone"),
    ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "to"),
    ({"advancedMeterGroupByFilters": '{"model": {"$like": "g%"}}'}, "advancedMeterGroupByFilters.model.$like"),
    ({"filterGroupBy": "not a map"}, "filterGroupBy"),
]


async def test_query_validation_errors_are_400(client: httpx.AsyncClient) -> None:
    for params, path in CASES_QUERY_VALIDATION_ERRORS_ARE_400:
        await client.post("/api/v1/meters", json=TOKENS)
        r = await client.get("/api/v1/meters/tokens/query", params=params)
        assert r.status_code == 400, r.text
        assert [e["path"] for e in r.json()["errors"]] == [path]


async def test_subjects_and_group_by_values_of_a_meter(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=TOKENS)
    await ingest(client, EVENTS)
    assert (await client.get("/api/v1/meters/tokens/subjects")).json() == ["acme", "beta", "corp"]
    assert (await client.get("/api/v1/meters/tokens/group-by/model/values")).json() == ["claude", "gpt"]


@pytest.mark.parametrize("aggregation", ["COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"])
async def test_every_aggregation(client: httpx.AsyncClient, aggregation: str) -> None:
    meter = {**TOKENS, "aggregation": aggregation}
    await client.post("/api/v1/meters", json=meter)
    await ingest(client, EVENTS)
    q = {"from": "2024-03-01T00:00:00Z", "to": "2024-05-01T00:00:00Z", "windowSize": "DAY", "groupBy": ["subject"]}
    assert await query(client, "tokens", as_params(q)) == rows(EVENTS, meter, q)


async def test_unbounded_queries_over_years_of_usage(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/meters", json=TOKENS)
    far = [ev(1, "acme", "2024-01-01T10:30:15Z", 2), ev(2, "acme", "2026-01-01T00:00:30Z", 3)]
    await ingest(client, far)
    r = await client.get("/api/v1/meters/tokens/query", params={"groupBy": "subject"})
    # minutes over two years would be too many windows: the span is reported to the hour
    assert [(x["windowStart"], x["windowEnd"], x["value"]) for x in r.json()["data"]] == [
        ("2024-01-01T10:00:00Z", "2026-01-01T01:00:00Z", 5.0)
    ]
    r = await client.get("/api/v1/meters/tokens/query", params={"windowSize": "DAY"})
    assert [(x["windowStart"], x["value"]) for x in r.json()["data"]] == [
        ("2024-01-01T00:00:00Z", 2.0),
        ("2026-01-01T00:00:00Z", 3.0),
    ]
    r = await client.get("/api/v1/meters/tokens/query", params={"windowSize": "DAY", "from": "2025-01-01T00:00:00Z"})
    assert [(x["windowStart"], x["value"]) for x in r.json()["data"]] == [("2026-01-01T00:00:00Z", 3.0)]
    r = await client.get("/api/v1/meters/tokens/query", params={"windowSize": "MINUTE"})
    assert r.status_code == 400 and r.json()["detail"] == "too many windows"
    r = await client.get("/api/v1/meters/tokens/query", params={"subject": "nobody"})
    assert r.json()["data"] == []
