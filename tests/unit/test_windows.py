"""Windows in IANA zones: starts, ends and ranges across DST changes, against datetime arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.timeutil import to_ms
from meterd.core.windows import Window, window_end, window_start, windows_between, zone

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Sao_Paulo"]


def ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text))


def test_day_window_across_spring_forward_is_23_hours() -> None:
    start = window_start(ms("2024-03-31T12:00:00+02:00"), Window.DAY, BERLIN)
    assert start == ms("2024-03-31T00:00:00+01:00")
    assert window_end(start, Window.DAY, BERLIN) - start == 23 * 3_600_000


def test_day_window_across_fall_back_is_25_hours() -> None:
    start = window_start(ms("2024-10-27T12:00:00+01:00"), Window.DAY, BERLIN)
    assert window_end(start, Window.DAY, BERLIN) - start == 25 * 3_600_000


def test_repeated_hour_at_fall_back_gives_two_windows() -> None:
    first = ms("2024-10-27T02:30:00+02:00")
    second = ms("2024-10-27T02:30:00+01:00")
    assert window_start(first, Window.HOUR, BERLIN) != window_start(second, Window.HOUR, BERLIN)
    assert window_start(second, Window.HOUR, BERLIN) - window_start(first, Window.HOUR, BERLIN) == 3_600_000


def test_half_hour_zone_hours_start_on_the_half_hour() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    assert window_start(ms("2024-01-01T10:45:00+05:30"), Window.HOUR, kolkata) == ms("2024-01-01T10:00:00+05:30")


def test_week_starts_monday_and_month_on_the_first() -> None:
    assert window_start(ms("2024-05-16T10:00:00+00:00"), Window.WEEK, ZoneInfo("UTC")) == ms(
        "2024-05-13T00:00:00+00:00"
    )
    assert window_start(ms("2024-05-16T10:00:00+02:00"), Window.MONTH, BERLIN) == ms("2024-05-01T00:00:00+02:00")
    assert window_end(ms("2024-12-01T00:00:00+01:00"), Window.MONTH, BERLIN) == ms("2025-01-01T00:00:00+01:00")


def test_unknown_zone_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        zone("Mars/Olympus")


@given(
    instant=st.integers(min_value=ms("2000-01-01T00:00:00+00:00"), max_value=ms("2040-01-01T00:00:00+00:00")),
    window=st.sampled_from([Window.MINUTE, Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH]),
    name=st.sampled_from(ZONES),
)
def test_every_instant_lies_in_its_window(instant: int, window: Window, name: str) -> None:
    tz = ZoneInfo(name)
    start = window_start(instant, window, tz)
    end = window_end(start, window, tz)
    assert start <= instant < end
    local = datetime.fromtimestamp(start / 1000, tz=UTC).astimezone(tz)
    if window in (Window.DAY, Window.WEEK, Window.MONTH):
        assert (local.hour, local.minute) == (0, 0) or name == "America/Sao_Paulo"  # midnight may not exist there
    if window is Window.WEEK:
        assert local.weekday() == 0
    if window is Window.MONTH:
        assert local.day == 1


@given(
    begin=st.integers(min_value=ms("2020-01-01T00:00:00+00:00"), max_value=ms("2030-01-01T00:00:00+00:00")),
    hours=st.integers(min_value=1, max_value=24 * 70),
    window=st.sampled_from([Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH]),
    name=st.sampled_from(ZONES),
)
def test_windows_of_a_range_tile_it_without_gaps(begin: int, hours: int, window: Window, name: str) -> None:
    end = begin + hours * 3_600_000
    frames = list(windows_between(begin, end, window, ZoneInfo(name)))
    assert frames[0][0] <= begin < frames[0][1]
    assert frames[-1][0] < end <= frames[-1][1]
    for (_, a_end), (b_start, _) in pairwise(frames):
        assert a_end == b_start
    assert all(b - a <= timedelta(days=31).total_seconds() * 1000 + 3_600_000 for a, b in frames)
