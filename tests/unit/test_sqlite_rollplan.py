"""core.rollplan: labels equal window starts, pieces partition the range, fast assembly equals ``assemble``."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from meterd.core.models import Aggregation
from meterd.core.query import Accumulator, QuerySpec, Take, assemble
from meterd.core.rollplan import (
    DAY_MS,
    HOUR_MS,
    aligned,
    assemble_values,
    frames,
    label,
    labeling,
    split,
)
from meterd.core.windows import Window, window_start, zone

T0 = 1_711_000_000_000  # March 2024: spring-forward in the US and in Europe within a few weeks
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Kathmandu"]
WINDOWS = [Window.NONE, Window.MINUTE, Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(WINDOWS), st.sampled_from(ZONES), st.integers(0, 60 * DAY_MS), st.integers(1, 40 * DAY_MS),
       st.lists(st.integers(0, 10**12), min_size=1, max_size=20))
def test_labels_are_window_starts(window: Window, tz: str, offset: int, length: int, picks: list[int]) -> None:
    if window is Window.MINUTE:
        length = min(length, 3 * DAY_MS)
    spec = QuerySpec(("m",), T0 + offset, T0 + offset + length, window, tz)
    windows = frames(spec)
    lab = labeling(spec, windows)
    assert lab is not None
    for pick in picks:
        t = spec.start + pick % length
        expected = spec.start if window is Window.NONE else window_start(t, window, zone(tz))
        assert label(lab, t) == expected


@given(st.integers(0, 10 * DAY_MS), st.integers(1, 10 * DAY_MS), st.booleans())
def test_pieces_partition_the_range_on_hour_and_day_bounds(offset: int, length: int, daily: bool) -> None:
    start, end = T0 + offset, T0 + offset + length
    pieces = split(start, end, daily)
    parts = sorted(pieces.raw + pieces.hour + pieces.day)
    assert parts[0][0] == start and parts[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(a % HOUR_MS == 0 and b % HOUR_MS == 0 for a, b in pieces.hour)
    assert all(a % DAY_MS == 0 and b % DAY_MS == 0 for a, b in pieces.day)
    assert all(-(-a // HOUR_MS) * HOUR_MS + HOUR_MS > b for a, b in pieces.raw)  # no whole hour read raw
    assert len(pieces.raw) <= 2
    assert daily or not pieces.day


def test_alignment_follows_the_zone() -> None:
    berlin = QuerySpec(("m",), T0, T0 + 40 * DAY_MS, Window.DAY, "Europe/Berlin")
    kolkata = QuerySpec(("m",), T0, T0 + 40 * DAY_MS, Window.DAY, "Asia/Kolkata")
    utc = QuerySpec(("m",), T0 - T0 % DAY_MS, T0 - T0 % DAY_MS + 40 * DAY_MS, Window.DAY)
    assert aligned(berlin, frames(berlin), HOUR_MS) and not aligned(berlin, frames(berlin), DAY_MS)
    assert not aligned(kolkata, frames(kolkata), HOUR_MS)
    assert aligned(utc, frames(utc), DAY_MS)


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 5)),
        st.tuples(st.integers(0, 20), st.integers(1, 5)),
        max_size=15,
    ),
    st.sampled_from([Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX]),
    st.one_of(st.none(), st.builds(Take, st.integers(1, 3), st.booleans())),
    st.booleans(),
)
def test_fast_assembly_equals_assemble(
    parts: dict[tuple[str, int], tuple[int, int]], agg: Aggregation, take: Take | None, dense: bool
) -> None:
    spec = QuerySpec(("m",), T0, T0 + 6 * HOUR_MS, Window.HOUR, group_by=("customer",), aggregation=agg, take=take,
                     dense=dense)
    windows = frames(spec)
    cells: dict[tuple[str, tuple[object, ...], int], Accumulator] = {}
    totals: dict[tuple[str, tuple[object, ...]], Accumulator] = {}
    values: dict[tuple[object, ...], dict[int, float | None]] = {}
    for (customer, index), (value, count) in parts.items():
        start = windows[index][0]
        for table, key in ((cells, ("m", (customer,), start)), (totals, ("m", (customer,)))):
            acc = table.setdefault(key, Accumulator(agg))  # type: ignore[arg-type]
            for _ in range(count):
                acc.count += 1
                acc.total += value
                acc.low = value if acc.low is None else min(acc.low, value)
                acc.high = value if acc.high is None else max(acc.high, value)
        values.setdefault((customer,), {})[start] = cells[("m", (customer,), start)].result()
    total_values = {g[1]: acc.result() for g, acc in totals.items()}
    expected = assemble(cells, totals, {}, spec)  # type: ignore[arg-type]
    assert assemble_values("m", spec, windows, agg, values, total_values) == expected
