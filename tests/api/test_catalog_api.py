"""Customers, meters and keys through the native API; operations endpoints; OpenAPI."""

from __future__ import annotations

import httpx


async def test_customer_crud(client: httpx.AsyncClient) -> None:
    body = {"id": "acme", "name": "Acme", "email": "ops@acme.test", "traits": {"plan": "pro", "seats": 5}}
    r = await client.post("/v1/customers", json=body)
    assert r.status_code == 201 and r.json()["traits"] == {"plan": "pro", "seats": 5}
    assert (await client.post("/v1/customers", json=body)).status_code == 409
    r = await client.put("/v1/customers/acme", json={"name": "Acme Inc", "enabled": False})
    assert r.json()["name"] == "Acme Inc" and r.json()["enabled"] is False and r.json()["traits"] == {}
    assert (await client.get("/v1/customers/acme")).json()["name"] == "Acme Inc"
    assert [c["id"] for c in (await client.get("/v1/customers")).json()["items"]] == ["acme"]
    r = await client.post("/v1/customers", json={"id": "x", "traits": {"nested": {"a": 1}}})
    assert r.status_code == 422 and r.json()["errors"][0]["path"].startswith("traits.nested")
    assert (await client.delete("/v1/customers/acme")).status_code == 204
    assert (await client.get("/v1/customers/acme")).status_code == 404


async def test_meters_auto_created_and_defined(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json={"meter": "calls", "customer": "c"})
    meters = (await client.get("/v1/meters")).json()["items"]
    assert [(m["key"], m["aggregation"]) for m in meters] == [("calls", "sum")]
    r = await client.post(
        "/v1/meters", json={"key": "users", "aggregation": "unique_count", "unique_dimension": "user"}
    )
    assert r.status_code == 201
    assert (await client.post("/v1/meters", json={"key": "users"})).status_code == 409
    assert (await client.post("/v1/meters", json={"key": "bad key"})).status_code == 422
    assert (await client.post("/v1/meters", json={"key": "k", "aggregation": "median"})).status_code == 422
    r = await client.put("/v1/meters/calls", json={"aggregation": "max", "unit": "requests"})
    assert r.json()["aggregation"] == "max"
    assert (await client.delete("/v1/meters/users")).status_code == 204
    assert (await client.get("/v1/meters/users")).status_code == 404


async def test_keys_are_shown_once_and_listed_without_secrets(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/keys", json={"name": "ci", "scopes": ["ingest"]})).json()
    assert created["key"].startswith("mk_") and created["scopes"] == ["ingest"]
    listed = (await client.get("/v1/keys")).json()["items"]
    assert all("key" not in k for k in listed) and {k["name"] for k in listed} == {"admin", "ci"}
    assert (await client.post("/v1/keys", json={"name": "none", "scopes": []})).status_code == 422
    assert (await client.delete("/v1/keys/unknown")).status_code == 404


async def test_operations_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    await client.post("/v1/events", json={"meter": "calls", "customer": "c"})
    text = (await client.get("/metrics")).text
    assert 'meterd_ingest_records_total{surface="native",outcome="accepted"} 1' in text
    assert 'meterd_request_duration_seconds_count{method="POST",route="/v1/events",status="200"} 1' in text
    assert 'meterd_store_duration_seconds_count{operation="ingest"} 1' in text
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/query" in spec["paths"] and "/v1/events" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
