"""Helpers every Store implementation shares: stats buckets, rejection grouping, cursors, replacement ids."""

from __future__ import annotations

from collections.abc import Sequence

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Rejection

STATS_BUCKET_MS = 60_000


def bump_stats(
    table: dict[tuple[str, str, str, str, int], int], tenant: str, meter: str, surface: str, outcome: str, now: int
) -> None:
    """Count one ingest outcome in its minute bucket."""
    key = (tenant, meter, surface, outcome, now // STATS_BUCKET_MS * STATS_BUCKET_MS)
    table[key] = table.get(key, 0) + 1


def group_rejections(rejections: Sequence[Rejection], samples: int) -> list[tuple[str, str, int, list[Rejection]]]:
    """Group rejections by (surface, message), largest group first, with up to ``samples`` examples each."""
    groups: dict[tuple[str, str], list[Rejection]] = {}
    for r in rejections:
        groups.setdefault((r.surface, r.message), []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [(surface, message, len(rs), rs[:samples]) for (surface, message), rs in ordered]


def page_after(sorted_keys: Sequence[str], cursor: str | None, limit: int) -> tuple[list[str], str | None]:
    """Keys after ``cursor`` (exclusive), at most ``limit``, and the cursor of the next page."""
    remaining = [k for k in sorted_keys if cursor is None or k > cursor]
    page = remaining[:limit]
    return page, (page[-1] if len(remaining) > limit else None)


def replacement_id(event_id: str, now: int) -> str:
    """The id given to an amendment's replacement when the caller names none."""
    return f"{event_id}~{now}"


def seq_cursor(cursor: str | None) -> int:
    """The sequence number a page cursor stands for (0 = from the start); a malformed one is invalid input."""
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidInput("invalid cursor", [FieldError("cursor", "must be a cursor returned by a listing")])
    return int(cursor)
