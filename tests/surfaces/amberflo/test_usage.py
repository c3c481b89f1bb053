"""Amberflo /usage, /usage/batch and /usage/all at the wire, checked against the independent reference."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.conftest import Served
from tests.surfaces.amberflo.reference import report

BASE = datetime(2024, 1, 25, tzinfo=UTC)  # a Thursday; the span crosses weeks and the end of two months
BASE_S = int(BASE.timestamp())
DAY = 86400


def rec(uid: str, customer: str, offset_s: int, value: float, meter: str = "calls", **dims: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uniqueId": uid,
        "meterApiName": meter,
        "meterValue": value,
        "customerId": customer,
        "meterTimeInMillis": (BASE_S + offset_s) * 1000,
    }
    if dims:
        record["dimensions"] = dims
    return record


RECORDS = [
    rec("a", "c1", 0, 5, region="eu"),
    rec("b", "c1", 3600, 7, region="us"),
    rec("c", "c2", DAY + 10, 1, region="eu"),
    rec("d", "c3", 2 * DAY, 20, region="eu"),
    rec("e", "c2", 9 * DAY, 4),
    rec("f", "c1", -DAY, 100, region="eu"),  # before the range: the previous period
    rec("g", "c1", 0, 2, meter="storage"),
]


@pytest.fixture
async def af(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app)
    headers = {"X-API-KEY": served.admin_key}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        assert (await c.post("/ingest/", json=RECORDS)).status_code == 200
        yield c


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def q(**extra: Any) -> dict[str, Any]:
    query = {
        "meterApiName": "calls",
        "aggregation": "SUM",
        "timeGroupingInterval": "DAY",
        "timeRange": {"startTimeInSeconds": BASE_S, "endTimeInSeconds": BASE_S + 10 * DAY},
    }
    return {**query, **extra}


async def test_grouped_filtered_report_has_every_window_and_exact_values(af: httpx.AsyncClient) -> None:
    query = q(groupBy=["customerId"], filter={"customerId": ["c1", "c2"]})
    r = await af.post("/usage", json=query)
    assert r.status_code == 200
    body = r.json()
    assert rounded(body) == rounded(report(RECORDS, query, 0))
    assert len(body["secondsSinceEpochIntervals"]) == 10
    c1 = body["clientMeters"][0]
    assert c1["group"] == {"groupInfo": {"customerId": "c1"}}
    assert c1["groupValue"] == 12.0 and c1["values"][0]["value"] == 12.0 and c1["values"][1]["value"] == 0.0
    assert c1["percentageFromPrevious"] == pytest.approx((12 - 100) / 100 * 100)


async def test_take_and_dimension_filter_as_a_string(af: httpx.AsyncClient) -> None:
    query = q(aggregation="max", groupBy=["customerId", "region"], filter={"region": "eu"}, take={"limit": 2})
    body = (await af.post("/usage/", json=query)).json()
    assert [m["group"]["groupInfo"] for m in body["clientMeters"]] == [
        {"customerId": "c3", "region": "eu"},
        {"customerId": "c1", "region": "eu"},
    ]
    assert rounded(body) == rounded(report(RECORDS, query, 0))
    ascending = q(aggregation="Count", groupBy=["customerId"], take={"limit": 1, "isAscending": True})
    body = (await af.post("/usage", json=ascending)).json()
    assert body["clientMeters"][0]["group"]["groupInfo"] == {"customerId": "c3"}


async def test_ungrouped_report_without_usage_is_one_zero_series(af: httpx.AsyncClient) -> None:
    query = q(meterApiName="nothing-here", timeGroupingInterval="WEEK")
    body = (await af.post("/usage", json=query)).json()
    assert body["clientMeters"] == [
        {
            "group": None,
            "groupValue": 0.0,
            "percentageFromPrevious": 0.0,
            "values": [
                {"value": 0.0, "secondsSinceEpochUtc": s, "percentageFromPrevious": 0.0}
                for s in body["secondsSinceEpochIntervals"]
            ],
        }
    ]
    assert body["secondsSinceEpochIntervals"][0] == BASE_S - 3 * DAY  # the Monday of the first week


async def test_batch_answers_each_query_in_order(af: httpx.AsyncClient) -> None:
    queries = [q(), q(aggregation="COUNT", timeGroupingInterval="MONTH"), q(meterApiName="storage")]
    r = await af.post("/usage/batch", json=queries)
    assert r.status_code == 200
    assert rounded(r.json()) == [rounded(report(RECORDS, x, 0)) for x in queries]
    r = await af.post("/usage/batch", json=[q(), q(aggregation="AVG")])
    assert r.status_code == 400
    assert r.json()["errors"] == [{"path": "1.aggregation", "message": "must be one of SUM, COUNT, MIN, MAX"}]


async def test_all_usage_reports_every_meter(af: httpx.AsyncClient) -> None:
    params = {"startTimeInSeconds": BASE_S, "endTimeInSeconds": BASE_S + 3 * DAY, "timeGroupingInterval": "DAY"}
    body = (await af.get("/usage/all", params={**params, "groupBy": "customerId"})).json()
    assert [b["metadata"]["meterApiName"] for b in body] == ["calls", "storage"]
    for b in body:
        query = {k: b["metadata"][k] for k in ("meterApiName", "aggregation", "timeGroupingInterval", "timeRange")}
        assert b["metadata"]["groupBy"] == ["customerId"]
        assert rounded(b) == rounded(
            {**report(RECORDS, {**query, "groupBy": ["customerId"]}, 0), "metadata": b["metadata"]}
        )
    body = (await af.get("/usage/all/", params={**params, "customerId": "c2"})).json()
    assert body[0]["clientMeters"][0]["groupValue"] == 1.0
    assert body[0]["metadata"]["filter"] == {"customerId": ["c2"]}


async def test_no_end_means_until_now(af: httpx.AsyncClient, served: Served) -> None:
    served.meterd.clock = lambda: (BASE_S + 2 * DAY + 5) * 1000
    query = q(timeRange={"startTimeInSeconds": BASE_S})
    body = (await af.post("/usage", json=query)).json()
    assert body["secondsSinceEpochIntervals"] == [BASE_S, BASE_S + DAY, BASE_S + 2 * DAY]
    assert rounded(body) == rounded(report(RECORDS, query, BASE_S + 2 * DAY + 5.0))


CASES_INVALID_QUERIES_ARE_400_NAMING_THE_FIELD = [
    ({"meterApiName": "calls"}, ["aggregation", "timeGroupingInterval", "timeRange"]),
    (q(timeGroupingInterval="YEAR"), ["timeGroupingInterval"]),
    (q(timeRange={"startTimeInSeconds": 10, "endTimeInSeconds": 5}), ["timeRange.endTimeInSeconds"]),
    (q(filter={"customerId": []}), ["filter.customerId"]),
    (q(take={"limit": 0}), ["take.limit"]),
    (q(groupBy="customerId"), ["groupBy"]),
    (q(rescaleFunction="x"), ["rescaleFunction"]),
]


async def test_invalid_queries_are_400_naming_the_field(af: httpx.AsyncClient) -> None:
    for query, errors in CASES_INVALID_QUERIES_ARE_400_NAMING_THE_FIELD:
        r = await af.post("/usage", json=query)
        assert r.status_code == 400
        assert [e["path"] for e in r.json()["errors"]] == errors


# property: any query form over any history equals the reference ------------------------------------------
record_st = st.builds(
    rec,
    uid=st.sampled_from([f"u{i}" for i in range(6)]),
    customer=st.sampled_from(["c1", "c2", "c3"]),
    offset_s=st.integers(-20 * DAY, 60 * DAY),
    value=st.integers(0, 9),
    meter=st.sampled_from(["calls", "calls", "other"]),
    region=st.sampled_from(["eu", "us"]),
)
query_st = st.builds(
    lambda agg, case, interval, start_d, days, group, flt, take: {
        "meterApiName": "calls",
        "aggregation": case(agg),
        "timeGroupingInterval": interval,
        "timeRange": {
            "startTimeInSeconds": BASE_S + start_d * DAY,
            "endTimeInSeconds": BASE_S + start_d * DAY + (days if interval != "HOUR" else 1) * DAY,
        },
        **({"groupBy": group} if group else {}),
        **({"filter": flt} if flt else {}),
        **({"take": take} if take else {}),
    },
    agg=st.sampled_from(["SUM", "COUNT", "MIN", "MAX"]),
    case=st.sampled_from([str.upper, str.lower, str.title]),
    interval=st.sampled_from(["HOUR", "DAY", "WEEK", "MONTH"]),
    start_d=st.integers(-5, 40),
    days=st.integers(1, 45),
    group=st.sampled_from([[], ["customerId"], ["region"], ["customerId", "region"]]),
    flt=st.sampled_from([None, {"customerId": "c1"}, {"customerId": ["c2", "c3"]}, {"region": ["eu"]}]),
    take=st.one_of(st.none(), st.fixed_dictionaries({"limit": st.integers(1, 3), "isAscending": st.booleans()})),
)


async def run(batches: list[list[dict[str, Any]]], query: dict[str, Any], database: str) -> dict[str, Any]:
    app = create_app(Settings(database_url=database), store=create_store(database))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"x-api-key": key}) as c:
            for batch in batches:
                assert (await c.post("/ingest/", json=batch)).status_code == 200
            r = await c.post("/usage/", json=query)
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            return result


def database_urls(tmp: Path) -> list[str]:
    urls = ["memory://"]
    try:
        import meterd.storage.sqlite  # noqa: F401

        urls.append(str(tmp / "usage.db"))
    except ImportError:
        pass
    return urls


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(record_st, min_size=1, max_size=10), min_size=1, max_size=4), query=query_st)
def test_usage_report_equals_reference(batches: list[list[dict[str, Any]]], query: dict[str, Any]) -> None:
    records = [r for batch in batches for r in batch]
    expected = rounded(report(records, query, 0))
    with tempfile.TemporaryDirectory() as tmp:
        for url in database_urls(Path(tmp)):
            assert rounded(asyncio.run(run(batches, query, url))) == expected, url
