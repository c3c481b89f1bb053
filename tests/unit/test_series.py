"""Dense usage series: report queries, totals, relative change, the always-present ungrouped series; and sparse
windows that stay cheap over any range."""

from __future__ import annotations

from meterd.core.models import Meter, UsageEvent
from meterd.core.query import QuerySpec, Row, evaluate
from meterd.core.series import build_series, percent_change, report_specs
from meterd.core.timeutil import MAX_MS
from meterd.core.windows import Window

DAY = 86_400_000


def test_percent_change() -> None:
    assert percent_change(None, 5) == 0.0
    assert percent_change(0, 5) == 0.0
    assert percent_change(4, None) == 0.0
    assert percent_change(4, 5) == 25.0
    assert percent_change(-4, -2) == 50.0


def test_report_specs_cover_the_range_before() -> None:
    spec = QuerySpec(("m",), 10 * DAY, 12 * DAY, Window.DAY)
    specs = report_specs(spec)
    assert specs.windows.dense and specs.totals.window is Window.NONE
    assert specs.previous is not None and (specs.previous.start, specs.previous.end) == (8 * DAY, 10 * DAY)
    assert report_specs(QuerySpec(("m",), 0, DAY, Window.DAY)).previous is None


def test_build_series() -> None:
    spec = QuerySpec(("m", "n"), 0, 2 * DAY, Window.DAY, group_by=("customer",))
    rows = [Row("m", 0, DAY, {"customer": "a"}, 2.0), Row("m", DAY, 2 * DAY, {"customer": "a"}, 3.0)]
    totals = [Row("m", 0, 2 * DAY, {"customer": "a"}, 5.0)]
    previous = [Row("m", 0, 2 * DAY, {"customer": "a"}, 4.0)]
    series = build_series(["m", "n"], spec, rows, totals, previous)
    assert series["n"] == []
    [a] = series["m"]
    assert (a.total, a.change, [p.value for p in a.points], [p.change for p in a.points]) == (
        5.0,
        25.0,
        [2.0, 3.0],
        [0.0, 50.0],
    )
    ungrouped = build_series(["n"], QuerySpec(("n",), 0, 2 * DAY, Window.DAY), [], [], [])
    assert [(s.group, s.total, len(s.points)) for s in ungrouped["n"]] == [({}, None, 2)]


def test_windows_at_the_end_of_time_in_every_offset() -> None:
    """The last instant meterd accepts, windowed in the zones furthest east and west: no calendar overflow."""
    events = [UsageEvent("1", "m", "a", MAX_MS, 1.0)]
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
        for window in (Window.MINUTE, Window.HOUR, Window.DAY, Window.WEEK, Window.MONTH):
            for dense in (False, True):
                spec = QuerySpec(("m",), MAX_MS - 40 * DAY, MAX_MS + 1, window, zone, dense=dense)
                rows = evaluate(events, {"m": Meter("m")}, spec, 0)
                last = rows[-1]
                assert last.value == 1.0 and last.start <= MAX_MS < last.end, (zone, window, dense)
