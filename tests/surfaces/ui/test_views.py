"""Reading a usage view from a page's query string into the exact body POST /v1/query takes."""

from __future__ import annotations

from meterd.core.ranges import DAY_MS
from meterd.core.timeutil import format_ms
from meterd.core.windows import Window
from meterd.server.schemas import QueryIn
from meterd.surfaces.ui.views import candidates, parse_view

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def test_defaults_are_the_last_day_by_hour_in_utc() -> None:
    view = parse_view({}, NOW)
    assert view.errors == [] and view.window is Window.HOUR and view.time_zone == "UTC"
    assert (format_ms(view.start), format_ms(view.end)) == ("2023-11-13T22:00:00.000Z", "2023-11-14T23:00:00.000Z")
    body = view.query_body(("calls",))
    assert body == {
        "meters": ["calls"],
        "from": "2023-11-13T22:00:00.000Z",
        "to": "2023-11-14T23:00:00.000Z",
        "window": "hour",
        "time_zone": "UTC",
        "dense": True,
    }
    QueryIn.model_validate(body).spec().check()


def test_group_filters_and_custom_range_become_the_query() -> None:
    params = {
        "range": "custom",
        "from": "2024-01-01T00:00:00+01:00",
        "to": "2024-01-08T00:00:00+01:00",
        "tz": "Europe/Berlin",
        "group": "region",
        "top": "3",
        "customers": "acme, globex",
        "f1_key": "tier",
        "f1_op": "ne",
        "f1_values": "free,2,true",
    }
    view = parse_view(params, NOW)
    assert view.errors == [] and view.window is Window.HOUR  # a week picks hourly windows
    body = view.query_body(("calls",), Window.DAY, dense=False)
    assert body["window"] == "day" and body["group_by"] == ["region"] and body["take"] == {"limit": 3, "order": "desc"}
    assert body["filters"] == {
        "customers": ["acme", "globex"],
        "dimensions": [{"key": "tier", "op": "nin", "values": ["free", "2", 2, "true", True]}],
    }
    assert parse_view(view.params(), NOW + DAY_MS).query_body(("calls",)) == view.query_body(("calls",))
    QueryIn.model_validate(body).spec().check()


def test_invalid_settings_become_field_errors() -> None:
    view = parse_view(
        {
            "range": "forever",
            "tz": "Mars/Base",
            "window": "fortnight",
            "top": "500",
            "group": "no spaces",
            "customers": "a b",
            "f1_key": "customer",
        },
        NOW,
    )
    assert sorted(e.path for e in view.errors) == ["customers", "f1_key", "group", "range", "top", "tz", "window"]
    assert view.time_zone == "UTC" and view.group == "" and view.top == 10
    view = parse_view({"range": "custom", "from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, NOW)
    assert [e.path for e in view.errors] == ["to"]
    view = parse_view(
        {"range": "custom", "from": "1970-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z", "window": "minute"}, NOW
    )
    assert [e.path for e in view.errors] == ["window"] and view.window is Window.MONTH


def test_form_values_match_text_numbers_and_booleans() -> None:
    assert candidates("eu, 3, 2.5, false,") == ["eu", "3", 3, "2.5", 2.5, "false", False]
