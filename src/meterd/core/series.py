"""Usage reports as dense time series: one series per (meter, group) with a point per window, its total over the
range and the relative change of each value from the one before (Amberflo's usage report model).

The service runs three queries of one :class:`QuerySpec` — per window (dense), over the whole range, and over the
range of equal length just before it — and :func:`build_series` folds their rows together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from meterd.core.models import Scalar
from meterd.core.query import QuerySpec, Row
from meterd.core.windows import Window, windows_between, zone

GroupKey = tuple[str, tuple[Scalar, ...]]


@dataclass(frozen=True, slots=True)
class Point:
    """One window of a series: ``value`` is None when nothing was measured (min/max/avg/latest)."""

    start: int
    end: int
    value: float | None
    change: float


@dataclass(frozen=True, slots=True)
class Series:
    """The usage of one group of one meter over a range, window by window."""

    meter: str
    group: dict[str, Scalar]
    total: float | None
    change: float
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class ReportSpecs:
    """The three queries a report needs: per window (dense), whole range, and the range before (may be None)."""

    windows: QuerySpec
    totals: QuerySpec
    previous: QuerySpec | None


def percent_change(previous: float | None, current: float | None) -> float:
    """(current - previous) / |previous| in percent; 0 when either is missing or previous is 0."""
    if previous is None or current is None or previous == 0:
        return 0.0
    return (current - previous) / abs(previous) * 100.0


def report_specs(spec: QuerySpec) -> ReportSpecs:
    """The queries behind a report of ``spec`` (which must have a window)."""
    totals = replace(spec, window=Window.NONE, dense=False)
    length = spec.end - spec.start
    start = max(0, spec.start - length)
    previous = replace(totals, start=start, end=spec.start, take=None) if start < spec.start else None
    return ReportSpecs(replace(spec, dense=True), totals, previous)


def frames(spec: QuerySpec) -> list[tuple[int, int]]:
    """Every window of the spec's range, in order (the report's time axis)."""
    return list(windows_between(spec.start, spec.end, spec.window, zone(spec.time_zone)))


def _key(row: Row, group_by: Sequence[str]) -> GroupKey:
    return row.meter, tuple(row.group.get(k) for k in group_by)


def _values(rows: Iterable[Row], group_by: Sequence[str]) -> dict[GroupKey, float | None]:
    return {_key(row, group_by): row.value for row in rows}


def build_series(
    meters: Sequence[str],
    spec: QuerySpec,
    window_rows: Sequence[Row],
    total_rows: Sequence[Row],
    previous_rows: Sequence[Row] = (),
) -> dict[str, list[Series]]:
    """Series per meter, groups in the order of ``window_rows``; a meter with no usage and no group-by gets one
    series of empty windows, so an ungrouped report always has its one series."""
    totals = _values(total_rows, spec.group_by)
    previous = _values(previous_rows, spec.group_by)
    points: dict[GroupKey, list[Row]] = {}
    for row in window_rows:
        points.setdefault(_key(row, spec.group_by), []).append(row)
    out: dict[str, list[Series]] = {meter: [] for meter in meters}
    for key, rows in points.items():
        meter, _ = key
        out.setdefault(meter, []).append(_series(key, rows, totals.get(key), previous.get(key)))
    if not spec.group_by:
        for meter, series in out.items():
            if not series:
                empty = tuple(Point(start, end, None, 0.0) for start, end in frames(spec))
                series.append(Series(meter, {}, None, 0.0, empty))
    return out


def _series(key: GroupKey, rows: Sequence[Row], total: float | None, previous: float | None) -> Series:
    made: list[Point] = []
    before: float | None = None
    for row in rows:
        made.append(Point(row.start, row.end, row.value, percent_change(before, row.value)))
        before = row.value
    return Series(key[0], dict(rows[0].group), total, percent_change(previous, total), tuple(made))
