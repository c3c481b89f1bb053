"""Arbitrary bodies and parameters on every Amberflo route: answers are 200 or 4xx, never 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.surfaces.fuzz import json_values, mutate, send_all

RECORD = {"uniqueId": "u", "meterApiName": "m", "meterValue": 1, "customerId": "c", "meterTimeInMillis": 1}
QUERY = {
    "meterApiName": "m",
    "aggregation": "SUM",
    "timeGroupingInterval": "DAY",
    "timeRange": {"startTimeInSeconds": 1, "endTimeInSeconds": 86400 * 3},
    "groupBy": ["customerId"],
    "filter": {"customerId": ["c"]},
    "take": {"limit": 1},
}
CUSTOMER = {"customerId": "c", "customerName": "C", "traits": {"a": "b"}}
JSON = {"content-type": "application/json"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record=mutate(RECORD),
    query=mutate(QUERY),
    customer=mutate(CUSTOMER),
    params=st.dictionaries(
        st.sampled_from(["startTimeInSeconds", "endTimeInSeconds", "timeGroupingInterval", "groupBy", "customerId"]),
        st.text(max_size=10),
    ),
    junk=json_values,
)
def test_no_route_answers_5xx(record: Any, query: Any, customer: Any, params: dict[str, str], junk: Any) -> None:
    requests = [
        ("POST", "/ingest", {}, record, JSON),
        ("POST", "/usage", {}, query, JSON),
        ("POST", "/usage/batch", {}, [query, junk], JSON),
        ("GET", "/usage/all", params, b"", {}),
        ("POST", "/customers/", {}, customer, JSON),
        ("PUT", "/customers/c", {}, customer, JSON),
        ("GET", "/customers", {"customerId": str(junk)[:50]}, b"", {}),
        ("POST", "/ingest/", {}, b"\x1f\x8b\x08garbage", {"content-encoding": "gzip"}),
    ]
    statuses = send_all(requests, "x-api-key")
    assert all(s < 500 for s in statuses), list(zip([r[1] for r in requests], statuses, strict=True))
