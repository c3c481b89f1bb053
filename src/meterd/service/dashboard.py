"""What the dashboard shows, computed through the service: totals per meter, rates, outcome timelines."""

from __future__ import annotations

from dataclasses import dataclass, field

from meterd.core.models import Aggregation, Meter, Rejection
from meterd.core.query import CUSTOMER, QuerySpec, Take
from meterd.core.ranges import even_buckets, per_second, recent_span
from meterd.core.windows import Window
from meterd.service.meterd import Meterd

PAGE = 1000


@dataclass(frozen=True, slots=True)
class MeterTotal:
    """One meter's total over a range (by its own aggregation) and how many live events made it."""

    meter: str
    aggregation: str
    unit: str | None
    total: float | None
    events: int


@dataclass(slots=True)
class Timeline:
    """Ingest outcome counts per bucket: ``series[(surface, outcome)][i]`` counts bucket ``buckets[i]``."""

    buckets: list[tuple[int, int]]
    series: dict[tuple[str, str], list[int]] = field(default_factory=dict)


async def meter_totals(
    meterd: Meterd, tenant: str, start: int, end: int, customers: tuple[str, ...] | None = None
) -> list[MeterTotal]:
    """Every known meter's total over [start, end) (optionally for some customers), busiest first."""
    meters: dict[str, Meter] = {m.key: m for m in await meterd.store.list_meters(tenant)}
    totals = await meterd.query(tenant, QuerySpec((), start, end, customers=customers))
    counts = await meterd.query(
        tenant, QuerySpec((), start, end, customers=customers, aggregation=Aggregation.COUNT)
    )
    value = {row.meter: row.value for row in totals}
    events = {row.meter: int(row.value or 0) for row in counts}
    keys = sorted(set(meters) | set(value), key=lambda k: (-events.get(k, 0), k))
    found: list[MeterTotal] = []
    for key in keys:
        meter = meters.get(key)
        aggregation = (meter.aggregation if meter else Aggregation.SUM).value
        found.append(MeterTotal(key, aggregation, meter.unit if meter else None, value.get(key), events.get(key, 0)))
    return found


async def top_customers(meterd: Meterd, tenant: str, meter: str, start: int, end: int, limit: int = 10) -> list[
    tuple[str, float | None]
]:
    """The ``limit`` customers with the largest total of ``meter`` over [start, end)."""
    spec = QuerySpec((meter,), start, end, Window.NONE, group_by=(CUSTOMER,), take=Take(limit))
    return [(str(row.group[CUSTOMER]), row.value) for row in await meterd.query(tenant, spec)]


async def ingest_rate(meterd: Meterd, tenant: str, now: int) -> float:
    """Accepted events per second over the last few minutes (by ingest time)."""
    start, end = recent_span(now)
    stats = await meterd.store.ingest_stats(tenant, start, end, samples=0)
    accepted = sum(n for (_, _, outcome), n in stats.counts.items() if outcome == "accepted")
    return per_second(accepted, start, now)


async def outcome_totals(meterd: Meterd, tenant: str, start: int, end: int) -> dict[str, int]:
    """Ingest outcome counts over [start, end), every outcome present (zero when none)."""
    stats = await meterd.store.ingest_stats(tenant, start, end, samples=0)
    totals = dict.fromkeys(("accepted", "duplicate", "conflict", "rejected"), 0)
    for (_, _, outcome), n in stats.counts.items():
        totals[outcome] = totals.get(outcome, 0) + n
    return totals


async def outcome_timeline(meterd: Meterd, tenant: str, start: int, end: int, step_ms: int) -> Timeline:
    """Outcome counts by surface for each bucket of ``step_ms`` in [start, end)."""
    timeline = Timeline(even_buckets(start, end, step_ms))
    for index, (a, b) in enumerate(timeline.buckets):
        stats = await meterd.store.ingest_stats(tenant, a, b, samples=0)
        for (_, surface, outcome), n in stats.counts.items():
            counts = timeline.series.setdefault((surface, outcome), [0] * len(timeline.buckets))
            counts[index] += n
    timeline.series = dict(sorted(timeline.series.items()))
    return timeline


async def rejections_in_group(
    meterd: Meterd, tenant: str, surface: str, message: str, start: int, end: int
) -> list[Rejection]:
    """Every kept rejection of one (surface, message) group created in [start, end)."""
    found: list[Rejection] = []
    cursor: str | None = None
    while True:
        page = await meterd.store.list_rejections(tenant, surface, PAGE, cursor)
        found.extend(r for r in page.items if r.message == message and start <= r.created_at < end)
        if page.next_cursor is None or not page.items:
            return found
        cursor = page.next_cursor
