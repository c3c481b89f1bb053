"""How a store answers a query from pre-aggregated pieces and stays equal to ``evaluate``: pure planning.

A store that keeps hourly and daily (UTC) rollups can answer the hour-aligned interior of a query from them
and read only the partial edge hours raw. This module decides the pieces, labels moments with the window they
fall in (so a database can group by window), and folds partial aggregates into the cells and totals that
:func:`meterd.core.query.assemble` turns into rows, choosing group labels exactly as ``evaluate`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Aggregation, Scalar
from meterd.core.query import MAX_RANGE_WINDOWS, Accumulator, QuerySpec, Row, Take, _sort_key, empty_value
from meterd.core.windows import Window, windows_between, zone

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MAX_BOUNDS = 1024
ROLLABLE = frozenset({Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX, Aggregation.AVG})

Group = tuple[Scalar, ...]
CellKey = tuple[str, Group, int]
TotalKey = tuple[str, Group]


def frames(spec: QuerySpec) -> list[tuple[int, int]]:
    """The windows of the query's range (the whole range when the window is ``none``), as ``assemble`` sees them."""
    if spec.window is Window.NONE:
        return [(spec.start, spec.end)]
    every = windows_between(spec.start, spec.end, spec.window, zone(spec.time_zone))
    found = list(islice(every, MAX_RANGE_WINDOWS + 1))
    if len(found) > MAX_RANGE_WINDOWS:
        raise InvalidInput("too many windows", [FieldError("window", "the range has too many windows")])
    return found


@dataclass(frozen=True, slots=True)
class Labeling:
    """Maps a moment ``t`` (>= the first window's start) to its window's start.

    ``const``: every moment maps to ``origin``. ``uniform``: windows of equal ``width`` from ``origin``, so
    ``t - (t - origin) % width``. ``bounds``: the greatest of ``starts`` that is <= t.
    """

    kind: str
    origin: int = 0
    width: int = 0
    starts: tuple[int, ...] = ()


def labeling(spec: QuerySpec, windows: list[tuple[int, int]]) -> Labeling | None:
    """How to label moments for ``spec``; None when no compact labeling exists (answer it another way)."""
    if spec.window is Window.NONE:
        return Labeling("const", origin=spec.start)
    widths = {end - start for start, end in windows}
    if len(widths) == 1:
        return Labeling("uniform", origin=windows[0][0], width=widths.pop())
    if len(windows) <= MAX_BOUNDS:
        return Labeling("bounds", starts=tuple(start for start, _ in windows))
    return None


def label(lab: Labeling, t: int) -> int:
    """The Python twin of the SQL a store generates from ``lab`` (used by tests)."""
    if lab.kind == "const":
        return lab.origin
    if lab.kind == "uniform":
        return t - (t - lab.origin) % lab.width
    best = lab.starts[0]
    for start in lab.starts:
        if start <= t:
            best = start
    return best


def aligned(spec: QuerySpec, windows: list[tuple[int, int]], unit: int) -> bool:
    """Whether every window boundary falls on a multiple of ``unit`` (an hour, a UTC day)."""
    if spec.window is Window.NONE:
        return True
    return all(start % unit == 0 for start, _ in windows) and windows[-1][1] % unit == 0


@dataclass(frozen=True, slots=True)
class Pieces:
    """A range split into parts read raw, from hourly rollups and from daily rollups (all half-open)."""

    raw: tuple[tuple[int, int], ...]
    hour: tuple[tuple[int, int], ...]
    day: tuple[tuple[int, int], ...]

    @property
    def interior(self) -> tuple[int, int] | None:
        """The part covered by rollups (one range), or None."""
        parts = sorted(self.hour + self.day)
        return (parts[0][0], parts[-1][1]) if parts else None


def split(start: int, end: int, daily: bool) -> Pieces:
    """Partial edge hours raw; whole hours from hourly rollups; whole UTC days from daily ones when ``daily``."""
    hs = -(-start // HOUR_MS) * HOUR_MS
    he = end // HOUR_MS * HOUR_MS
    if hs >= he:
        return Pieces(((start, end),), (), ())
    raw = tuple(r for r in ((start, hs), (he, end)) if r[0] < r[1])
    if daily:
        ds = -(-hs // DAY_MS) * DAY_MS
        de = he // DAY_MS * DAY_MS
        if ds < de:
            hour = tuple(r for r in ((hs, ds), (de, he)) if r[0] < r[1])
            return Pieces(raw, hour, ((ds, de),))
    return Pieces(raw, ((hs, he),), ())


class FixedResult(Accumulator):
    """An accumulator whose result a store computed already (an exact distinct count)."""

    __slots__ = ("fixed",)

    def __init__(self, aggregation: Aggregation, fixed: float | None) -> None:
        super().__init__(aggregation)
        self.fixed = fixed

    def result(self) -> float | None:
        return self.fixed


@dataclass(slots=True)
class Fold:
    """Partial aggregates of one meter folded into ``evaluate``'s cells and totals.

    Feed parts in the order of the first event of their group (stores pass the smallest seq): the first
    group key inserted is the label ``evaluate`` shows when values like ``1`` and ``1.0`` share a group.
    """

    meter: str
    aggregation: Aggregation
    unique_dimension: str | None = None
    cells: dict[CellKey, Accumulator] = field(default_factory=dict)
    totals: dict[TotalKey, Accumulator] = field(default_factory=dict)

    def _pair(self, group: Group, window: int) -> tuple[Accumulator, Accumulator]:
        """The cell of (group, window) and the group's total, created on first use."""
        cell = self.cells.get((self.meter, group, window))
        if cell is None:
            cell = self.cells[(self.meter, group, window)] = Accumulator(self.aggregation, self.unique_dimension)
        total = self.totals.get((self.meter, group))
        if total is None:
            total = self.totals[(self.meter, group)] = Accumulator(self.aggregation, self.unique_dimension)
        return cell, total

    def add(self, group: Group, window: int, total: float, count: int, low: float, high: float) -> None:
        """Fold sum, count, min and max of some events of one (group, window) cell."""
        for acc in self._pair(group, window):
            acc.total += total
            acc.count += count
            if acc.low is None or low < acc.low:
                acc.low = low
            if acc.high is None or high > acc.high:
                acc.high = high

    def add_latest(self, group: Group, window: int, time: int, event_id: str, value: float) -> None:
        """Fold the latest event of a cell."""
        key = (time, event_id)
        for acc in self._pair(group, window):
            acc.count += 1
            if acc.latest_key is None or key > acc.latest_key:
                acc.latest_key, acc.latest_value = key, value

    def set_cell(self, group: Group, window: int, value: float | None) -> None:
        """A cell whose value the store computed exactly (distinct counts)."""
        self.cells[(self.meter, group, window)] = FixedResult(self.aggregation, value)
        self.totals.setdefault((self.meter, group), FixedResult(self.aggregation, value))

    def set_total(self, group: Group, value: float | None) -> None:
        self.totals[(self.meter, group)] = FixedResult(self.aggregation, value)


def rank(value: float | None, take: Take) -> float:
    """The sort key of a group's total under ``take`` (as ``evaluate`` ranks): largest first when descending."""
    if value is None:
        return float("inf")
    return -value if take.descending else value


def assemble_values(
    meter: str,
    spec: QuerySpec,
    windows: list[tuple[int, int]],
    aggregation: Aggregation,
    cells: Mapping[Group, Mapping[int, float | None]],
    totals: Mapping[Group, float | None] | None,
) -> list[Row]:
    """Rows of one meter from finished cell values, exactly as ``assemble`` orders, cuts and fills them.

    ``cells`` maps each group to its values by window start; ``totals`` (each group's value over the whole
    range) is needed only when ``spec.take`` ranks groups.
    """
    groups = sorted(cells, key=_sort_key)
    if spec.take is not None:
        if totals is None:
            raise ValueError("ranking groups needs their totals")
        take = spec.take
        ranks = {g: rank(totals[g], take) for g in groups}
        groups = sorted(groups, key=ranks.__getitem__)[: take.limit]
    empty = empty_value(aggregation)
    dense = spec.dense
    rows: list[Row] = []
    for group in groups:
        labels = dict(zip(spec.group_by, group, strict=True))
        values = cells[group]
        for start, end in windows:
            if start in values:
                rows.append(Row(meter, start, end, labels, values[start]))
            elif dense:
                rows.append(Row(meter, start, end, labels, empty))
    return rows
