"""MeterUsage through the real boto3 client: hourly dedup, quantities, allocations, time bounds, entitlement."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.surfaces.aws.conftest import PRODUCT, Aws, fails, hour_start


def _window(t: float) -> dict[str, float]:
    return {"from": hour_start(t) - 86_400, "to": t + 86_400}


def test_meter_usage_records_once_per_hour_and_caller(aws: Aws) -> None:
    client = aws.client("acme")
    now = time.time()
    early = max(hour_start(now) + 1, now - 1)
    first = client.meter_usage(ProductCode=PRODUCT, Timestamp=early, UsageDimension="users", UsageQuantity=17)
    record_id = first["MeteringRecordId"]
    assert str(uuid.UUID(record_id)) == record_id
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == first["ResponseMetadata"]["RequestId"]
    # identical after rounding down to the hour, quantity compared by value: the same record
    again = client.meter_usage(
        ProductCode=PRODUCT, Timestamp=now, UsageDimension="users", UsageQuantityAsDecimal="17.00"
    )
    assert again["MeteringRecordId"] == record_id
    fails(
        client.meter_usage,
        "DuplicateRequestException",
        ProductCode=PRODUCT,
        Timestamp=now,
        UsageDimension="users",
        UsageQuantity=18,
    )
    # another dimension, and the previous hour, are other records
    other = client.meter_usage(ProductCode=PRODUCT, Timestamp=now, UsageDimension="api_calls", UsageQuantity=4)
    earlier = client.meter_usage(ProductCode=PRODUCT, Timestamp=now - 3600, UsageDimension="users", UsageQuantity=2)
    assert len({record_id, other["MeteringRecordId"], earlier["MeteringRecordId"]}) == 3
    # a second metering source (another key of the same customer) meters the same hour separately
    aws.access_key("acme-2", "acme")
    second = aws.client("acme-2").meter_usage(
        ProductCode=PRODUCT, Timestamp=now, UsageDimension="users", UsageQuantity=1
    )
    assert second["MeteringRecordId"] != record_id
    rows = aws.query(meters=[f"{PRODUCT}:users", f"{PRODUCT}:api_calls"], group_by=["customer"], **_window(now))
    totals = {r["meter"]: r["value"] for r in rows}
    assert totals == {f"{PRODUCT}:users": 17 + 2 + 1, f"{PRODUCT}:api_calls": 4}
    assert {r["group"]["customer"] for r in rows} == {"acme"}


def test_client_token_idempotency(aws: Aws) -> None:
    client = aws.client("acme")
    now = time.time()
    params = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "api_calls", "UsageQuantityAsDecimal": "2.5"}
    first = client.meter_usage(ClientToken="token-1", **params)
    assert client.meter_usage(ClientToken="token-1", **params)["MeteringRecordId"] == first["MeteringRecordId"]
    changed = {**params, "UsageDimension": "users"}
    fails(client.meter_usage, "IdempotencyConflictException", ClientToken="token-1", **changed)
    # the token of another caller is another token
    aws.access_key("acme-2", "acme")
    assert aws.client("acme-2").meter_usage(ClientToken="token-1", **changed)["MeteringRecordId"]


def test_quantity_rules(aws: Aws) -> None:
    client = aws.client("acme", validate=False)
    now = time.time()
    base = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users"}
    both = fails(client.meter_usage, "ValidationException", UsageQuantity=1, UsageQuantityAsDecimal="1", **base)
    assert "cannot both be specified" in both["Error"]["Message"]
    for bad in ("01", "1.", "1.1234567", "-1", "12345678901", "1e3", ""):
        fails(client.meter_usage, "ValidationException", UsageQuantityAsDecimal=bad, **base)
    fails(client.meter_usage, "ValidationException", UsageQuantity=2_147_483_648, **base)
    fails(client.meter_usage, "ValidationException", UsageQuantity=-1, **base)
    fails(client.meter_usage, "ValidationException", UsageQuantity="5", **base)
    fails(client.meter_usage, "ValidationException", ProductCode=PRODUCT, UsageDimension="users")
    fails(client.meter_usage, "ValidationException", ProductCode="bad code!", Timestamp=now, UsageDimension="users")
    fails(client.meter_usage, "ValidationException", ProductCode=PRODUCT, Timestamp=now, UsageDimension="x" * 256)
    fails(client.meter_usage, "ValidationException", ClientToken="t" * 65, UsageQuantity=1, **base)
    # no quantity means 0; a decimal quantity keeps its fraction
    assert client.meter_usage(**base)["MeteringRecordId"]
    client.meter_usage(ProductCode=PRODUCT, Timestamp=now, UsageDimension="api_calls", UsageQuantityAsDecimal="0.125")
    rows = aws.query(meters=[f"{PRODUCT}:users", f"{PRODUCT}:api_calls"], **_window(now))
    assert {r["meter"]: r["value"] for r in rows} == {f"{PRODUCT}:users": 0.0, f"{PRODUCT}:api_calls": 0.125}


def test_allocations_land_as_tagged_events(aws: Aws) -> None:
    client = aws.client("acme")
    now = time.time()
    allocations = [
        {"AllocatedUsageQuantity": 3, "Tags": [{"Key": "team", "Value": "red"}, {"Key": "env", "Value": "prod"}]},
        {"AllocatedUsageQuantity": 5, "Tags": [{"Key": "team", "Value": "blue"}]},
        {"AllocatedUsageQuantity": 2},
    ]
    params = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantity": 10}
    first = client.meter_usage(UsageAllocations=allocations, **params)
    # the same allocations in another order are the same record
    again = client.meter_usage(UsageAllocations=list(reversed(allocations)), **params)
    assert again["MeteringRecordId"] == first["MeteringRecordId"]
    moved = [
        dict(allocations[0], AllocatedUsageQuantity=4),
        dict(allocations[1], AllocatedUsageQuantity=4),
        allocations[2],
    ]
    fails(client.meter_usage, "DuplicateRequestException", UsageAllocations=moved, **params)
    rows = aws.query(meter=f"{PRODUCT}:users", group_by=["customer", "team", "env"], **_window(now))
    got = {(r["group"]["customer"], r["group"]["team"], r["group"]["env"]): r["value"] for r in rows}
    assert got == {("acme", None, None): 2.0, ("acme", "blue", None): 5.0, ("acme", "red", "prod"): 3.0}


def test_allocation_rules(aws: Aws) -> None:
    client = aws.client("acme", validate=False)
    now = time.time()
    whole = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantity": 4}
    decimal = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantityAsDecimal": "4"}
    tag = [{"Key": "k", "Value": "v"}]
    code = "InvalidUsageAllocationsException"
    message = fails(client.meter_usage, code, UsageAllocations=[{"AllocatedUsageQuantity": 3, "Tags": tag}], **whole)
    assert "sum to 3, not the quantity 4" in message["Error"]["Message"]
    fails(client.meter_usage, code, UsageAllocations=[{"AllocatedUsageQuantityAsDecimal": "4", "Tags": tag}], **whole)
    fails(client.meter_usage, code, UsageAllocations=[{"AllocatedUsageQuantity": 4, "Tags": tag}], **decimal)
    fails(
        client.meter_usage,
        code,
        UsageAllocations=[{"AllocatedUsageQuantity": 2, "Tags": tag}, {"AllocatedUsageQuantity": 2, "Tags": tag}],
        **whole,
    )
    fails(
        client.meter_usage,
        code,
        UsageAllocations=[{"AllocatedUsageQuantity": 2, "AllocatedUsageQuantityAsDecimal": "2", "Tags": tag}],
        **whole,
    )
    fails(client.meter_usage, code, UsageAllocations=[{"Tags": tag}], **whole)
    fails(client.meter_usage, code, UsageAllocations=[], **whole)
    six = [{"Key": f"k{i}", "Value": "v"} for i in range(6)]
    fails(
        client.meter_usage,
        "InvalidTagException",
        UsageAllocations=[{"AllocatedUsageQuantity": 4, "Tags": six}],
        **whole,
    )
    for bad in (
        {"Key": "a|b", "Value": "v"},
        {"Key": "k" * 101, "Value": "v"},
        {"Key": "k", "Value": "v" * 257},
        {"Key": "k", "Value": ""},
        {"Key": "k"},
    ):
        fails(
            client.meter_usage,
            "InvalidTagException",
            UsageAllocations=[{"AllocatedUsageQuantity": 4, "Tags": [bad]}],
            **whole,
        )
    fails(
        client.meter_usage,
        "InvalidTagException",
        UsageAllocations=[
            {"AllocatedUsageQuantity": 4, "Tags": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}
        ],
        **whole,
    )
    # five tags, decimal allocations summing exactly: accepted
    five = [{"Key": f"k{i}", "Value": "v =.:/@+-_"} for i in range(5)]
    ok = client.meter_usage(
        UsageAllocations=[
            {"AllocatedUsageQuantityAsDecimal": "1.25", "Tags": five},
            {"AllocatedUsageQuantityAsDecimal": "2.75"},
        ],
        **decimal,
    )
    assert ok["MeteringRecordId"]


def test_time_bounds(aws: Aws) -> None:
    client = aws.client("acme")
    now = time.time()
    base = {"ProductCode": PRODUCT, "UsageDimension": "users", "UsageQuantity": 1}
    late = fails(client.meter_usage, "TimestampOutOfBoundsException", Timestamp=now - 6 * 3600 - 60, **base)
    assert "6 hours" in late["Error"]["Message"]
    fails(client.meter_usage, "TimestampOutOfBoundsException", Timestamp=now + 3600, **base)
    assert client.meter_usage(Timestamp=now - 5 * 3600, **base)["MeteringRecordId"]


def test_product_dimension_and_entitlement(aws: Aws) -> None:
    now = time.time()
    client = aws.client("acme")
    fails(
        client.meter_usage,
        "InvalidProductCodeException",
        ProductCode="prod-unknown",
        Timestamp=now,
        UsageDimension="users",
        UsageQuantity=1,
    )
    fails(
        client.meter_usage,
        "InvalidUsageDimensionException",
        ProductCode=PRODUCT,
        Timestamp=now,
        UsageDimension="gigabytes",
        UsageQuantity=1,
    )
    params = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantity": 1}
    fails(aws.client("stranger").meter_usage, "CustomerNotEntitledException", **params)
    denied = fails(aws.client("seller").meter_usage, "CustomerNotEntitledException", **params)
    assert "acts for no customer" in denied["Error"]["Message"]
    # an entitlement that ended an hour ago: usage before the end counts, usage after it does not
    ent = aws.entitle("initech", start=now - 5 * 3600, end=now - 3600)
    aws.access_key("initech", "initech")
    initech = aws.client("initech")
    fails(initech.meter_usage, "CustomerNotEntitledException", **params)
    assert initech.meter_usage(**{**params, "Timestamp": now - 2 * 3600})["MeteringRecordId"]
    assert ent["active"] is False


def test_dry_run_records_nothing(aws: Aws) -> None:
    client = aws.client("acme")
    now = time.time()
    params = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "ClientToken": "dry"}
    dry = fails(client.meter_usage, "DryRunOperation", 412, DryRun=True, UsageQuantity=9, **params)
    assert dry["Error"]["Message"] == "Request would have succeeded, but DryRun flag is set."
    fails(
        client.meter_usage,
        "InvalidUsageDimensionException",
        DryRun=True,
        **{**params, "UsageDimension": "nope", "UsageQuantity": 9},
    )
    assert aws.query(meter=f"{PRODUCT}:users", **_window(now)) == []
    # neither the hour nor the ClientToken was taken by the dry run
    assert client.meter_usage(UsageQuantity=3, **params)["MeteringRecordId"]
    fails(
        client.meter_usage,
        "DuplicateRequestException",
        DryRun=True,
        UsageQuantity=4,
        **{**params, "ClientToken": "other"},
    )
    rows = aws.query(meter=f"{PRODUCT}:users", **_window(now))
    assert [r["value"] for r in rows] == [3.0]


def test_rejected_records_are_kept(aws: Aws) -> None:
    client = aws.client("acme", validate=False)
    now = time.time()
    fails(
        client.meter_usage,
        "InvalidUsageDimensionException",
        ProductCode=PRODUCT,
        Timestamp=now,
        UsageDimension="nope",
        UsageQuantity=1,
    )
    fails(
        client.meter_usage,
        "ValidationException",
        ProductCode=PRODUCT,
        Timestamp=now,
        UsageDimension="users",
        UsageQuantityAsDecimal="x",
    )
    r = aws.http.get("/v1/rejections", params={"surface": "aws"})
    items = r.json()["items"]
    assert sorted(i["code"] for i in items) == ["InvalidUsageDimensionException", "ValidationException"]
    assert all('"ProductCode":"prod-1"' in i["raw"].replace(" ", "") for i in items)


def test_a_bare_client_configured_by_environment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """``boto3.client("meteringmarketplace")`` with only environment variables pointing it at meterd."""
    import boto3

    akid, secret = aws.keys["acme"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_MARKETPLACE_METERING", aws.server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", akid)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.session.Session().client("meteringmarketplace")
    now = time.time()
    answer = client.meter_usage(ProductCode=PRODUCT, Timestamp=now, UsageDimension="users", UsageQuantity=2)
    assert answer["MeteringRecordId"]
    assert [r["value"] for r in aws.query(meter=f"{PRODUCT}:users", **_window(now))] == [2.0]
