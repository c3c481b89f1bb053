"""Amberflo /ingest at the wire: record or array, gzip or plain, both path forms, whole-record dedup, rejections,
X-API-KEY in any case, and a replay of the requests captured from the real client."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Served

WIRE = Path("/work/shared/reference/wire/amberflo-3.3.1-requests.ndjson")
R1 = {
    "uniqueId": "u-1",
    "meterApiName": "api-calls",
    "meterValue": 2.5,
    "customerId": "c1",
    "meterTimeInMillis": 1704067200123,
    "dimensions": {"region": "eu"},
}


@pytest.fixture
async def af(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"X-API-KEY": served.admin_key}
    ) as c:
        yield c


async def total(client: httpx.AsyncClient, meter: str = "api-calls") -> tuple[float, int]:
    """(sum, count) of a meter over all time, by the native query."""
    body = {"meter": meter, "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    r = await client.post("/v1/query", json={**body, "aggregation": "sum"})
    s = r.json()["rows"][0]["value"] if r.json()["rows"] else 0.0
    r = await client.post("/v1/query", json={**body, "aggregation": "count"})
    n = int(r.json()["rows"][0]["value"]) if r.json()["rows"] else 0
    return s, n


async def test_single_record_plain_and_array_gzip_with_or_without_slash(
    af: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    r = await af.post("/ingest", json=R1)
    assert (r.status_code, r.text) == (200, "1 records were ingested")
    batch = [{**R1, "uniqueId": f"u-{i}", "meterValue": i} for i in range(2, 12)]
    r = await af.post(
        "/ingest/",
        content=gzip.compress(json.dumps(batch).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert (r.status_code, r.text) == (200, "10 records were ingested")
    assert await total(client) == (2.5 + sum(range(2, 12)), 11)


async def test_whole_record_dedup(af: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert (await af.post("/ingest/", json=[R1, R1])).text == "2 records were ingested"
    assert (await af.post("/ingest/", json=R1)).text == "1 records were ingested"
    assert await total(client) == (2.5, 1)
    # any differing attribute makes another record: time, value, dimension, or the unique id
    variants = [
        {**R1, "meterTimeInMillis": R1["meterTimeInMillis"] + 1},
        {**R1, "meterValue": 3},
        {**R1, "dimensions": {"region": "us"}},
        {**R1, "uniqueId": "u-2"},
    ]
    assert (await af.post("/ingest/", json=variants)).text == "4 records were ingested"
    assert await total(client) == (2.5 * 2 + 3 + 2.5 + 2.5, 5)
    events = (await client.get("/v1/events", params={"surface": "amberflo"})).json()["items"]
    assert len(events) == 5 and all(e["id"].startswith("af-") for e in events)


async def test_bad_records_are_rejected_kept_and_do_not_sink_good_ones(
    af: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    bad = {**R1, "uniqueId": "u-bad", "meterValue": "lots", "customerId": ""}
    r = await af.post("/ingest", json=[R1, bad, {**R1, "extra": 1}])
    assert r.status_code == 400
    assert r.json() == {
        "code": "invalid_input",
        "message": "1 records were ingested, 2 were rejected",
        "ingested": 1,
        "rejected": [
            {
                "index": 1,
                "errors": [
                    {"path": "customerId", "message": "is required and must be a non-empty string"},
                    {"path": "meterValue", "message": "must be a number"},
                ],
            },
            {"index": 2, "errors": [{"path": "extra", "message": "is not a known field"}]},
        ],
    }
    assert await total(client) == (2.5, 1)
    kept = (await client.get("/v1/rejections", params={"surface": "amberflo"})).json()["items"]
    assert [json.loads(k["raw"])["uniqueId"] for k in kept] == ["u-bad", "u-1"]
    assert kept[0]["message"] == "customerId: is required and must be a non-empty string"


CASES_MALFORMED_BODIES = [
    (b"{not json", {"content-type": "application/json"}, 400),
    (b"\x1f\x8bnot gzip", {"content-type": "application/json", "content-encoding": "gzip"}, 400),
    (b"<xml/>", {"content-type": "application/xml"}, 415),
    (b"7", {"content-type": "application/json"}, 400),
]


async def test_malformed_bodies(af: httpx.AsyncClient) -> None:
    for body, headers, status in CASES_MALFORMED_BODIES:
        r = await af.post("/ingest", content=body, headers=headers)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()) >= {"code", "message"}


async def test_ndjson_body(af: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    lines = "\n".join(json.dumps({**R1, "uniqueId": f"n{i}"}) for i in range(3))
    r = await af.post("/ingest", content=lines, headers={"content-type": "application/x-ndjson"})
    assert r.text == "3 records were ingested"


CASES_API_KEY_HEADER_IN_ANY_CASE = ["X-API-KEY", "X-API-Key", "x-api-key", "X-Api-Key"]


async def test_api_key_header_in_any_case(served: Served) -> None:
    for header in CASES_API_KEY_HEADER_IN_ANY_CASE:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post("/ingest", json=R1, headers={header: served.admin_key})
            assert (r.status_code, r.text) == (200, "1 records were ingested")


async def test_missing_bad_and_underscoped_keys(served: Served, client: httpx.AsyncClient) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/ingest", json=R1)
        assert r.status_code == 401
        assert r.json() == {"code": "unauthenticated", "message": "send an API key in the X-API-KEY header"}
        r = await c.post("/ingest", json=R1, headers={"x-api-key": "mk_nope_nope"})
        assert r.status_code == 401
        reader = (await client.post("/v1/keys", json={"name": "r", "scopes": ["read"]})).json()["key"]
        r = await c.post("/ingest", json=R1, headers={"x-api-key": reader})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_replay_of_captured_client_requests(served: Served, client: httpx.AsyncClient) -> None:
    """The exact requests the real client sent (re-keyed), answered as the client needs."""
    transport = httpx.ASGITransport(app=served.app)
    captured = [json.loads(line) for line in WIRE.read_text().splitlines() if line.strip()]
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for req in captured:
            headers = {k: v for k, v in req["headers"].items() if k.lower() not in ("host", "content-length")}
            for name in list(headers):
                if name.lower() == "x-api-key":
                    headers[name] = served.admin_key
            r = await c.request(req["method"], req["path"], content=req["body"].encode(), headers=headers)
            answers.append((r.status_code, r.text if r.headers["content-type"].startswith("text/") else r.json()))
    assert [a[0] for a in answers] == [200] * len(captured)
    assert answers[0][1] == "2 records were ingested"
    assert answers[1][1] == "1 records were ingested"
    assert answers[2][1] == {}
    assert answers[3][1]["customerId"] == "c1" and answers[3][1]["traits"] == {"t": "v"}
    report = answers[4][1]
    assert report["secondsSinceEpochIntervals"] == [1704067200]
    assert report["clientMeters"][0]["group"] == {"groupInfo": {"customerId": "c1"}}
    assert report["clientMeters"][0]["groupValue"] == 3.0  # three records of value 1 on 2024-01-01
    assert answers[5][1] == "1 records were ingested"


async def test_prefix_setting_moves_every_path(database_url: str) -> None:
    from meterd.server.app import create_app
    from meterd.server.settings import Settings
    from meterd.storage.factory import create_store

    settings = Settings(database_url=database_url, amberflo_prefix="/amberflo/")
    app = create_app(settings, store=create_store(database_url))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret  # type: ignore[union-attr]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"x-api-key": key}) as c:
            assert (await c.post("/amberflo/ingest/", json=R1)).text == "1 records were ingested"
            assert (await c.get("/amberflo/customers")).json() == []
            assert (await c.post("/ingest", json=R1)).status_code == 404
