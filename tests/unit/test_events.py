"""Record validation and identity: field errors with paths, derived ids, duplicate versus conflict."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from meterd.core.errors import InvalidInput
from meterd.core.events import classify, derived_id, fingerprint, parse_event
from meterd.core.models import Outcome

NOW = 1_700_000_000_000


def errors_of(record: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_event(record, now=NOW)
    return {e.path: e.message for e in caught.value.errors}


def test_minimal_record_defaults_time_value_and_id() -> None:
    event = parse_event({"meter": "calls", "customer": "acme"}, now=NOW)
    assert (event.time, event.value, event.dimensions, event.end_time) == (NOW, 1.0, {}, None)
    assert event.id == derived_id(event) and event.id.startswith("h-")


def test_times_keep_milliseconds_and_accept_offsets() -> None:
    event = parse_event({"meter": "m", "customer": "c", "time": "2024-01-01T01:00:00.1234+01:00"}, now=NOW)
    assert event.time == 1_704_067_200_123


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ({"customer": "c"}, "meter"),
        ({"meter": "m", "customer": ""}, "customer"),
        ({"meter": "m", "customer": "c", "value": "3"}, "value"),
        ({"meter": "m", "customer": "c", "value": True}, "value"),
        ({"meter": "m", "customer": "c", "value": float("nan")}, "value"),
        ({"meter": "m", "customer": "c", "time": "yesterday"}, "time"),
        ({"meter": "m", "customer": "c", "time": "2024-01-01T00:00:00"}, "time"),
        ({"meter": "m", "customer": "c", "dimensions": {"a": {"nested": 1}}}, "dimensions.a"),
        ({"meter": "m", "customer": "c", "dimensions": [1]}, "dimensions"),
        ({"meter": "m", "customer": "c", "dimensions": []}, "dimensions"),
        ({"meter": "m", "customer": "c", "dimensions": ""}, "dimensions"),
        ({"meter": "m", "customer": "c", "dimensions": False}, "dimensions"),
        ({"meter": "m", "customer": "c", "value": 10**400}, "value"),
        ({"meter": "m", "customer": "c", "value": -(10**400)}, "value"),
        ({"meter": "m", "customer": "c", "colour": "red"}, "colour"),
        ({"meter": "bad name", "customer": "c"}, "meter"),
        ({"meter": "m", "customer": "c", "id": "x" * 129}, "id"),
        ({"meter": "m", "customer": "c", "time": 10, "end_time": 5}, "end_time"),
    ],
)
def test_invalid_fields_are_reported_by_path(record: dict[str, Any], path: str) -> None:
    assert path in errors_of(record)


def test_non_object_is_rejected() -> None:
    assert "" in errors_of([1, 2])


def test_same_content_is_duplicate_other_content_conflict() -> None:
    event = parse_event({"id": "e", "meter": "m", "customer": "c", "time": 1, "value": 2}, now=NOW)
    assert classify(fingerprint(event), event) is Outcome.DUPLICATE
    assert classify(fingerprint(event), replace(event, value=3.0)) is Outcome.CONFLICT
    assert fingerprint(event) == fingerprint(replace(event, raw="{}", surface="other"))
