"""Time windows in an IANA time zone, DST-correct: which window a moment falls in, and the windows of a range."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.timeutil import from_ms, to_ms

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


class Window(StrEnum):
    NONE = "none"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; an unknown name is invalid input."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("unknown time zone", [FieldError("time_zone", f"unknown IANA zone {name!r}")]) from None


def utc_offset_ms(ms: int, tz: ZoneInfo) -> int:
    """The zone's offset from UTC at the instant ``ms``."""
    offset = from_ms(ms).astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)


def _local_midnight(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    return to_ms(datetime(year, month, day, tzinfo=tz))


def window_start(ms: int, window: Window, tz: ZoneInfo) -> int:
    """The start (epoch ms) of the window that contains ``ms``."""
    if window is Window.MINUTE:
        offset = utc_offset_ms(ms, tz)
        return (ms + offset) // MINUTE_MS * MINUTE_MS - offset
    if window is Window.HOUR:
        offset = utc_offset_ms(ms, tz)
        return (ms + offset) // HOUR_MS * HOUR_MS - offset
    local = from_ms(ms).astimezone(tz)
    if window is Window.DAY:
        return _local_midnight(local.year, local.month, local.day, tz)
    if window is Window.WEEK:
        monday = local.date() - timedelta(days=local.weekday())
        return _local_midnight(monday.year, monday.month, monday.day, tz)
    if window is Window.MONTH:
        return _local_midnight(local.year, local.month, 1, tz)
    raise ValueError("window none has no start")


def window_end(start: int, window: Window, tz: ZoneInfo) -> int:
    """The end (exclusive) of the window that starts at ``start``."""
    if window in (Window.MINUTE, Window.HOUR):
        step = MINUTE_MS if window is Window.MINUTE else HOUR_MS
        nxt = window_start(start + step, window, tz)
        return nxt if nxt > start else window_start(start + 2 * step, window, tz)
    local = from_ms(start).astimezone(tz)
    if window in (Window.DAY, Window.WEEK):
        day = local.date() + timedelta(days=1 if window is Window.DAY else 7)
        return _local_midnight(day.year, day.month, day.day, tz)
    if window is Window.MONTH:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return _local_midnight(year, month, 1, tz)
    raise ValueError("window none has no end")


def windows_between(start: int, end: int, window: Window, tz: ZoneInfo) -> Iterator[tuple[int, int]]:
    """Every window overlapping [start, end), as (window start, window end), clipped to nothing."""
    if window is Window.NONE:
        yield start, end
        return
    current = window_start(start, window, tz)
    while current < end:
        nxt = window_end(current, window, tz)
        yield current, nxt
        current = nxt
