"""Time parsing and formatting: everything inside meterd is UTC epoch milliseconds."""

from __future__ import annotations

import math
import time as _time
from datetime import UTC, datetime, timedelta

from meterd.core.errors import FieldError

MIN_MS = 0  # 1970-01-01
MAX_MS = 253402127999999  # 9999-12-29T23:59:59.999Z: local times in every zone (±14 h) stay representable
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def now_ms() -> int:
    return _time.time_ns() // 1_000_000


def to_ms(dt: datetime) -> int:
    """An aware datetime as epoch ms (floored to the millisecond)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return (dt - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)


def format_ms(ms: int) -> str:
    """RFC 3339 with milliseconds and ``Z``: ``2024-01-02T03:04:05.678Z``."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_seconds(ms: int) -> str:
    """RFC 3339 to the second with ``Z``: ``2024-01-02T03:04:05Z``."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, path: str = "time", *, require_zone: bool = True) -> int:
    """Parse an RFC 3339 string (any offset) or epoch seconds (int/float) into epoch ms.

    Raises ``ValueError`` carrying a :class:`FieldError` when the value is not a time.
    """
    if isinstance(value, bool):
        raise TimeParseError(FieldError(path, "must be an RFC 3339 time or epoch seconds"))
    if isinstance(value, int):
        ms = value * 1000
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise TimeParseError(FieldError(path, "must be a finite number of epoch seconds"))
        ms = int(value * 1000)
    elif isinstance(value, str):
        ms = _parse_text(value, path, require_zone)
    else:
        raise TimeParseError(FieldError(path, "must be an RFC 3339 time or epoch seconds"))
    if not MIN_MS <= ms <= MAX_MS:
        raise TimeParseError(FieldError(path, "is out of range (1970 to 9999)"))
    return ms


def _parse_text(text: str, path: str, require_zone: bool) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        candidate = text.strip()
        if candidate.endswith("z"):
            candidate = candidate[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(candidate)
        except ValueError:
            raise TimeParseError(FieldError(path, f"is not an RFC 3339 time: {text[:64]!r}")) from None
    if dt.tzinfo is None:
        if require_zone:
            raise TimeParseError(FieldError(path, "needs a time zone offset or Z"))
        dt = dt.replace(tzinfo=UTC)
    return to_ms(dt)


class TimeParseError(ValueError):
    """A value is not a valid time; ``error`` says where and why."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error
