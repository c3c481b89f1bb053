"""An independent reference for Amberflo usage reports, computed from the records a test sent.

Buckets use plain datetime arithmetic in UTC (weeks start on Monday); nothing here calls meterd.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

STEP = {"HOUR": timedelta(hours=1), "DAY": timedelta(days=1), "WEEK": timedelta(weeks=1)}


def bucket(seconds: float, interval: str) -> datetime:
    t = datetime.fromtimestamp(seconds, tz=UTC)
    if interval == "HOUR":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "DAY":
        return day
    if interval == "WEEK":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def following(start: datetime, interval: str) -> datetime:
    if interval == "MONTH":
        return (
            start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        )
    return start + STEP[interval]


def fold(aggregation: str, values: list[float]) -> float | None:
    """The aggregate; None for min/max of nothing (shown as 0, compared as "no value")."""
    aggregation = aggregation.upper()
    if not values:
        return 0.0 if aggregation in ("SUM", "COUNT") else None
    if aggregation == "SUM":
        return float(sum(values))
    if aggregation == "COUNT":
        return float(len(values))
    if aggregation == "MIN":
        return float(min(values))
    return float(max(values))


def change(previous: float | None, current: float | None) -> float:
    return 0.0 if not previous or current is None else (current - previous) / abs(previous) * 100.0


def unique(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole-record dedup: a record counts once however often it was sent."""
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        key = repr(sorted((k, repr(v)) for k, v in r.items()))
        seen.setdefault(key, r)
    return list(seen.values())


def report(records: list[dict[str, Any]], query: dict[str, Any], now_s: float) -> dict[str, Any]:
    """The report Amberflo's /usage should answer for ``query`` over ``records``."""
    rng = query["timeRange"]
    start_s, end_s = rng["startTimeInSeconds"], rng.get("endTimeInSeconds", now_s)
    interval, aggregation = query["timeGroupingInterval"].upper(), query["aggregation"]
    group_by = query.get("groupBy", [])
    filters = {k: [v] if isinstance(v, str) else v for k, v in query.get("filter", {}).items()}

    def label(r: dict[str, Any], key: str) -> Any:
        return r["customerId"] if key == "customerId" else r.get("dimensions", {}).get(key)

    def chosen(r: dict[str, Any], lo: float, hi: float) -> bool:
        t = r["meterTimeInMillis"] / 1000
        return (
            r["meterApiName"] == query["meterApiName"]
            and lo <= t < hi
            and all(label(r, k) in vs for k, vs in filters.items())
        )

    live = unique(records)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in live:
        if chosen(r, start_s, end_s):
            groups.setdefault(tuple(label(r, k) for k in group_by), []).append(r)
    totals = {g: fold(aggregation, [r["meterValue"] for r in rs]) or 0.0 for g, rs in groups.items()}
    order = sorted(groups, key=lambda g: tuple((v is not None, v or "") for v in g))
    take = query.get("take")
    if take:
        order.sort(key=lambda g: totals[g] if take.get("isAscending") else -totals[g])
        order = order[: take["limit"]]
    starts = []
    current = bucket(start_s, interval)
    while current.timestamp() < end_s:
        starts.append(current)
        current = following(current, interval)
    length = end_s - start_s
    previous_lo = max(0, start_s - length)
    meters = []
    for g in order or ([()] if not group_by else []):
        rs = groups.get(g, [])
        values, before = [], None
        for s in starts:
            v = fold(aggregation, [r["meterValue"] for r in rs if bucket(r["meterTimeInMillis"] / 1000, interval) == s])
            point = {
                "value": v or 0.0,
                "secondsSinceEpochUtc": int(s.timestamp()),
                "percentageFromPrevious": change(before, v),
            }
            values.append(point)
            before = v
        prior = [
            r["meterValue"]
            for r in live
            if chosen(r, previous_lo, start_s) and tuple(label(r, k) for k in group_by) == g
        ]
        total = totals.get(g)
        meters.append(
            {
                "group": {"groupInfo": dict(zip(group_by, g, strict=True))} if group_by else None,
                "groupValue": total or 0.0,
                "percentageFromPrevious": change(fold(aggregation, prior) if prior else None, total),
                "values": values,
            }
        )
    return {
        "metadata": query,
        "secondsSinceEpochIntervals": [int(s.timestamp()) for s in starts],
        "clientMeters": meters,
    }
