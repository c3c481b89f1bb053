"""Amberflo /customers at the wire: list, get ({} with 200 when unknown), add, update (replace), delete, traits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Served

C1 = {"customerId": "c1", "customerName": "C One", "customerEmail": "one@example.com", "traits": {"plan": "pro"}}


@pytest.fixture
async def af(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-API-KEY": served.admin_key}
    ) as c:
        yield c


async def test_unknown_customer_is_an_empty_object_with_200(af: httpx.AsyncClient) -> None:
    for path in ("/customers/?customerId=nobody", "/customers?customerId=nobody", "/customers/nobody"):
        r = await af.get(path)
        assert (r.status_code, r.json()) == (200, {})


async def test_add_get_list_update_delete(af: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    r = await af.post("/customers/", json=C1, params={"autoCreateCustomerInStripe": "true"})
    assert r.status_code == 200
    created = r.json()
    assert {k: created[k] for k in ("id", "customerId", "customerName", "customerEmail", "enabled", "traits")} == {
        "id": "c1",
        "customerId": "c1",
        "customerName": "C One",
        "customerEmail": "one@example.com",
        "enabled": True,
        "traits": {"plan": "pro"},
    }
    assert created["createTime"] == created["updateTime"] > 0
    assert (await af.get("/customers/", params={"customerId": "c1"})).json() == created
    assert (await af.post("/customers", json=C1)).status_code == 409
    await af.post("/customers", json={"customerId": "c0", "customerName": "Zero"})
    assert [c["customerId"] for c in (await af.get("/customers/")).json()] == ["c0", "c1"]
    # PUT replaces: traits and email not given are dropped, the creation time is kept
    r = await af.put("/customers/", json={"customerId": "c1", "customerName": "C Uno", "enabled": False})
    assert r.status_code == 200
    updated = r.json()
    assert updated["traits"] == {} and "customerEmail" not in updated and updated["enabled"] is False
    assert updated["createTime"] == created["createTime"]
    native = (await client.get("/v1/customers/c1")).json()
    assert (native["name"], native["traits"], native["enabled"]) == ("C Uno", {}, False)
    r = await af.put("/customers/c1", json={"customerName": "C Path", "traits": {"t": "v"}})
    assert r.json()["customerName"] == "C Path" and r.json()["traits"] == {"t": "v"}
    r = await af.delete("/customers/c1")
    assert r.status_code == 200 and r.json()["customerId"] == "c1"
    assert (await af.get("/customers", params={"customerId": "c1"})).json() == {}
    assert (await af.delete("/customers/c1")).status_code == 404


async def test_put_creates_a_missing_customer(af: httpx.AsyncClient) -> None:
    r = await af.put("/customers", json={"customerId": "new", "customerName": "New"})
    assert r.status_code == 200 and r.json()["customerId"] == "new"


CASES_INVALID_CUSTOMERS_ARE_400 = [
    ({"customerName": "x"}, ["customerId"]),
    ({"customerId": "c", "customerName": ""}, ["customerName"]),
    ({"customerId": "c", "customerName": "x", "traits": {"a": {"nested": 1}}}, ["traits.a"]),
    ({"customerId": "c", "customerName": "x", "enabled": "yes"}, ["enabled"]),
    ({"customerId": "c", "customerName": "x", "address": "y"}, ["address"]),
    ([], [""]),
]


async def test_invalid_customers_are_400(af: httpx.AsyncClient) -> None:
    for body, paths in CASES_INVALID_CUSTOMERS_ARE_400:
        r = await af.post("/customers", json=body)
        assert r.status_code == 400
        assert [e["path"] for e in r.json()["errors"]] == paths


async def test_path_and_body_ids_must_agree(af: httpx.AsyncClient) -> None:
    r = await af.put("/customers/a", json={"customerId": "b", "customerName": "x"})
    assert r.status_code == 400


async def test_writes_need_the_admin_scope(served: Served, client: httpx.AsyncClient) -> None:
    reader = (await client.post("/v1/keys", json={"name": "r", "scopes": ["read"]})).json()["key"]
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"x-api-key": reader}) as c:
        assert (await c.get("/customers")).status_code == 200
        assert (await c.post("/customers", json=C1)).status_code == 403
