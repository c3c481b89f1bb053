"""Shared builders for PostgreSQL tests: random event batches and a spread of query specs."""

from __future__ import annotations

import random
from collections.abc import Iterator

from meterd.core.models import Aggregation, UsageEvent
from meterd.core.query import DimensionFilter, FilterOp, QuerySpec, Take, Window

T0 = 1_714_521_600_000  # 2024-05-01T00:00:00Z
HOUR = 3_600_000
DAY = 24 * HOUR
METERS = ("m1", "m2", "m3")
CUSTOMERS = ("c1", "c2", "c3", "c4")


def random_event(rng: random.Random, event_id: str, days: int = 10) -> UsageEvent:
    """An event with dyadic values (sums are exact in any order) and a mix of dimensions."""
    dims: dict[str, str | int | float | bool | None] = {}
    roll = rng.random()
    if roll < 0.8:
        dims["region"] = rng.choice(["eu", "us", "ap"])
    elif roll < 0.9:
        dims["region"] = None
    if rng.random() < 0.5:
        dims["user"] = f"u{rng.randrange(40)}"
    if rng.random() < 0.2:
        dims["tier"] = rng.choice([1, 2, 2.5, True])
    end = None
    time = T0 + rng.randrange(days * DAY)
    if rng.random() < 0.1:
        end = time + rng.randrange(5 * HOUR)
    return UsageEvent(event_id, rng.choice(METERS), rng.choice(CUSTOMERS), time, rng.randrange(-8, 40) / 4, dims, end)


def specs(now: int) -> Iterator[QuerySpec]:
    """Specs that take every rollup and reference path (levels, zones, filters, groups, aggregations)."""
    start, end = T0, T0 + 10 * DAY
    yield QuerySpec(("m1",), start, end, Window.DAY, group_by=("customer",))
    yield QuerySpec(("m1",), start, end, Window.DAY, group_by=("customer", "region"))
    yield QuerySpec(("m1", "m2"), start, end, Window.HOUR, group_by=("customer",), dense=True)
    yield QuerySpec(("m2",), start + 3 * HOUR, end - 5 * HOUR, Window.DAY, group_by=("customer",))
    yield QuerySpec(("m1",), start, end, Window.DAY, "Europe/Berlin", group_by=("customer",))
    yield QuerySpec(("m1",), start, end, Window.DAY, "Asia/Kolkata", group_by=("customer",))
    yield QuerySpec(("m1",), start, end, Window.WEEK, group_by=("region",))
    yield QuerySpec(("m3",), start, end, Window.MONTH, "America/New_York")
    yield QuerySpec((), start, end, Window.NONE, group_by=("customer",))
    yield QuerySpec((), start, end, Window.DAY, exclude_meters=("m2",))
    yield QuerySpec(("m1", "m3"), start, end, Window.DAY, customers=("c1", "c3"), group_by=("customer",))
    region_in = DimensionFilter("region", FilterOp.IN, ("eu", None))
    yield QuerySpec(("m1",), start, end, Window.DAY, filters=(region_in,), group_by=("customer",))
    yield QuerySpec(("m1",), start, end, Window.NONE, filters=(DimensionFilter("region", FilterOp.NE, ("us",)),))
    yield QuerySpec(("m2",), start, end, Window.DAY, group_by=("user",))
    yield QuerySpec(("m2",), start, end, Window.DAY, group_by=("tier",))
    yield QuerySpec(("m1",), start, end, Window.MINUTE, customers=("c2",))
    for agg in Aggregation:
        yield QuerySpec(
            ("m1", "m2"), start, end, Window.DAY, group_by=("customer",), aggregation=agg, unique_dimension="user"
        )
    yield QuerySpec(("m1",), start, end, Window.DAY, group_by=("customer",), take=Take(2))
    yield QuerySpec(("m1",), start, end, Window.NONE, group_by=("customer", "region"), take=Take(3, False))
    yield QuerySpec(("m2",), start, end, Window.DAY, group_by=("region",), aggregation=Aggregation.MIN, dense=True)
    yield QuerySpec(("m2",), start, end, Window.HOUR, aggregation=Aggregation.MAX)
