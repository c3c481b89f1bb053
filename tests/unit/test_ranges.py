"""Ranges for viewing usage: aligned to windows in a zone, even buckets, rates — checked against first principles."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from meterd.core.ranges import SPANS, aligned_range, even_buckets, per_second, recent_span, window_count
from meterd.core.windows import Window, window_end, window_start, zone

ZONES = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe"]
WINDOWS = [Window.MINUTE, Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH]
NOW = st.integers(min_value=86_400_000 * 400, max_value=4_102_444_800_000)


@given(NOW, st.sampled_from(list(SPANS.values())), st.sampled_from(WINDOWS), st.sampled_from(ZONES))
def test_aligned_range_covers_the_span_in_whole_windows(now: int, span: int, window: Window, tz: str) -> None:
    start, end = aligned_range(now, span, window, tz)
    zi = zone(tz)
    assert start <= now - span + 1 and end > now
    assert window_start(start, window, zi) == start  # starts on a window boundary
    assert end == window_end(window_start(now, window, zi), window, zi)  # ends with the window holding now
    assert window_start(now - span + 1, window, zi) == start  # and is no wider than needed


def test_aligned_range_by_local_hour_in_a_half_hour_zone() -> None:
    now = int(datetime(2024, 3, 10, 12, 20, tzinfo=UTC).timestamp() * 1000)  # 17:50 in Kolkata
    start, end = aligned_range(now, 24 * 3_600_000, Window.HOUR, "Asia/Kolkata")
    local = ZoneInfo("Asia/Kolkata")
    assert datetime.fromtimestamp(start / 1000, local).isoformat() == "2024-03-09T17:00:00+05:30"
    assert datetime.fromtimestamp(end / 1000, local).isoformat() == "2024-03-10T18:00:00+05:30"
    assert window_count(start, end, Window.HOUR, "Asia/Kolkata") == 25
    assert aligned_range(now, 60_000, Window.NONE, "UTC") == (now - 60_000, now + 1)


def test_window_count_stops_just_past_the_cap() -> None:
    assert window_count(0, 10 * 86_400_000, Window.MINUTE, "UTC", cap=100) == 101
    assert window_count(0, 1, Window.NONE, "UTC") == 1


@given(st.integers(0, 10**13), st.integers(1, 10**9), st.integers(10**5, 10**8))
def test_even_buckets_tile_the_range(start: int, length: int, step: int) -> None:
    end = start + length
    buckets = even_buckets(start, end, step)
    assert buckets[0][0] == start and buckets[-1][1] == end
    for (_a, b), (c, _) in itertools.pairwise(buckets):
        assert b == c and b % step == 0
    assert all(0 < b - a <= step for a, b in buckets)


def test_rates_and_the_recent_span() -> None:
    assert per_second(600, 0, 300_000) == 2.0 and per_second(5, 10, 10) == 0.0
    now = 1_700_000_123_456
    start, end = recent_span(now)
    assert start % 60_000 == 0 and 240_000 < now - start <= 300_000 and end == now + 1
