"""Time ranges for looking at usage: ranges aligned to windows, even buckets, and rates over a range."""

from __future__ import annotations

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.windows import MINUTE_MS, Window, window_end, window_start, windows_between, zone

HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# Named look-back spans a viewer can pick; the value is the span in milliseconds.
SPANS: dict[str, int] = {
    "1h": HOUR_MS,
    "6h": 6 * HOUR_MS,
    "24h": DAY_MS,
    "7d": 7 * DAY_MS,
    "30d": 30 * DAY_MS,
    "90d": 90 * DAY_MS,
}
MAX_CHART_WINDOWS = 2_000


def aligned_range(now: int, span_ms: int, window: Window, time_zone: str) -> tuple[int, int]:
    """The range covering the last ``span_ms`` up to ``now``, widened to whole windows of ``window`` in the zone.

    With window ``none`` the range is [now - span, now + 1) so an event at ``now`` is inside it.
    """
    if span_ms <= 0:
        raise InvalidInput("the span must be positive", [FieldError("range", "must be positive")])
    if window is Window.NONE:
        return now - span_ms, now + 1
    tz = zone(time_zone)
    end = window_end(window_start(now, window, tz), window, tz)
    start = window_start(now - span_ms + 1, window, tz)
    return start, end


def window_count(start: int, end: int, window: Window, time_zone: str, cap: int = MAX_CHART_WINDOWS) -> int:
    """How many windows [start, end) spans, counting at most ``cap + 1`` (enough to say "too many")."""
    if window is Window.NONE:
        return 1
    count = 0
    for _ in windows_between(start, end, window, zone(time_zone)):
        count += 1
        if count > cap:
            break
    return count


def even_buckets(start: int, end: int, step_ms: int) -> list[tuple[int, int]]:
    """[start, end) cut into consecutive buckets of ``step_ms`` aligned to multiples of it (last one clipped)."""
    if step_ms <= 0:
        raise ValueError("step must be positive")
    buckets: list[tuple[int, int]] = []
    current = start // step_ms * step_ms
    while current < end:
        buckets.append((max(current, start), min(current + step_ms, end)))
        current += step_ms
    return buckets


def per_second(count: int, start: int, end: int) -> float:
    """A count observed over [start, end) as a rate per second (0 for an empty range)."""
    seconds = (end - start) / 1000.0
    return count / seconds if seconds > 0 else 0.0


def recent_span(now: int, minutes: int = 5, bucket_ms: int = MINUTE_MS) -> tuple[int, int]:
    """The span "now" is measured over: the last ``minutes - 1`` whole buckets plus the current partial one.

    Ingest counts are kept in buckets of ``bucket_ms``; starting on a bucket boundary makes the count exact.
    """
    start = now // bucket_ms * bucket_ms - (minutes - 1) * bucket_ms
    return start, now + 1
