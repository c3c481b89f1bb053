"""Contract: query answers, checked against values worked out by hand (and, broadly, against ``evaluate``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from meterd.core.errors import InvalidInput
from meterd.core.models import Aggregation, Meter, UsageEvent
from meterd.core.query import DimensionFilter, FilterOp, QuerySpec, Row, Take, evaluate
from meterd.core.windows import Window
from meterd.storage.base import EventFilter, Store

H = 3_600_000
DAY = 24 * H
T = 1_717_372_800_000  # 2024-06-03T00:00:00Z, a Monday


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def ev(eid: str, customer: str, t: int, value: float, meter: str = "api", **dims: object) -> UsageEvent:
    return UsageEvent(eid, meter, customer, t, value, dims)  # type: ignore[arg-type]


BASE = [
    ev("e1", "acme", T + H, 1, region="eu"),
    ev("e2", "acme", T + H + H // 2, 2, region="us"),
    ev("e3", "bolt", T + 2 * H, 4, region="eu"),
    ev("e4", "acme", T + 25 * H, 8),
    ev("e5", "bolt", T + 26 * H, 16, region="eu"),
    ev("e6", "cado", T + 49 * H, 32, region="us", user="u1"),
]


@pytest.fixture
async def loaded(store: Store) -> Store:
    await store.ingest("t", BASE[:3], now=T)
    await store.ingest("t", BASE[3:], now=T)
    await store.ingest("noise", [ev("n1", "acme", T + H, 1000)], now=T)
    return store


def spec(**kw: object) -> QuerySpec:
    base: dict[str, object] = {"meters": ("api",), "start": T, "end": T + 3 * DAY}
    base.update(kw)
    return QuerySpec(**base)  # type: ignore[arg-type]


def table(rows: list[Row]) -> list[tuple[object, ...]]:
    return [(r.start, r.end, tuple(r.group.values()), r.value) for r in rows]


async def test_sum_by_customer_over_the_whole_range(loaded: Store) -> None:
    rows = await loaded.query("t", spec(group_by=("customer",)), now=T)
    assert rows == [
        Row("api", T, T + 3 * DAY, {"customer": "acme"}, 11.0),
        Row("api", T, T + 3 * DAY, {"customer": "bolt"}, 20.0),
        Row("api", T, T + 3 * DAY, {"customer": "cado"}, 32.0),
    ]


async def test_daily_windows_sparse_and_dense(loaded: Store) -> None:
    rows = await loaded.query("t", spec(window=Window.DAY, group_by=("customer",)), now=T)
    assert table(rows) == [
        (T, T + DAY, ("acme",), 3.0), (T + DAY, T + 2 * DAY, ("acme",), 8.0),
        (T, T + DAY, ("bolt",), 4.0), (T + DAY, T + 2 * DAY, ("bolt",), 16.0),
        (T + 2 * DAY, T + 3 * DAY, ("cado",), 32.0),
    ]
    dense = await loaded.query("t", spec(window=Window.DAY, group_by=("customer",), dense=True,
                                         aggregation=Aggregation.MIN), now=T)
    assert [r.value for r in dense] == [1.0, 8.0, None, 4.0, 16.0, None, None, None, 32.0]
    dense_sum = await loaded.query("t", spec(window=Window.DAY, dense=True), now=T)
    assert [r.value for r in dense_sum] == [7.0, 24.0, 32.0]


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        (Aggregation.SUM, [11.0, 20.0, 32.0]),
        (Aggregation.COUNT, [3.0, 2.0, 1.0]),
        (Aggregation.MIN, [1.0, 4.0, 32.0]),
        (Aggregation.MAX, [8.0, 16.0, 32.0]),
        (Aggregation.AVG, [11 / 3, 10.0, 32.0]),
        (Aggregation.LATEST, [8.0, 16.0, 32.0]),
    ],
)
async def test_every_simple_aggregation(loaded: Store, aggregation: Aggregation, expected: list[float]) -> None:
    rows = await loaded.query("t", spec(group_by=("customer",), aggregation=aggregation), now=T)
    assert [r.value for r in rows] == expected


async def test_meter_aggregation_and_unique_count(loaded: Store) -> None:
    await loaded.put_meter("t", Meter("api", Aggregation.UNIQUE_COUNT, unique_dimension="region"))
    rows = await loaded.query("t", spec(group_by=("customer",)), now=T)
    assert [r.value for r in rows] == [2.0, 1.0, 1.0]
    daily = await loaded.query("t", spec(window=Window.DAY), now=T)
    assert [r.value for r in daily] == [2.0, 1.0, 1.0]  # day 1: acme has no region, bolt eu
    top = await loaded.query("t", spec(group_by=("customer",), take=Take(1)), now=T)
    assert table(top) == [(T, T + 3 * DAY, ("acme",), 2.0)]
    users = await loaded.query("t", spec(aggregation=Aggregation.UNIQUE_COUNT, unique_dimension="user"), now=T)
    assert [r.value for r in users] == [1.0]
    nothing = await loaded.query("t", spec(aggregation=Aggregation.UNIQUE_COUNT, unique_dimension=None,
                                           meters=("api",)), now=T)
    assert [r.value for r in nothing] == [2.0]  # the meter's own unique dimension applies


async def test_partial_hours_at_both_ends(loaded: Store) -> None:
    rows = await loaded.query("t", spec(start=T + H + 15 * 60_000, end=T + 26 * H), now=T)
    assert [r.value for r in rows] == [14.0]
    rows = await loaded.query("t", spec(start=T + H + 15 * 60_000, end=T + 26 * H + 1), now=T)
    assert [r.value for r in rows] == [30.0]


async def test_group_by_dimension_and_filters_treat_missing_as_null(loaded: Store) -> None:
    rows = await loaded.query("t", spec(group_by=("region",)), now=T)
    assert [(r.group, r.value) for r in rows] == [({"region": None}, 8.0), ({"region": "eu"}, 21.0),
                                                  ({"region": "us"}, 34.0)]

    async def value(*filters: DimensionFilter) -> list[float | None]:
        return [r.value for r in await loaded.query("t", spec(filters=filters), now=T)]

    assert await value(DimensionFilter("region", FilterOp.EQ, ("eu",))) == [21.0]
    assert await value(DimensionFilter("region", FilterOp.NE, ("eu",))) == [42.0]
    assert await value(DimensionFilter("region", FilterOp.NIN, ("eu", None))) == [34.0]
    assert await value(DimensionFilter("region", FilterOp.IN, (None,))) == [8.0]
    assert await value(DimensionFilter("region", FilterOp.IN, ("eu", "us"))) == [55.0]
    assert await value(DimensionFilter("region", FilterOp.EQ, ("mars",))) == []
    assert await value(DimensionFilter("user", FilterOp.EQ, ("u1",))) == [32.0]
    assert await value(DimensionFilter("region", FilterOp.EQ, ("us",)), DimensionFilter("user", FilterOp.EQ, (None,))) \
        == [2.0]
    by_both = await loaded.query("t", spec(group_by=("customer", "region"),
                                           filters=(DimensionFilter("region", FilterOp.NE, ("us",)),)), now=T)
    assert [(tuple(r.group.values()), r.value) for r in by_both] == [
        (("acme", None), 8.0), (("acme", "eu"), 1.0), (("bolt", "eu"), 20.0)]


async def test_customer_filter(loaded: Store) -> None:
    rows = await loaded.query("t", spec(customers=("bolt", "cado", "nobody")), now=T)
    assert [r.value for r in rows] == [52.0]
    assert await loaded.query("t", spec(customers=()), now=T) == []
    assert await loaded.query("t", spec(customers=("nobody",)), now=T) == []


async def test_take_descending_and_ascending(loaded: Store) -> None:
    desc = await loaded.query("t", spec(group_by=("customer",), take=Take(2)), now=T)
    assert [(r.group["customer"], r.value) for r in desc] == [("cado", 32.0), ("bolt", 20.0)]
    asc = await loaded.query("t", spec(group_by=("customer",), take=Take(1, descending=False), window=Window.DAY),
                             now=T)
    assert table(asc) == [(T, T + DAY, ("acme",), 3.0), (T + DAY, T + 2 * DAY, ("acme",), 8.0)]


async def test_meters_all_and_excluded(loaded: Store) -> None:
    await loaded.ingest("t", [ev("x1", "acme", T + H, 5, meter="storage")], now=T)
    rows = await loaded.query("t", spec(meters=()), now=T)
    assert [(r.meter, r.value) for r in rows] == [("api", 63.0), ("storage", 5.0)]
    rows = await loaded.query("t", spec(meters=(), exclude_meters=("api",)), now=T)
    assert [(r.meter, r.value) for r in rows] == [("storage", 5.0)]
    assert await loaded.query("t", spec(meters=("ghost",)), now=T) == []


async def test_week_month_minute_hour_windows(loaded: Store) -> None:
    week = await loaded.query("t", spec(window=Window.WEEK), now=T)
    assert table(week) == [(T, T + 7 * DAY, (), 63.0)]
    month = await loaded.query("t", spec(window=Window.MONTH, start=T - 5 * DAY, end=T + 30 * DAY), now=T)
    assert table(month) == [(ms("2024-06-01T00:00:00"), ms("2024-07-01T00:00:00"), (), 63.0)]
    minute = await loaded.query("t", spec(window=Window.MINUTE, start=T, end=T + 2 * H), now=T)
    assert table(minute) == [(T + H, T + H + 60_000, (), 1.0), (T + 90 * 60_000, T + 91 * 60_000, (), 2.0)]
    hour = await loaded.query("t", spec(window=Window.HOUR, end=T + 3 * H, dense=True), now=T)
    assert [r.value for r in hour] == [0.0, 1.0 + 2.0, 4.0]


async def test_day_windows_across_fall_back_in_berlin(store: Store) -> None:
    events = [
        ev("a", "c", ms("2024-10-26T21:30:00"), 1),  # Oct 26, 23:30 CEST
        ev("b", "c", ms("2024-10-26T22:30:00"), 2),  # Oct 27, 00:30 CEST
        ev("c", "c", ms("2024-10-27T00:30:00"), 4),  # Oct 27, 02:30 CEST
        ev("d", "c", ms("2024-10-27T01:30:00"), 8),  # Oct 27, 02:30 CET (the repeated hour)
        ev("e", "c", ms("2024-10-27T22:30:00"), 16),  # Oct 27, 23:30 CET
        ev("f", "c", ms("2024-10-27T23:30:00"), 32),  # Oct 28, 00:30 CET
    ]
    await store.ingest("t", events, now=T)
    q = QuerySpec(("api",), ms("2024-10-26T00:00:00"), ms("2024-10-29T00:00:00"), Window.DAY, "Europe/Berlin")
    assert table(await store.query("t", q, now=T)) == [
        (ms("2024-10-25T22:00:00"), ms("2024-10-26T22:00:00"), (), 1.0),
        (ms("2024-10-26T22:00:00"), ms("2024-10-27T23:00:00"), (), 30.0),  # 25 hours long
        (ms("2024-10-27T23:00:00"), ms("2024-10-28T23:00:00"), (), 32.0),
    ]
    hours = QuerySpec(("api",), ms("2024-10-27T00:00:00"), ms("2024-10-27T02:00:00"), Window.HOUR, "Europe/Berlin")
    assert table(await store.query("t", hours, now=T)) == [
        (ms("2024-10-27T00:00:00"), ms("2024-10-27T01:00:00"), (), 4.0),
        (ms("2024-10-27T01:00:00"), ms("2024-10-27T02:00:00"), (), 8.0),
    ]
    kolkata = QuerySpec(("api",), ms("2024-10-26T00:00:00"), ms("2024-10-28T00:00:00"), Window.DAY, "Asia/Kolkata")
    assert table(await store.query("t", kolkata, now=T)) == [
        (ms("2024-10-26T18:30:00"), ms("2024-10-27T18:30:00"), (), 1 + 2 + 4 + 8.0),
        (ms("2024-10-27T18:30:00"), ms("2024-10-28T18:30:00"), (), 16 + 32.0),
    ]


async def test_duration_counts_intervals_and_open_ones_up_to_now(store: Store) -> None:
    await store.put_meter("t", Meter("conn", Aggregation.DURATION))
    await store.ingest("t", [
        UsageEvent("i1", "conn", "acme", T + H, 1.0, {}, T + 3 * H),
        UsageEvent("i2", "conn", "acme", T + 2 * H, 2.0, {}, None),
        UsageEvent("i3", "conn", "acme", T - 5 * H, 1.0, {}, T + H // 2),
    ], now=T)
    q = QuerySpec(("conn",), T, T + 4 * H, Window.HOUR)
    rows = await store.query("t", q, now=T + 3 * H + 30 * 60_000)
    assert table(rows) == [(T, T + H, (), 1800.0), (T + H, T + 2 * H, (), 3600.0),
                           (T + 2 * H, T + 3 * H, (), 3600.0 + 7200.0), (T + 3 * H, T + 4 * H, (), 3600.0)]


async def test_voids_amends_and_late_events_keep_answers_exact(loaded: Store) -> None:
    await loaded.void_event("t", "native", "e5", "x", None, T)
    await loaded.amend_event("t", "native", "e1", ev("", "acme", T + H, 100, region="eu"), "x", None, T)
    await loaded.ingest("t", [ev("late", "bolt", T + 2 * H + 1, 64, region="eu")], now=T + 10 * DAY)
    rows = await loaded.query("t", spec(group_by=("customer",), window=Window.DAY), now=T)
    assert table(rows) == [
        (T, T + DAY, ("acme",), 102.0), (T + DAY, T + 2 * DAY, ("acme",), 8.0),
        (T, T + DAY, ("bolt",), 68.0), (T + 2 * DAY, T + 3 * DAY, ("cado",), 32.0),
    ]
    mins = await loaded.query("t", spec(group_by=("region",), aggregation=Aggregation.MAX), now=T)
    assert [(r.group["region"], r.value) for r in mins] == [(None, 8.0), ("eu", 100.0), ("us", 32.0)]
    await loaded.void_event("t", "native", "e3", "x", None, T)
    lows = await loaded.query("t", spec(group_by=("customer",), aggregation=Aggregation.MIN), now=T)
    assert [r.value for r in lows] == [2.0, 64.0, 32.0]


async def test_invalid_queries_are_rejected(loaded: Store) -> None:
    with pytest.raises(InvalidInput):
        await loaded.query("t", spec(end=T), now=T)
    with pytest.raises(InvalidInput):
        await loaded.query("t", spec(time_zone="Mars/Olympus"), now=T)
    with pytest.raises(InvalidInput):
        await loaded.query("t", spec(window=Window.MINUTE, end=T + 400 * DAY), now=T)
    with pytest.raises(InvalidInput):
        await loaded.query("nobody", spec(window=Window.MINUTE, end=T + 400 * DAY), now=T)


SPECS = [
    spec(**kw)
    for kw in (
        {},
        {"window": Window.HOUR, "group_by": ("customer", "region")},
        {"window": Window.DAY, "time_zone": "America/New_York", "group_by": ("region",)},
        {"window": Window.DAY, "time_zone": "Australia/Lord_Howe", "aggregation": Aggregation.AVG},
        {"window": Window.HOUR, "time_zone": "Asia/Kathmandu", "aggregation": Aggregation.MAX},
        {"window": Window.WEEK, "time_zone": "Europe/Berlin", "group_by": ("customer",), "dense": True},
        {"window": Window.MONTH, "aggregation": Aggregation.COUNT, "group_by": ("user",)},
        {"start": T + 30 * 60_000, "end": T + 49 * H + 1, "window": Window.DAY, "group_by": ("customer",)},
        {"aggregation": Aggregation.LATEST, "group_by": ("region",), "window": Window.HOUR},
        {"aggregation": Aggregation.UNIQUE_COUNT, "unique_dimension": "region", "group_by": ("customer",),
         "take": Take(2, descending=False)},
        {"filters": (DimensionFilter("region", FilterOp.IN, ("eu", None)),), "group_by": ("customer",),
         "window": Window.DAY, "aggregation": Aggregation.MIN},
        {"filters": (DimensionFilter("user", FilterOp.NE, ("u1",)),), "group_by": ("region",)},
    )
]


async def test_answers_equal_evaluate_over_the_live_events(loaded: Store) -> None:
    await loaded.void_event("t", "native", "e2", "x", None, T)
    await loaded.ingest("t", [ev(f"x{i}", f"c{i % 4}", T + i * 7_919_000, i % 7, region=["eu", "us", "ap"][i % 3])
                              for i in range(40)], now=T)
    live = [s.event for s in (await loaded.list_events("t", EventFilter(), limit=1000)).items
            if s.status.value == "live"]
    meters = {m.key: m for m in await loaded.list_meters("t")}
    for q, now in itertools.product(SPECS, (T,)):
        assert await loaded.query("t", q, now) == evaluate(live, meters, q, now), q
