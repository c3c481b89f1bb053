"""The marketplace through the native API: access keys, products and meters, entitlements, tokens, signing keys."""

from __future__ import annotations

import httpx

from tests.conftest import Served


async def test_products_create_meters(client: httpx.AsyncClient) -> None:
    body = {
        "code": "prod-a",
        "name": "A",
        "dimensions": [{"name": "users"}, {"name": "gb", "meter": "storage", "description": "GiB-hours"}],
    }
    r = await client.post("/v1/aws/products", json=body)
    assert r.status_code == 201
    assert r.json()["dimensions"] == [
        {"name": "users", "meter": "prod-a:users", "description": None},
        {"name": "gb", "meter": "storage", "description": "GiB-hours"},
    ]
    meters = {m["key"]: m for m in (await client.get("/v1/meters")).json()["items"]}
    assert meters["prod-a:users"]["properties"] == {"aws_product_code": "prod-a", "aws_dimension": "users"}
    assert meters["storage"]["aggregation"] == "sum"
    assert (await client.get("/v1/aws/products/prod-a")).json()["name"] == "A"
    r = await client.put("/v1/aws/products/prod-a", json={"dimensions": [{"name": "users"}]})
    assert r.status_code == 200 and [d["name"] for d in r.json()["dimensions"]] == ["users"]
    assert [p["code"] for p in (await client.get("/v1/aws/products")).json()["items"]] == ["prod-a"]
    assert (await client.delete("/v1/aws/products/prod-a")).status_code == 204
    assert (await client.get("/v1/aws/products/prod-a")).status_code == 404
    assert (await client.delete("/v1/aws/products/prod-a")).status_code == 404


async def test_product_validation(client: httpx.AsyncClient) -> None:
    for body, path in (
        ({"code": "bad code", "dimensions": [{"name": "u"}]}, "code"),
        ({"code": "p", "dimensions": [{"name": "u"}, {"name": "u"}]}, "dimensions[1].name"),
        ({"code": "p", "dimensions": []}, "dimensions"),
    ):
        r = await client.post("/v1/aws/products", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert path in [e["path"] for e in r.json()["errors"]]


async def test_entitlements_and_tokens(client: httpx.AsyncClient) -> None:
    await client.post("/v1/aws/products", json={"code": "p", "dimensions": [{"name": "u"}]})
    r = await client.post("/v1/aws/entitlements", json={"customer": "acme", "product": "missing"})
    assert r.status_code == 404
    r = await client.post(
        "/v1/aws/entitlements",
        json={"customer": "acme", "product": "p", "start": "2020-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"},
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/aws/entitlements",
        json={"customer": "acme", "product": "p", "start": "2020-01-01T00:00:00Z", "aws_account_id": "123"},
    )
    assert r.status_code == 201
    granted = r.json()
    assert granted["start"] == "2020-01-01T00:00:00.000Z" and granted["end"] is None and granted["active"] is True
    assert granted["license_arn"] == f"arn:aws:license-manager::000000000000:license:{granted['id']}"
    customer = (await client.get("/v1/customers/acme")).json()
    assert customer["traits"] == {"aws_account_id": "123"}
    clash = await client.post("/v1/aws/entitlements", json={"customer": "acme", "product": "p", "aws_account_id": "9"})
    assert clash.status_code == 409
    taken = await client.post(
        "/v1/aws/entitlements", json={"customer": "other", "product": "p", "aws_account_id": "123"}
    )
    assert taken.status_code == 409
    r = await client.post("/v1/aws/registration-tokens", json={"customer": "acme", "product": "p", "ttl_seconds": 60})
    assert r.status_code == 201 and len(r.json()["token"]) > 40 and r.json()["entitlement"] == granted["id"]
    ended = await client.post(f"/v1/aws/entitlements/{granted['id']}/end", json={"at": "2021-01-01T00:00:00Z"})
    assert ended.json()["end"] == "2021-01-01T00:00:00.000Z" and ended.json()["active"] is False
    early = await client.post(f"/v1/aws/entitlements/{granted['id']}/end", json={"at": "2019-01-01T00:00:00Z"})
    assert early.status_code == 422
    assert (await client.post("/v1/aws/entitlements/l-none/end", json={})).status_code == 404
    listed = (await client.get("/v1/aws/entitlements", params={"customer": "acme"})).json()["items"]
    assert [e["id"] for e in listed] == [granted["id"]]
    r = await client.post("/v1/aws/registration-tokens", json={"customer": "acme", "product": "p"})
    assert r.status_code == 409


async def test_access_keys_need_admin(client: httpx.AsyncClient, served: Served) -> None:
    r = await client.post("/v1/aws/access-keys", json={"name": "box", "customer": "acme"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"access_key_id", "secret_access_key", "name", "customer", "created_at", "revoked_at"}
    stored = await served.store.get_object("*", "aws-access-key", created["access_key_id"])
    assert stored is not None and created["secret_access_key"] not in str(stored)  # sealed, not in clear
    r = await client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]})
    reader = {"authorization": f"Bearer {r.json()['key']}"}
    assert (await client.post("/v1/aws/access-keys", json={"name": "x"}, headers=reader)).status_code == 403
    assert (await client.get("/v1/aws/access-keys", headers=reader)).status_code == 403
    assert (await client.get("/v1/aws/products", headers=reader)).status_code == 200
    assert (await client.post("/v1/aws/signing-keys/rotate", headers=reader)).status_code == 403
    assert (await client.delete("/v1/aws/access-keys/AKIANOTAKEY")).status_code == 404
    r = await client.post("/v1/aws/access-keys", json={"name": "x", "customer": "bad customer"})
    assert r.status_code == 422


async def test_signing_keys_and_jwks(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/aws/signing-keys")).json()["items"]
    assert [k["version"] for k in listed] == [1]
    assert listed[0]["public_jwk"]["kty"] == "EC" and "d" not in listed[0]["public_jwk"]
    jwks = (await client.get("/aws/.well-known/jwks.json", headers={"authorization": ""})).json()
    assert jwks == {"keys": [listed[0]["public_jwk"]]}
