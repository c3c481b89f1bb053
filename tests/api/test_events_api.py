"""POST/GET /v1/events, void and amend at the wire: exact statuses, bodies, limits and problem+json."""

from __future__ import annotations

import gzip
import json

import httpx

from tests.conftest import Served

E1 = {"id": "e1", "meter": "calls", "customer": "acme", "time": "2024-01-01T00:00:00Z", "value": 2}


async def test_batch_results_in_request_order(client: httpx.AsyncClient) -> None:
    batch = [E1, E1, {**E1, "value": 9}, {"meter": "calls"}, {"meter": "calls", "customer": "b", "time": 1}]
    r = await client.post("/v1/events", json=batch)
    assert r.status_code == 200
    body = r.json()
    assert [x["outcome"] for x in body["results"]] == ["accepted", "duplicate", "conflict", "rejected", "accepted"]
    assert body["results"][3] == {
        "index": 3,
        "id": None,
        "outcome": "rejected",
        "errors": [{"path": "customer", "message": "is required and must be a non-empty string"}],
    }
    assert body["counts"] == {"accepted": 2, "duplicate": 1, "conflict": 1, "rejected": 1}


async def test_resend_is_duplicate_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=E1)
    r = await client.post("/v1/events", json=E1)
    assert r.json()["results"] == [{"index": 0, "id": "e1", "outcome": "duplicate"}]
    listed = (await client.get("/v1/events")).json()
    assert [e["id"] for e in listed["items"]] == ["e1"]


async def test_record_without_id_is_deduplicated_on_content(client: httpx.AsyncClient) -> None:
    record = {k: v for k, v in E1.items() if k != "id"}
    first = (await client.post("/v1/events", json=record)).json()["results"][0]
    second = (await client.post("/v1/events", json=record)).json()["results"][0]
    assert first["outcome"] == "accepted" and second == {**first, "outcome": "duplicate"}


async def test_ndjson_and_gzip_bodies(client: httpx.AsyncClient) -> None:
    lines = "\n".join(json.dumps({**E1, "id": f"n{i}"}) for i in range(3)).encode()
    r = await client.post("/v1/events", content=lines, headers={"content-type": "application/x-ndjson"})
    assert r.json()["counts"]["accepted"] == 3
    r = await client.post(
        "/v1/events",
        content=gzip.compress(json.dumps([{**E1, "id": "g"}]).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.json()["counts"]["accepted"] == 1


async def test_malformed_and_unsupported_bodies(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/v1/events", content=b"x", headers={"content-type": "application/xml"})
    assert r.status_code == 415
    r = await client.post("/v1/events", content=b"x", headers={"content-encoding": "br"})
    assert r.status_code == 415
    r = await client.post("/v1/events", content=b"not gzip", headers={"content-encoding": "gzip"})
    assert r.status_code == 422


async def test_limits_answer_413(served: Served, client: httpx.AsyncClient) -> None:
    too_many = [{**E1, "id": f"x{i}"} for i in range(10_001)]
    r = await client.post("/v1/events", json=too_many)
    assert r.status_code == 413
    assert r.json()["type"] == "/problems/payload_too_large"
    bomb = gzip.compress(b"[" + b" " * (11 * 1024 * 1024) + b"]")
    r = await client.post("/v1/events", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413
    assert (await client.get("/v1/events")).json()["items"] == []


async def test_auth_401_versus_403(served: Served, client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/events", json=E1, headers={"authorization": "Bearer mk_nope_nope"})
    assert r.status_code == 401
    r = await client.post("/v1/events", json=E1, headers={"authorization": ""})
    assert r.status_code == 401
    created = (await client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]})).json()
    reader = {"authorization": f"Bearer {created['key']}"}
    r = await client.post("/v1/events", json=E1, headers=reader)
    assert r.status_code == 403 and r.json()["detail"] == "the API key lacks the 'ingest' scope"
    assert (await client.get("/v1/events", headers=reader)).status_code == 200
    await client.delete(f"/v1/keys/{created['id']}")
    assert (await client.get("/v1/events", headers=reader)).status_code == 401


async def test_listing_filters_and_cursor_pages(client: httpx.AsyncClient) -> None:
    batch = [
        {**E1, "id": f"p{i}", "customer": "acme" if i % 2 else "beta", "time": 1_700_000_000 + i} for i in range(7)
    ]
    await client.post("/v1/events", json=batch)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "customer": "acme"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/events", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p1", "p3", "p5"]
    r = await client.get("/v1/events", params={"from": "soon"})
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "from"


async def test_void_and_amend_are_audited_and_change_totals(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=[E1, {**E1, "id": "e2", "value": 5}])
    query = {"meter": "calls", "from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z"}

    async def total() -> float:
        return float((await client.post("/v1/query", json=query)).json()["rows"][0]["value"])

    assert await total() == 7
    r = await client.post("/v1/events/e1/void", json={"reason": "test traffic"})
    assert r.status_code == 200 and r.json()["event"]["status"] == "voided"
    assert (await client.post("/v1/events/e1/void", json={"reason": "again"})).status_code == 409
    assert await total() == 5
    r = await client.post("/v1/events/e2/amend", json={"reason": "wrong value", "event": {"value": 1}})
    assert r.status_code == 200
    replacement = r.json()["event"]
    assert replacement["value"] == 1 and replacement["replaces"] == "e2"
    assert await total() == 1
    trail = (await client.get("/v1/events/e2")).json()
    assert trail["status"] == "voided" and trail["replaced_by"] == replacement["id"]
    assert [c["action"] for c in trail["corrections"]] == ["amend"]
    assert trail["corrections"][0]["reason"] == "wrong value"
    assert (await client.post("/v1/events/nope/void", json={"reason": "x"})).status_code == 404
    r = await client.post("/v1/events/e2/amend", json={"reason": "x", "event": {"value": "lots"}})
    assert r.status_code in (409, 422)


async def test_rejections_are_kept_listed_grouped_and_cleared(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=[{"meter": "m", "customer": "c", "value": "x"}] * 2 + [E1, {**E1, "value": 3}])
    items = (await client.get("/v1/rejections")).json()["items"]
    assert sorted(i["code"] for i in items) == ["conflict", "invalid_input", "invalid_input"]
    invalid = [i for i in items if i["code"] == "invalid_input"]
    assert json.loads(invalid[0]["raw"]) == {"meter": "m", "customer": "c", "value": "x"}
    status = (await client.get("/v1/ingest/status", params={"from": "2000-01-01T00:00:00Z"})).json()
    groups = {g["message"]: g["count"] for g in status["rejections"]}
    assert groups["value: must be a number"] == 2
    counts = {(c["meter"], c["outcome"]): c["count"] for c in status["counts"]}
    assert counts[("calls", "accepted")] == 1 and counts[("calls", "conflict")] == 1
    ids = ",".join(str(i["id"]) for i in items)
    assert (await client.delete(f"/v1/rejections/{ids}")).json() == {"deleted": 3}
    assert (await client.get("/v1/rejections")).json()["items"] == []
    assert (await client.delete("/v1/rejections/abc")).status_code == 422
