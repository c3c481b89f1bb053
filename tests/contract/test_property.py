"""Property: random ingest/void/amend histories give the answers of a naive reference written here.

The reference shares no code with ``meterd.core.query``: it models dedup, corrections and windows itself and
folds the live events with plain loops. Values are multiples of 0.5, so sums are exact in any order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.core.models import Aggregation, Meter, Outcome, UsageEvent
from meterd.core.query import DimensionFilter, FilterOp, QuerySpec, Row, Take
from meterd.core.windows import Window

H = 3_600_000
START = int(datetime(2024, 10, 26, 12, tzinfo=UTC).timestamp() * 1000)  # around Europe's fall-back
SPAN = 3 * 24 * H
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
CUSTOMERS = ["c0", "c1", "c2"]
REGIONS = ["eu", "us", 7, None]


# --- the reference model -----------------------------------------------------------------------------
@dataclass
class Model:
    events: dict[tuple[str, str], UsageEvent]
    live: dict[tuple[str, str], bool]
    order: list[tuple[str, str]]

    @classmethod
    def empty(cls) -> Model:
        return cls({}, {}, [])

    def content(self, e: UsageEvent) -> tuple[Any, ...]:
        dims = tuple(sorted((k, type(v).__name__, v) for k, v in e.dimensions.items()))
        return (e.meter, e.customer, e.time, e.value, dims, e.end_time)

    def ingest(self, e: UsageEvent) -> Outcome:
        ident = (e.surface, e.id)
        if ident in self.events:
            same = self.content(self.events[ident]) == self.content(e)
            return Outcome.DUPLICATE if same else Outcome.CONFLICT
        self.events[ident] = e
        self.live[ident] = True
        self.order.append(ident)
        return Outcome.ACCEPTED

    def alive(self) -> list[UsageEvent]:
        return [self.events[i] for i in self.order if self.live[i]]


def local_start(t: int, window: Window, tz: ZoneInfo) -> int:
    """The window containing ``t``, straight from the calendar."""
    dt = datetime.fromtimestamp(t / 1000, tz)
    if window is Window.MINUTE:
        return t - (dt.second * 1000 + dt.microsecond // 1000)
    if window is Window.HOUR:
        return t - ((dt.minute * 60 + dt.second) * 1000 + dt.microsecond // 1000)
    day = dt.date()
    if window is Window.WEEK:
        day = day - timedelta(days=day.weekday())
    if window is Window.MONTH:
        day = day.replace(day=1)
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def window_list(q: QuerySpec) -> list[tuple[int, int]]:
    if q.window is Window.NONE:
        return [(q.start, q.end)]
    tz = ZoneInfo(q.time_zone)
    step = {Window.MINUTE: 60_000, Window.HOUR: H}.get(q.window, 20 * H)
    out: list[tuple[int, int]] = []
    w = local_start(q.start, q.window, tz)
    while w < q.end:
        probe = w + step
        nxt = local_start(probe, q.window, tz)
        while nxt <= w:
            probe += step
            nxt = local_start(probe, q.window, tz)
        out.append((w, nxt))
        w = nxt
    return out


def reference(model: Model, meters: dict[str, Meter], q: QuerySpec, now: int) -> list[Row]:
    windows = window_list(q)
    rows: list[Row] = []
    names = sorted({e.meter for e in model.alive()})
    for meter in names:
        if (q.meters and meter not in q.meters) or meter in q.exclude_meters:
            continue
        m = meters.get(meter)
        agg = q.aggregation or (m.aggregation if m else Aggregation.SUM)
        unique = q.unique_dimension or (m.unique_dimension if m else None)
        picked = [e for e in model.alive() if e.meter == meter and keep(e, q)]
        cells: dict[tuple[Any, ...], dict[int, list[tuple[UsageEvent, float]]]] = {}
        for e in picked:
            group = tuple(e.customer if k == "customer" else e.dimensions.get(k) for k in q.group_by)
            for w_start, w_end in windows:
                if agg is Aggregation.DURATION:
                    stop = e.end_time if e.end_time is not None else min(q.end, now)
                    lo, hi = max(e.time, q.start, w_start), min(stop, q.end, w_end)
                    if hi > lo:
                        cells.setdefault(group, {}).setdefault(w_start, []).append((e, (hi - lo) / 1000))
                elif w_start <= e.time < w_end and q.start <= e.time < q.end:
                    cells.setdefault(group, {}).setdefault(w_start, []).append((e, 1.0))
        groups = sorted(cells, key=lambda g: [(0, "") if v is None else (1, f"{type(v).__name__}:{v}") for v in g])
        if q.take is not None:
            ranks = {g: rank(fold([x for part in cells[g].values() for x in part], agg, unique), q.take)
                     for g in groups}
            groups = sorted(groups, key=ranks.__getitem__)[: q.take.limit]
        for g in groups:
            for w_start, w_end in windows:
                part = cells[g].get(w_start)
                if part is None and not q.dense:
                    continue
                value = fold(part or [], agg, unique)
                rows.append(Row(meter, w_start, w_end, dict(zip(q.group_by, g, strict=True)), value))
    return rows


def rank(value: float | None, take: Take) -> float:
    if value is None:
        return float("inf")
    return -value if take.descending else value


def keep(e: UsageEvent, q: QuerySpec) -> bool:
    if q.customers is not None and e.customer not in q.customers:
        return False
    for f in q.filters:
        inside = e.dimensions.get(f.key) in f.values
        if inside != (f.op in (FilterOp.EQ, FilterOp.IN)):
            return False
    return True


def fold(part: list[tuple[UsageEvent, float]], agg: Aggregation, unique: str | None) -> float | None:
    values = [e.value for e, _ in part]
    if agg is Aggregation.SUM:
        return float(sum(values))
    if agg is Aggregation.DURATION:
        return float(sum(e.value * w for e, w in part))
    if agg is Aggregation.COUNT:
        return float(len(values))
    if agg is Aggregation.UNIQUE_COUNT:
        return float(len({e.dimensions.get(unique) for e, _ in part} - {None})) if unique else 0.0
    if not values:
        return None
    if agg is Aggregation.MIN:
        return min(values)
    if agg is Aggregation.MAX:
        return max(values)
    if agg is Aggregation.AVG:
        return sum(values) / len(values)
    return max(part, key=lambda x: (x[0].time, x[0].id))[0].value


# --- strategies ------------------------------------------------------------------------------------------
def event_strategy(meter: str) -> st.SearchStrategy[UsageEvent]:
    return st.builds(
        lambda i, c, t, v, region, end: UsageEvent(
            f"{meter}-{i}", meter, c, START + t, v / 2, {} if region == "missing" else {"region": region},
            None if end is None else START + t + end),
        st.integers(0, 25), st.sampled_from(CUSTOMERS), st.integers(0, SPAN), st.integers(0, 20),
        st.sampled_from([*REGIONS, "missing"]),
        st.none() if meter != "conn" else st.one_of(st.none(), st.integers(0, 5 * H)),
    )


ops = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(st.one_of(event_strategy("api"), event_strategy("conn")), max_size=12)),
        st.tuples(st.just("void"), st.integers(0, 40)),
        st.tuples(st.just("amend"), st.integers(0, 40), st.integers(0, 20), st.integers(-3 * H, 3 * H)),
    ),
    min_size=1,
    max_size=8,
)

queries = st.builds(
    lambda meters, window, zone, start, length, group, flt, customers, agg, take, dense: QuerySpec(
        meters, START + start, START + start + length, window, zone, group, customers, flt, agg,
        "region" if agg is Aggregation.UNIQUE_COUNT else None, take, dense),
    st.sampled_from([(), ("api",), ("conn",)]),
    st.sampled_from([Window.NONE, Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH]),
    st.sampled_from(ZONES),
    st.integers(-2 * H, SPAN),
    st.integers(1, 2 * SPAN),
    st.sampled_from([(), ("customer",), ("region",), ("customer", "region")]),
    st.lists(st.builds(DimensionFilter, st.just("region"), st.sampled_from(list(FilterOp)),
                       st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2).map(tuple)),
             max_size=1).map(tuple),
    st.one_of(st.none(), st.just(("c0", "c2"))),
    st.one_of(st.none(), st.sampled_from(list(Aggregation))),
    st.one_of(st.none(), st.builds(Take, st.integers(1, 2), st.booleans())),
    st.booleans(),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(history=ops, qs=st.lists(queries, min_size=1, max_size=4))
def test_random_histories_match_the_naive_reference(store_factory: Any, history: list[Any],
                                                     qs: list[QuerySpec]) -> None:
    asyncio.run(_check(store_factory, history, qs))


async def _check(store_factory: Any, history: list[Any], qs: list[QuerySpec]) -> None:
    model = Model.empty()
    now = START + SPAN
    async with store_factory() as store:
        await store.put_meter("t", Meter("conn", Aggregation.DURATION))
        for step, op in enumerate(history):
            if op[0] == "ingest":
                expected = [model.ingest(e) for e in op[1]]
                assert await store.ingest("t", op[1], now=now) == expected
            elif model.order:
                ident = model.order[op[1] % len(model.order)]
                if not model.live[ident]:
                    continue
                if op[0] == "void":
                    await store.void_event("t", ident[0], ident[1], "test", None, now)
                    model.live[ident] = False
                else:
                    old = model.events[ident]
                    new = UsageEvent(f"{ident[1]}~{step}", old.meter, old.customer, max(START, old.time + op[3]),
                                     op[2] / 2, old.dimensions, old.end_time)
                    await store.amend_event("t", ident[0], ident[1], new, "test", None, now)
                    model.live[ident] = False
                    assert model.ingest(new) is Outcome.ACCEPTED
        meters = {"conn": Meter("conn", Aggregation.DURATION)}
        for q in qs:
            got = await store.query("t", q, now)
            assert got == reference(model, meters, q, now), q
