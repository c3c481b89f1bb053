"""An independent reference for OpenMeter meter queries over the CloudEvents a test sent.

Dedup is by (source, id), first content wins; values are read with a plain dot-path walk; windows are bucketed
with datetime arithmetic in the query's zone. Nothing here calls meterd.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def walk(data: Any, path: str) -> Any:
    """Follow ``$.a.b`` (or ``$['a']``) through nested objects; None when something is missing."""
    path = re.sub(r"\['([^']*)'\]", r".\1", path)
    for part in path.removeprefix("$.").split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def label(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def first_wins(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        kept.setdefault((e["source"], e["id"]), e)
    return list(kept.values())


def bucket(instant: datetime, window: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    local = instant.astimezone(tz)
    if window == "MINUTE":
        start = instant.replace(second=0, microsecond=0)
        return start, start + timedelta(minutes=1)
    if window == "HOUR":
        start = instant - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        return start, start + timedelta(hours=1)
    if window == "DAY":
        day = local.date()
        nxt = day + timedelta(days=1)
        return (
            datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC),
            datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC),
        )
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return (
        datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC),
        datetime(year, month, 1, tzinfo=tz).astimezone(UTC),
    )


def fold(aggregation: str, items: list[tuple[datetime, Any]]) -> float:
    if aggregation == "COUNT":
        return float(len(items))
    if aggregation == "UNIQUE_COUNT":
        return float(len({label(v) for _, v in items}))
    values = [number(v) for _, v in items]
    assert all(v is not None for v in values)
    nums = [float(v) for v in values if v is not None]
    if aggregation == "SUM":
        return sum(nums)
    if aggregation == "AVG":
        return sum(nums) / len(nums)
    if aggregation == "MIN":
        return min(nums)
    if aggregation == "MAX":
        return max(nums)
    return float(number(max(items, key=lambda item: item[0])[1]) or 0.0)  # LATEST


def usable(meter: dict[str, Any], event: dict[str, Any]) -> bool:
    if event["type"] != meter["eventType"]:
        return False
    if meter["aggregation"] == "COUNT":
        return True
    value = walk(event.get("data") or {}, meter["valueProperty"])
    return label(value) is not None if meter["aggregation"] == "UNIQUE_COUNT" else number(value) is not None


def rows(events: list[dict[str, Any]], meter: dict[str, Any], query: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``data`` rows OpenMeter should answer, in window, subject, group order."""
    tz = ZoneInfo(query.get("windowTimeZone", "UTC"))
    start = parse(query["from"]) if "from" in query else None
    end = parse(query["to"]) if "to" in query else None
    group_by = [g for g in query.get("groupBy", []) if g != "subject"]
    by_subject = "subject" in query.get("groupBy", []) or "subject" in query
    filters = query.get("filterGroupBy", {})
    cells: dict[tuple[Any, ...], list[tuple[datetime, Any]]] = {}
    for e in first_wins(events):
        when = parse(e["time"])
        if not usable(meter, e) or (start and when < start) or (end and when >= end):
            continue
        if "subject" in query and e["subject"] not in query["subject"]:
            continue
        data = e.get("data") or {}
        groups = {k: label(walk(data, meter["groupBy"][k])) for k in meter.get("groupBy", {})}
        if any(groups.get(k) not in vs for k, vs in filters.items()):
            continue
        window = bucket(when, query["windowSize"], tz) if "windowSize" in query else (start, end)
        key = (window, e["subject"] if by_subject else None, tuple(groups[k] for k in group_by))
        value = None if meter["aggregation"] == "COUNT" else walk(data, meter["valueProperty"])
        cells.setdefault(key, []).append((when, value))
    out = []
    for (window, subject, groups), items in cells.items():
        out.append(
            {
                "windowStart": window[0],
                "windowEnd": window[1],
                "subject": subject,
                "groupBy": dict(zip(group_by, groups, strict=True)),
                "value": round(fold(meter["aggregation"], items), 6),
            }
        )
    out.sort(
        key=lambda r: (r["windowStart"], r["subject"] or "", tuple((v is None, v or "") for v in r["groupBy"].values()))
    )
    return out


def normalise(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """meterd's ``data`` rows in the reference's shape."""
    return [
        {
            "windowStart": parse(r["windowStart"]),
            "windowEnd": parse(r["windowEnd"]),
            "subject": r["subject"],
            "groupBy": r["groupBy"],
            "value": round(r["value"], 6),
        }
        for r in data
    ]
