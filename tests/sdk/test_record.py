"""meter()'s validation is the server's: the fast path accepts exactly what parse_event accepts, and the wire
JSON it produces parses back (on the server side) to the same event."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.events import parse_event
from meterd.core.timeutil import format_ms as core_format_ms
from meterd.sdk._record import RecordBuilder, encode, format_ms, new_id

NOW = 1_700_000_000_000
names = st.one_of(
    st.sampled_from(["api_calls", "acme", "a.b:c-d/e@f_g", "x" * 128, "x" * 129, "", " lead", "-x", "bad name", "é"]),
    st.text(min_size=0, max_size=10),
    st.integers(),
    st.none(),
)
values = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.just(10**400),
    st.text(max_size=3),
)
times = st.one_of(
    st.none(),
    st.integers(-10, 300_000_000_000),
    st.floats(-1e3, 1e12),
    st.booleans(),
    st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123+02:00", "2024-05-01T12:00:00", "nope", ""]),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2001, 1, 1)),
)
scalars = st.one_of(st.text(max_size=5), st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.none()))
dims = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=70), scalars, max_size=4),
    st.just([]),
    st.just("x"),
    st.just({"k": "v" * 1025}),
    st.dictionaries(st.integers(), st.none(), max_size=2),
)


def wire_time(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


@settings(max_examples=600, deadline=None)
@given(names, values, names, times, dims, st.one_of(st.none(), names), st.one_of(st.none(), times))
def test_builder_accepts_exactly_what_the_server_accepts(
    meter: Any, value: Any, customer: Any, time: Any, dimensions: Any, event_id: Any, end_time: Any
) -> None:
    builder = RecordBuilder()
    for _ in range(2):  # the second round runs the fast path with the names cached
        data = {
            "id": event_id,
            "meter": meter,
            "customer": customer,
            "time": wire_time(time),
            "value": value,
            "dimensions": dimensions,
            "end_time": wire_time(end_time),
        }
        try:
            server = parse_event(data, now=NOW) if not _huge(value) else None
        except InvalidInput as exc:
            server_errors: list[Any] | None = exc.errors
        else:
            server_errors = None if server is not None else ["overflow"]
        try:
            record = builder.build(meter, value, customer, time, dimensions, event_id, end_time)
        except InvalidInput as exc:
            assert server_errors is not None
            if server_errors != ["overflow"]:
                assert exc.errors == server_errors
            continue
        assert server_errors is None, server_errors
        assert server is not None
        parsed = parse_event(json.loads(encode(record)), now=NOW)
        assert (parsed.meter, parsed.customer, parsed.value, parsed.dimensions, parsed.end_time) == (
            server.meter,
            server.customer,
            server.value,
            server.dimensions,
            server.end_time,
        )
        if time is not None:
            assert parsed.time == server.time
        if event_id is not None:
            assert parsed.id == event_id


def _huge(value: object) -> bool:
    return type(value) is int and abs(value) > 1e308


def test_an_integer_too_large_for_a_float_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as caught:
        RecordBuilder().build("m", 10**400, "c")
    assert [e.path for e in caught.value.errors] == ["value"]


def test_dimensions_are_copied_so_later_changes_do_not_leak() -> None:
    builder = RecordBuilder()
    builder.build("m", 1, "c")
    dimensions = {"region": "eu"}
    record = builder.build("m", 1, "c", dimensions=dimensions)
    dimensions["region"] = "us"
    assert json.loads(encode(record))["dimensions"] == {"region": "eu"}


def test_times_keep_milliseconds_and_naive_datetimes_are_refused() -> None:
    builder = RecordBuilder()
    when = datetime(2024, 5, 1, 12, 0, 0, 123999, tzinfo=timezone(timedelta(hours=2)))
    record = builder.build("m", 1, "c", time=when)
    assert json.loads(encode(record))["time"] == "2024-05-01T10:00:00.123Z"
    assert (
        builder.build("m", 1, "c", time=1714521600.123)[3]
        == parse_event({"meter": "m", "customer": "c", "time": 1714521600.123}, now=0).time
    )
    with pytest.raises(InvalidInput):
        builder.build("m", 1, "c", time=datetime(2024, 5, 1))
    with pytest.raises(InvalidInput):
        builder.build("m", 1, "c", time=when, end_time=when - timedelta(seconds=1))


def test_generated_ids_are_unique_valid_names() -> None:
    ids = {new_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@given(st.integers(0, 253402300799999))
def test_fast_time_format_equals_the_core_format(ms: int) -> None:
    assert format_ms(ms) == core_format_ms(ms)
