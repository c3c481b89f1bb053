"""Products, entitlements over time, registration tokens, sealing and the signing-key store."""

from __future__ import annotations

import pytest

from meterd.core.errors import InvalidInput, StorageError
from meterd.core.marketplace import (
    LICENSE_ARN_RE,
    MarketplaceError,
    active,
    end_entitlement,
    entitlement_id_of,
    make_entitlement,
    make_product,
)
from meterd.core.registration import ExpiredToken, InvalidToken, check_redeemable, check_ttl, issue, token_hash
from meterd.service.sealing import Sealer, SealerSource, server_secret
from meterd.service.signing import SigningKeys
from meterd.storage.memory import MemoryStore


def test_products_name_their_meters() -> None:
    product = make_product("prod-1", "P", [("users", None, None), ("gb", "storage", "GiB")], 5)
    assert [(d.name, d.meter) for d in product.dimensions] == [("users", "prod-1:users"), ("gb", "storage")]
    assert product.dimension("gb") is not None and product.dimension("GB") is None
    assert type(product).from_json(product.as_json()) == product
    with pytest.raises(InvalidInput):
        make_product("prod 1", None, [("users", None, None)], 0)
    with pytest.raises(InvalidInput):
        make_product("p", None, [("", None, None)], 0)


def test_entitlements_over_time() -> None:
    first = make_entitlement("l-1", "acme", "p", 100, 200, "agmt-1", 0)
    second = make_entitlement("l-2", "acme", "p", 150, None, "agmt-2", 0)
    assert LICENSE_ARN_RE.match(first.license_arn) and entitlement_id_of(first.license_arn) == "l-1"
    assert entitlement_id_of("arn:aws:license-manager::123:license:l-1") is None
    assert active([first, second], 99) is None
    assert active([first, second], 120) == first
    assert active([first, second], 160) == second  # the later start wins where they overlap
    assert active([first], 200) is None  # the end is exclusive
    assert end_entitlement(second, 300).end == 300
    assert end_entitlement(first, 300).end == 200  # never later than its own end
    with pytest.raises(InvalidInput):
        end_entitlement(first, 50)
    with pytest.raises(InvalidInput):
        make_entitlement("l-3", "acme", "p", 100, 100, "a", 0)
    assert MarketplaceError("InvalidUsageAllocationsException", "x").code == "invalid_usage_allocations"


def test_registration_tokens() -> None:
    record = issue("secret-token", "acme", "p", 1000, 60_000, {"entitlement": "l-1"})
    assert record.token_hash == token_hash("secret-token") != "secret-token"
    assert check_redeemable(record, 60_999, True) == record
    with pytest.raises(ExpiredToken):
        check_redeemable(record, 61_000, True)
    with pytest.raises(ExpiredToken, match="used already"):
        check_redeemable(record, 2000, False)
    with pytest.raises(InvalidToken):
        check_redeemable(None, 2000, True)
    for ttl in (999, 31 * 86_400_000):
        with pytest.raises(InvalidInput):
            check_ttl(ttl)


async def test_sealing_and_the_stored_secret_key() -> None:
    sealed = Sealer("key one").seal("AWS secret")
    assert "AWS secret" not in sealed
    assert Sealer("key one").unseal(sealed) == "AWS secret"
    with pytest.raises(StorageError, match="METERD_SECRET_KEY"):
        Sealer("key two").unseal(sealed)
    store = MemoryStore()
    generated = await server_secret(store, None)
    assert await server_secret(store, None) == generated and len(generated) >= 32
    assert await server_secret(store, "configured") == "configured"


async def test_signing_keys_rotate() -> None:
    store = MemoryStore()
    clock = iter(range(1000, 2000)).__next__
    keys = SigningKeys(store, SealerSource(store, "k"), clock)
    assert [k.version for k in await keys.versions()] == [1]
    assert await keys.get(2) is None
    rotated = await keys.rotate()
    versions = await keys.versions()
    assert rotated.version == 2 and [(k.version, k.rotated_at is None) for k in versions] == [(1, False), (2, True)]
    assert "sealed" not in str((await keys.jwks())["keys"])
    assert (await keys.sign(versions[0], {"a": 1})).count(".") == 2
