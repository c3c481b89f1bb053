"""Arbitrary bodies and parameters on every OpenMeter route: answers are 2xx or 4xx, never 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.surfaces.fuzz import json_values, mutate, send_all

EVENT = {
    "id": "1",
    "source": "s",
    "specversion": "1.0",
    "type": "t",
    "subject": "a",
    "time": "2024-01-01T00:00:00Z",
    "data": {"v": 1},
}
METER = {"slug": "m", "eventType": "t", "aggregation": "SUM", "valueProperty": "$.v", "groupBy": {"g": "$.g"}}
QUERY = {"from": "2024-01-01T00:00:00Z", "windowSize": "HOUR", "groupBy": ["g"], "filterGroupBy": {"g": ["x"]}}
PARAMS = [
    "from",
    "to",
    "windowSize",
    "windowTimeZone",
    "subject",
    "groupBy",
    "filterGroupBy",
    "filterGroupBy[g]",
    "advancedMeterGroupByFilters",
    "limit",
    "id",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=mutate(EVENT),
    meter=mutate(METER),
    query=mutate(QUERY),
    params=st.dictionaries(st.sampled_from(PARAMS), st.text(max_size=16)),
    junk=json_values,
)
def test_no_route_answers_5xx(event: Any, meter: Any, query: Any, params: dict[str, str], junk: Any) -> None:
    requests = [
        ("POST", "/api/v1/meters", {}, METER, {"content-type": "application/json"}),
        ("POST", "/api/v1/events", {}, event, {"content-type": "application/cloudevents-batch+json"}),
        ("POST", "/api/v1/events", {}, event, {"content-type": "application/json"}),
        ("POST", "/api/v1/meters", {}, meter, {"content-type": "application/json"}),
        ("PUT", "/api/v1/meters/m", {}, junk, {"content-type": "application/json"}),
        ("GET", "/api/v1/meters/m/query", params, b"", {}),
        ("POST", "/api/v1/meters/m/query", {}, query, {"content-type": "application/json"}),
        ("GET", "/api/v1/events", params, b"", {}),
        ("POST", "/api/v1/subjects", {}, [junk], {"content-type": "application/json"}),
        ("GET", "/api/v1/meters/m/group-by/g/values", params, b"", {}),
    ]
    statuses = send_all(requests, "bearer")
    assert all(s < 500 for s in statuses), list(zip([r[1] for r in requests], statuses, strict=True))
