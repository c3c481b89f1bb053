"""BatchMeterUsage through the real boto3 client: per-record status, idempotency, whole-batch rules, licences."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from meterd.core.errors import StorageError
from tests.surfaces.aws.conftest import PRODUCT, Aws, fails

USERS = f"{PRODUCT}:users"


def record(customer: str | None = "acme", t: float | None = None, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Timestamp": t if t is not None else time.time(),
        "Dimension": "users",
        "Quantity": quantity,
        **extra,
    }
    if customer is not None:
        body["CustomerIdentifier"] = customer
    return body


def statuses(answer: dict[str, Any]) -> list[str]:
    return [r["Status"] for r in answer["Results"]]


def window(t: float) -> dict[str, float]:
    return {"from": t - 3 * 86_400, "to": t + 86_400}


def test_batch_of_25_is_idempotent(aws: Aws) -> None:
    client = aws.client("seller")
    now = time.time()
    records = [record("acme", now - i, i + 1) for i in range(20)]
    records += [
        {"Timestamp": now - i, "CustomerAWSAccountId": "444455556666", "Dimension": "users", "QuantityAsDecimal": "0.5"}
        for i in range(5)
    ]
    first = client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=records)
    assert statuses(first) == ["Success"] * 25
    assert first["UnprocessedRecords"] == []
    assert first["Results"][3]["UsageRecord"]["CustomerIdentifier"] == "acme"
    assert first["Results"][3]["UsageRecord"]["Quantity"] == 4
    assert first["Results"][24]["UsageRecord"]["CustomerAWSAccountId"] == "444455556666"
    ids = [r["MeteringRecordId"] for r in first["Results"]]
    assert len(set(ids)) == 25
    again = client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=records)
    assert [r["MeteringRecordId"] for r in again["Results"]] == ids
    # a subset, with quantities written by value differently, is the same records
    subset = [dict(records[0], Quantity=None, QuantityAsDecimal="1.000")]
    del subset[0]["Quantity"]
    assert (
        client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=subset)["Results"][0]["MeteringRecordId"] == ids[0]
    )
    rows = aws.query(meter=USERS, group_by=["customer"], **window(now))
    assert {r["group"]["customer"]: r["value"] for r in rows} == {"acme": sum(range(1, 21)), "globex": 2.5}


def test_statuses_per_record(aws: Aws) -> None:
    client = aws.client("seller")
    now = time.time()
    r = aws.http.post("/v1/customers", json={"id": "unsubscribed"})
    assert r.status_code == 201
    r = aws.http.put("/v1/customers/globex", json={"enabled": False, "traits": {"aws_account_id": "444455556666"}})
    assert r.status_code == 200
    client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[record("acme", now, 5)])
    answer = client.batch_meter_usage(
        ProductCode=PRODUCT,
        UsageRecords=[
            record("acme", now, 6),  # same customer, dimension and time, other quantity
            record("ghost", now),  # unknown customer
            record("unsubscribed", now),  # no entitlement
            record("globex", now),  # suspended (disabled)
            record(None, now, CustomerAWSAccountId="999999999999"),
            record("acme", now - 1, 7),
            record("acme", now - 1, 8),  # a duplicate inside the same batch
        ],
    )
    assert statuses(answer) == [
        "DuplicateRecord",
        "CustomerNotSubscribed",
        "CustomerNotSubscribed",
        "CustomerNotSubscribed",
        "CustomerNotSubscribed",
        "Success",
        "DuplicateRecord",
    ]
    assert [("MeteringRecordId" in r) for r in answer["Results"]] == [False] * 5 + [True, False]
    rows = aws.query(meter=USERS, group_by=["customer"], **window(now))
    assert {r["group"]["customer"]: r["value"] for r in rows} == {"acme": 12.0}
    kept = aws.http.get("/v1/rejections", params={"surface": "aws"}).json()["items"]
    assert sorted(i["code"] for i in kept) == ["CustomerNotSubscribed"] * 4 + ["DuplicateRecord"] * 2


def test_whole_batch_rules(aws: Aws) -> None:
    client = aws.client("seller", validate=False)
    now = time.time()
    good = record("acme", now)
    out = fails(
        client.batch_meter_usage,
        "TimestampOutOfBoundsException",
        ProductCode=PRODUCT,
        UsageRecords=[good, record("acme", now - 25 * 3600)],
    )
    assert "UsageRecords[1].Timestamp" in out["Error"]["Message"]
    fails(
        client.batch_meter_usage,
        "TimestampOutOfBoundsException",
        ProductCode=PRODUCT,
        UsageRecords=[good, record("acme", now + 3600)],
    )
    too_many = fails(
        client.batch_meter_usage,
        "ValidationException",
        ProductCode=PRODUCT,
        UsageRecords=[record("acme", now - i) for i in range(26)],
    )
    assert "less than or equal to 25" in too_many["Error"]["Message"]
    fails(client.batch_meter_usage, "InvalidProductCodeException", ProductCode="prod-x", UsageRecords=[good])
    fails(
        client.batch_meter_usage,
        "InvalidUsageDimensionException",
        ProductCode=PRODUCT,
        UsageRecords=[good, dict(good, Dimension="disk")],
    )
    fails(
        client.batch_meter_usage,
        "InvalidCustomerIdentifierException",
        ProductCode=PRODUCT,
        UsageRecords=[record(None, now)],
    )
    fails(
        client.batch_meter_usage,
        "InvalidCustomerIdentifierException",
        ProductCode=PRODUCT,
        UsageRecords=[record("acme", now, CustomerAWSAccountId="111122223333")],
    )
    fails(
        client.batch_meter_usage,
        "InvalidUsageAllocationsException",
        ProductCode=PRODUCT,
        UsageRecords=[good, record("acme", now - 5, 2, UsageAllocations=[{"AllocatedUsageQuantity": 1}])],
    )
    six = [{"Key": f"k{i}", "Value": "v"} for i in range(6)]
    fails(
        client.batch_meter_usage,
        "InvalidTagException",
        ProductCode=PRODUCT,
        UsageRecords=[record("acme", now, 1, UsageAllocations=[{"AllocatedUsageQuantity": 1, "Tags": six}])],
    )
    for bad in (
        {"CustomerAWSAccountId": "12ab"},
        {"LicenseArn": "not-an-arn"},
        {"Dimension": "d" * 256},
        {"Quantity": 2_147_483_648},
        {"QuantityAsDecimal": "1.0000001"},
        {"CustomerIdentifier": "c" * 256},
    ):
        fails(
            client.batch_meter_usage,
            "ValidationException",
            ProductCode=PRODUCT,
            UsageRecords=[dict(record(None, now), **bad)],
        )
    fails(
        client.batch_meter_usage,
        "ValidationException",
        ProductCode=PRODUCT,
        UsageRecords=[dict(good, Quantity=1, QuantityAsDecimal="1")],
    )
    assert aws.query(meter=USERS, **window(now)) == []
    kept = aws.http.get("/v1/rejections", params={"surface": "aws", "limit": 1000}).json()["items"]
    assert Counter(i["code"] for i in kept) == {  # every record of every refused batch is kept
        "TimestampOutOfBoundsException": 4,
        "ValidationException": 26 + 6 + 1,
        "InvalidProductCodeException": 1,
        "InvalidUsageDimensionException": 2,
        "InvalidCustomerIdentifierException": 2,
        "InvalidUsageAllocationsException": 2,
        "InvalidTagException": 1,
    }
    empty = client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[])
    assert (empty["Results"], empty["UnprocessedRecords"]) == ([], [])


def test_licences_and_account_ids(aws: Aws) -> None:
    client = aws.client("seller", validate=False)
    now = time.time()
    acme = aws.http.get("/v1/aws/entitlements", params={"product": PRODUCT, "customer": "acme"}).json()["items"][0]
    arn = acme["license_arn"]
    assert arn.startswith("arn:aws:license-manager::")
    licensed = {
        "Timestamp": now,
        "Dimension": "users",
        "Quantity": 3,
        "LicenseArn": arn,
        "CustomerAWSAccountId": "111122223333",
    }
    answer = client.batch_meter_usage(UsageRecords=[licensed, dict(licensed, Timestamp=now - 1, Quantity=4)])
    assert statuses(answer) == ["Success", "Success"]
    assert client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[licensed])["Results"][0]["Status"] == "Success"
    unknown = arn[:-4] + "ffff" if not arn.endswith("ffff") else arn[:-4] + "0000"
    fails(client.batch_meter_usage, "InvalidLicenseException", UsageRecords=[dict(licensed, LicenseArn=unknown)])
    fails(
        client.batch_meter_usage,
        "InvalidLicenseException",
        UsageRecords=[dict(licensed, CustomerAWSAccountId="444455556666")],
    )
    r = aws.http.post("/v1/aws/products", json={"code": "prod-2", "dimensions": [{"name": "users"}]})
    assert r.status_code == 201
    fails(client.batch_meter_usage, "InvalidLicenseException", UsageRecords=[licensed], ProductCode="prod-2")
    fails(client.batch_meter_usage, "InvalidProductCodeException", UsageRecords=[record("acme", now)])
    # a licence that has ended: its records are not subscribed
    ended = aws.entitle("acme", start=now - 7200, end=now - 3600)
    late = dict(licensed, LicenseArn=ended["license_arn"], Quantity=1)
    assert statuses(client.batch_meter_usage(UsageRecords=[late])) == ["CustomerNotSubscribed"]
    rows = aws.query(meter=USERS, group_by=["customer"], **window(now))
    assert {r["group"]["customer"]: r["value"] for r in rows} == {"acme": 7.0}


def test_allocations_in_a_batch(aws: Aws) -> None:
    client = aws.client("seller")
    now = time.time()
    allocated = record(
        "globex",
        now,
        6,
        UsageAllocations=[
            {"AllocatedUsageQuantity": 4, "Tags": [{"Key": "region", "Value": "eu"}]},
            {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "region", "Value": "us"}]},
        ],
    )
    assert statuses(client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[allocated])) == ["Success"]
    rows = aws.query(meter=USERS, group_by=["customer", "region"], **window(now))
    assert {(r["group"]["customer"], r["group"]["region"]): r["value"] for r in rows} == {
        ("globex", "eu"): 4.0,
        ("globex", "us"): 2.0,
    }


def test_storage_failure_returns_unprocessed_records(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    client = aws.client("seller")
    store = aws.server.app.state.meterd.store
    real = store.ingest
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("the disk is gone")
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "ingest", flaky)
    now = time.time()
    records = [record("acme", now, 2), record("acme", now - 1, 3)]
    answer = client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=records)
    assert answer["Results"] == []
    assert [r["Quantity"] for r in answer["UnprocessedRecords"]] == [2, 3]
    retried = client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=answer["UnprocessedRecords"])
    assert statuses(retried) == ["Success", "Success"]
    assert [r["value"] for r in aws.query(meter=USERS, **window(now))] == [5.0]


def test_month_end_grace(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """March usage is accepted until 06:00 UTC on April 1, within 24 hours of the event."""
    import botocore.auth

    aws.entitle("acme", start="2026-01-01T00:00:00Z")
    meterd = aws.server.app.state.meterd
    march_31 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC).timestamp()
    for clock, expected in (("2026-04-01T05:00:00", True), ("2026-04-01T06:30:00", False)):
        moment = datetime.fromisoformat(clock).replace(tzinfo=UTC)
        monkeypatch.setattr(meterd, "clock", lambda m=moment: int(m.timestamp() * 1000))
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda m=moment: m.replace(tzinfo=None))
        client = aws.client("seller")
        records = [record("acme", march_31, 1), record("acme", moment.timestamp() - 60, 1)]
        if expected:
            assert statuses(client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=records)) == ["Success"] * 2
        else:
            fails(client.batch_meter_usage, "TimestampOutOfBoundsException", ProductCode=PRODUCT, UsageRecords=records)
