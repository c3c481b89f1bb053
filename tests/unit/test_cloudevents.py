"""CloudEvents: validation, identity on (source, id), and translation under a meter definition."""

from __future__ import annotations

from typing import Any

import pytest

from meterd.core.cloudevents import (
    UNIQUE_DIMENSION,
    MeterDefinition,
    archive_event,
    archive_id,
    derive,
    label_of,
    number_of,
    parse_cloudevent,
)
from meterd.core.errors import InvalidInput
from meterd.core.jsonpath import parse_path
from meterd.core.models import Aggregation

NOW = 1_700_000_000_000
EV = {"id": "1", "source": "s", "specversion": "1.0", "type": "t", "subject": "acme", "data": {"v": "2.5", "g": 3.0}}


def definition(aggregation: Aggregation = Aggregation.SUM, event_from: int | None = None) -> MeterDefinition:
    return MeterDefinition("m", "t", aggregation, parse_path("$.v"), (("g", parse_path("$.g")),), "v1", event_from)


def test_missing_time_is_the_receipt_time_and_identity_is_source_and_id() -> None:
    event = parse_cloudevent(EV, now=NOW)
    assert event.time == NOW
    assert archive_id("s", "1") == archive_event(event, "openmeter").id
    assert archive_id("s", "1") != archive_id("s2", "1") != archive_id("s", "2")
    assert archive_id("a:b", "c") != archive_id("a", "b:c")


def test_invalid_events_name_every_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_cloudevent({"id": 1, "specversion": "2", "subject": "a b", "time": 5, "data": []}, now=NOW)
    assert [e.path for e in raised.value.errors] == ["id", "source", "specversion", "type", "subject", "data", "time"]


def test_derive_reads_value_and_labels() -> None:
    usage = derive(parse_cloudevent(EV, now=NOW), definition(), "openmeter")
    assert usage is not None
    assert (usage.meter, usage.customer, usage.value, usage.dimensions) == ("m", "acme", 2.5, {"g": "3"})
    assert usage.id.endswith(":m:v1")


def test_derive_skips_other_types_and_events_before_event_from() -> None:
    event = parse_cloudevent({**EV, "time": "2024-01-01T00:00:00Z"}, now=NOW)
    assert derive(parse_cloudevent({**EV, "type": "other"}, now=NOW), definition(), "o") is None
    assert derive(event, definition(event_from=event.time + 1), "o") is None
    assert derive(event, definition(event_from=event.time), "o") is not None


@pytest.mark.parametrize(
    ("data", "message"), [({}, "is missing"), ({"v": "x"}, "is not a number"), ({"v": True}, "is not a number")]
)
def test_unusable_values_are_invalid(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        derive(parse_cloudevent({**EV, "data": data}, now=NOW), definition(), "o")
    assert raised.value.errors[0].message == message


def test_count_ignores_the_value_and_unique_count_keeps_it_as_a_dimension() -> None:
    event = parse_cloudevent({**EV, "data": {"v": 7}}, now=NOW)
    count = derive(event, definition(Aggregation.COUNT), "o")
    unique = derive(event, definition(Aggregation.UNIQUE_COUNT), "o")
    assert count is not None and count.value == 1.0
    assert unique is not None and unique.dimensions == {UNIQUE_DIMENSION: "7"}


@pytest.mark.parametrize(
    ("value", "number", "label"),
    [
        (3, 3.0, "3"),
        (2.5, 2.5, "2.5"),
        ("4", 4.0, "4"),
        (True, None, "true"),
        (None, None, None),
        ({"a": 1}, None, None),
        ("nan", None, "nan"),
    ],
)
def test_numbers_and_labels(value: Any, number: float | None, label: str | None) -> None:
    assert number_of(value) == number
    assert label_of(value) == label
