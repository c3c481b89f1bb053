"""Contract: tenants, API keys, customers, meters and surface objects behave the same in every Store."""

from __future__ import annotations

import pytest

from meterd.core.errors import NotFound
from meterd.core.models import Aggregation, ApiKey, Customer, Meter, Scope, Tenant, UsageEvent
from meterd.storage.base import GLOBAL, Store


async def test_tenants_create_is_idempotent_and_listed_by_id(store: Store) -> None:
    assert await store.create_tenant(Tenant("b", "Bee", 2)) == Tenant("b", "Bee", 2)
    await store.create_tenant(Tenant("a", "Ay", 1))
    assert await store.create_tenant(Tenant("b", "Other", 9)) == Tenant("b", "Bee", 2)
    assert await store.list_tenants() == [Tenant("a", "Ay", 1), Tenant("b", "Bee", 2)]


def _key(key_id: str, tenant: str, created: int, *scopes: Scope) -> ApiKey:
    return ApiKey(key_id, tenant, f"name-{key_id}", frozenset(scopes), f"hash-{key_id}", created)


async def test_keys_add_get_list_revoke_touch(store: Store) -> None:
    k1 = _key("k1", "t1", 20, Scope.INGEST, Scope.READ)
    k2 = _key("k2", "t1", 10, Scope.ADMIN)
    k3 = _key("k3", "t2", 5, Scope.READ)
    for k in (k1, k2, k3):
        await store.add_key(k)
    assert await store.get_key("k1") == k1
    assert await store.get_key("k3") == k3
    assert await store.get_key("nope") is None
    assert await store.list_keys("t1") == [k2, k1]
    assert await store.list_keys("t2") == [k3]
    with pytest.raises(NotFound):
        await store.revoke_key("t2", "k1", 99)
    revoked = await store.revoke_key("t1", "k1", 99)
    assert revoked.revoked_at == 99
    assert (await store.revoke_key("t1", "k1", 120)).revoked_at == 99
    await store.touch_key("k2", 77)
    await store.touch_key("missing", 77)
    assert (await store.get_key("k2")).last_used_at == 77  # type: ignore[union-attr]
    assert (await store.get_key("k1")) == ApiKey(*[getattr(k1, f) for f in ("id", "tenant", "name", "scopes",
                                                                              "secret_hash", "created_at")],
                                                   last_used_at=None, revoked_at=99)


async def test_keys_with_equal_creation_time_keep_insertion_order(store: Store) -> None:
    for key_id in ("z", "a", "m"):
        await store.add_key(_key(key_id, "t", 1, Scope.READ))
    assert [k.id for k in await store.list_keys("t")] == ["z", "a", "m"]


async def test_customers_put_get_list_delete(store: Store) -> None:
    c = Customer("acme", "Acme", "ops@acme.test", {"plan": "pro", "seats": 5, "vip": True, "x": None, "r": 1.5},
                 True, 10, 10)
    assert await store.put_customer("t", c) == c
    replaced = await store.put_customer("t", Customer("acme", "Acme 2", None, {}, False, 50, 60))
    assert replaced == Customer("acme", "Acme 2", None, {}, False, 10, 60)
    assert await store.get_customer("t", "acme") == replaced
    assert await store.get_customer("other", "acme") is None
    for cid in ("c3", "c1", "c2"):
        await store.put_customer("t", Customer(cid, created_at=1, updated_at=1))
    page = await store.list_customers("t", limit=2)
    assert [c.id for c in page.items] == ["acme", "c1"]
    assert page.next_cursor == "c1"
    page2 = await store.list_customers("t", limit=2, cursor=page.next_cursor)
    assert [c.id for c in page2.items] == ["c2", "c3"]
    assert page2.next_cursor is None
    assert (await store.list_customers("other")).items == []
    assert await store.delete_customer("t", "c2") is True
    assert await store.delete_customer("t", "c2") is False
    assert [c.id for c in (await store.list_customers("t")).items] == ["acme", "c1", "c3"]


async def test_meters_put_get_list_delete(store: Store) -> None:
    m = Meter("tokens", Aggregation.MAX, "tok", "tokens used", None, {"aws": {"code": "p1"}, "n": [1, 2]}, 7)
    assert await store.put_meter("t", m) == m
    m2 = Meter("tokens", Aggregation.UNIQUE_COUNT, None, None, "user", {}, 99)
    assert await store.put_meter("t", m2) == Meter("tokens", Aggregation.UNIQUE_COUNT, None, None, "user", {}, 7)
    await store.put_meter("t", Meter("alpha", created_at=1))
    assert [x.key for x in await store.list_meters("t")] == ["alpha", "tokens"]
    assert await store.get_meter("t", "tokens") == Meter("tokens", Aggregation.UNIQUE_COUNT, None, None, "user", {}, 7)
    assert await store.get_meter("u", "tokens") is None
    assert await store.delete_meter("t", "alpha") is True
    assert await store.delete_meter("t", "alpha") is False
    assert [x.key for x in await store.list_meters("t")] == ["tokens"]


async def test_unknown_meters_are_created_with_sum_and_recreated_after_delete(store: Store) -> None:
    await store.ingest("t", [UsageEvent("e1", "calls", "c", 1000, 1.0)], now=500)
    assert await store.get_meter("t", "calls") == Meter("calls", Aggregation.SUM, created_at=500)
    await store.put_meter("t", Meter("gauge", Aggregation.MAX, created_at=1))
    await store.ingest("t", [UsageEvent("e2", "gauge", "c", 1000, 1.0)], now=600)
    assert (await store.get_meter("t", "gauge")).aggregation is Aggregation.MAX  # type: ignore[union-attr]
    assert await store.delete_meter("t", "calls")
    await store.ingest("t", [UsageEvent("e1", "calls", "c", 1000, 1.0)], now=700)  # duplicate: no new meter
    assert await store.get_meter("t", "calls") is None
    await store.ingest("t", [UsageEvent("e3", "calls", "c", 1000, 1.0)], now=800)
    assert await store.get_meter("t", "calls") == Meter("calls", Aggregation.SUM, created_at=800)
    assert await store.get_meter("other", "calls") is None


async def test_objects_put_get_list_delete(store: Store) -> None:
    body = {"a": 1, "nested": {"list": [1, "x", None, True], "f": 2.5}}
    assert await store.put_object("t", "token", "k1", body) is True
    body["a"] = 2  # the store keeps its own copy
    assert await store.get_object("t", "token", "k1") == {"a": 1, "nested": {"list": [1, "x", None, True], "f": 2.5}}
    assert await store.put_object("t", "token", "k1", {"v": 2}, only_if_absent=True) is False
    assert await store.get_object("t", "token", "k1") == {"a": 1, "nested": {"list": [1, "x", None, True], "f": 2.5}}
    assert await store.put_object("t", "token", "k1", {"v": 3}) is True
    assert await store.put_object("t", "token", "k2", {"v": 4}, only_if_absent=True) is True
    await store.put_object("t", "token", "j1", {"v": 5})
    await store.put_object("t", "other", "k9", {"v": 6})
    await store.put_object(GLOBAL, "token", "k1", {"global": True})
    assert await store.list_objects("t", "token", "k") == [("k1", {"v": 3}), ("k2", {"v": 4})]
    assert [k for k, _ in await store.list_objects("t", "token")] == ["j1", "k1", "k2"]
    assert await store.list_objects("t", "token", "zz") == []
    assert await store.get_object(GLOBAL, "token", "k1") == {"global": True}
    assert await store.get_object("t", "nope", "k1") is None
    got = await store.get_object("t", "token", "k1")
    assert got is not None
    got["v"] = 99
    assert await store.get_object("t", "token", "k1") == {"v": 3}
    assert await store.delete_object("t", "token", "k1") is True
    assert await store.delete_object("t", "token", "k1") is False
    assert await store.get_object("t", "token", "k1") is None
    assert await store.get_object(GLOBAL, "token", "k1") == {"global": True}


async def test_ping(store: Store) -> None:
    await store.ping()
