"""The native API end to end on the default store: ingest outcomes, query, auth."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer


async def test_ingest_then_query(client: httpx.AsyncClient) -> None:
    events = [
        {"id": "a", "meter": "calls", "customer": "acme", "time": "2024-01-01T00:10:00Z", "value": 2},
        {"id": "b", "meter": "calls", "customer": "acme", "time": "2024-01-01T01:10:00Z", "value": 3},
    ]
    r = await client.post("/v1/events", json=events)
    assert r.status_code == 200
    assert r.json()["counts"] == {"accepted": 2, "duplicate": 0, "conflict": 0, "rejected": 0}
    q = {"meter": "calls", "from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z", "window": "day"}
    r = await client.post("/v1/query", json=q)
    assert r.status_code == 200
    assert r.json()["rows"] == [
        {
            "meter": "calls",
            "start": "2024-01-01T00:00:00.000Z",
            "end": "2024-01-02T00:00:00.000Z",
            "group": {},
            "value": 5.0,
        }
    ]


def test_live_server_requires_a_key(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/v1/meters")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = httpx.get(f"{live_server.url}/v1/meters", headers={"authorization": f"Bearer {live_server.admin_key}"})
    assert r.status_code == 200
