"""The query model every surface speaks, and its reference evaluation over live events.

A query names meters, a half-open time range [start, end), a window in an IANA zone, a group-by (``customer``
and/or dimension names), filters and an optional top-N ``take``. Stores may answer from indexes or caches,
but their answer must equal :func:`evaluate` over the live events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Aggregation, Meter, Scalar, UsageEvent
from meterd.core.windows import Window, window_end, window_start, windows_between, zone

CUSTOMER = "customer"
K = TypeVar("K")
MAX_RANGE_WINDOWS = 100_000


class FilterOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NIN = "nin"


@dataclass(frozen=True, slots=True)
class DimensionFilter:
    """Keep events whose dimension ``key`` matches; a missing dimension counts as null."""

    key: str
    op: FilterOp
    values: tuple[Scalar, ...]

    def matches(self, dimensions: Mapping[str, Scalar]) -> bool:
        present = dimensions.get(self.key)
        inside = present in self.values
        return inside if self.op in (FilterOp.EQ, FilterOp.IN) else not inside


@dataclass(frozen=True, slots=True)
class Take:
    """Keep the ``limit`` groups with the largest (``desc``) or smallest (``asc``) total over the range."""

    limit: int
    descending: bool = True


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """What to compute. ``meters`` empty means every meter; times are epoch ms, ``end`` exclusive."""

    meters: tuple[str, ...]
    start: int
    end: int
    window: Window = Window.NONE
    time_zone: str = "UTC"
    group_by: tuple[str, ...] = ()
    customers: tuple[str, ...] | None = None
    filters: tuple[DimensionFilter, ...] = ()
    aggregation: Aggregation | None = None
    unique_dimension: str | None = None
    take: Take | None = None
    dense: bool = False
    exclude_meters: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise :class:`InvalidInput` when the spec cannot be answered."""
        errors: list[FieldError] = []
        if self.end <= self.start:
            errors.append(FieldError("to", "must be after from"))
        zone(self.time_zone)
        if self.take is not None and not 1 <= self.take.limit <= 10_000:
            errors.append(FieldError("take.limit", "must be between 1 and 10000"))
        if len(set(self.group_by)) != len(self.group_by):
            errors.append(FieldError("group_by", "must not repeat a key"))
        if errors:
            raise InvalidInput("the query is invalid", errors)


@dataclass(frozen=True, slots=True)
class Row:
    """One value: a meter, a window (the whole range when the window is ``none``) and a group."""

    meter: str
    start: int
    end: int
    group: dict[str, Scalar]
    value: float | None


@dataclass(slots=True)
class Accumulator:
    """Folds events into one value for one aggregation; events may come in any order."""

    aggregation: Aggregation
    unique_dimension: str | None = None
    total: float = 0.0
    count: int = 0
    low: float | None = None
    high: float | None = None
    latest_key: tuple[int, str] | None = None
    latest_value: float | None = None
    seen: set[Scalar] = field(default_factory=set)

    def add(self, event: UsageEvent, weight: float = 1.0) -> None:
        value = event.value
        self.count += 1
        self.total += value * weight if self.aggregation is Aggregation.DURATION else value
        self.low = value if self.low is None or value < self.low else self.low
        self.high = value if self.high is None or value > self.high else self.high
        key = (event.time, event.id)
        if self.latest_key is None or key > self.latest_key:
            self.latest_key, self.latest_value = key, value
        if self.aggregation is Aggregation.UNIQUE_COUNT and self.unique_dimension is not None:
            seen = event.dimensions.get(self.unique_dimension)
            if seen is not None:
                self.seen.add(seen)

    def result(self) -> float | None:
        agg = self.aggregation
        if agg in (Aggregation.SUM, Aggregation.DURATION):
            return self.total
        if agg is Aggregation.COUNT:
            return float(self.count)
        if agg is Aggregation.UNIQUE_COUNT:
            return float(len(self.seen))
        if self.count == 0:
            return None
        if agg is Aggregation.MIN:
            return self.low
        if agg is Aggregation.MAX:
            return self.high
        if agg is Aggregation.AVG:
            return self.total / self.count
        return self.latest_value


def empty_value(aggregation: Aggregation) -> float | None:
    """What an empty window shows in a dense series."""
    return Accumulator(aggregation).result()


def group_key(event: UsageEvent, group_by: tuple[str, ...]) -> tuple[Scalar, ...]:
    return tuple(event.customer if key == CUSTOMER else event.dimensions.get(key) for key in group_by)


def _sort_key(values: tuple[Scalar, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if v is None else (1, f"{type(v).__name__}:{v}") for v in values)


def resolve_aggregation(spec: QuerySpec, meter: Meter | None) -> tuple[Aggregation, str | None]:
    """The aggregation and unique dimension to use for ``meter`` under ``spec``."""
    aggregation = spec.aggregation or (meter.aggregation if meter else Aggregation.SUM)
    unique = spec.unique_dimension or (meter.unique_dimension if meter else None)
    return aggregation, unique


def selects(spec: QuerySpec, event: UsageEvent) -> bool:
    """Whether an event passes the spec's meter, customer and dimension filters (not time)."""
    if spec.meters and event.meter not in spec.meters:
        return False
    if event.meter in spec.exclude_meters:
        return False
    if spec.customers is not None and event.customer not in spec.customers:
        return False
    return all(f.matches(event.dimensions) for f in spec.filters)


def interval_parts(event: UsageEvent, spec: QuerySpec, now: int) -> list[tuple[int, float]]:
    """For a duration meter: (window start, seconds inside the window) of the part of the interval in range."""
    stop = event.end_time if event.end_time is not None else min(spec.end, now)
    lo, hi = max(event.time, spec.start), min(stop, spec.end)
    if hi <= lo:
        return []
    tz = zone(spec.time_zone)
    parts: list[tuple[int, float]] = []
    for w_start, w_end in windows_between(lo, hi, spec.window, tz):
        a, b = max(lo, w_start), min(hi, w_end)
        if b > a:
            parts.append((spec.start if spec.window is Window.NONE else w_start, (b - a) / 1000.0))
    return parts


def evaluate(events: Iterable[UsageEvent], meters: Mapping[str, Meter], spec: QuerySpec, now: int) -> list[Row]:
    """The reference answer: fold every selected live event into its (meter, group, window) cell."""
    spec.check()
    tz = zone(spec.time_zone)
    cells: dict[tuple[str, tuple[Scalar, ...], int], Accumulator] = {}
    totals: dict[tuple[str, tuple[Scalar, ...]], Accumulator] = {}

    def cell(table: dict[K, Accumulator], key: K, meter: str) -> Accumulator:
        if key not in table:
            table[key] = Accumulator(*resolve_aggregation(spec, meters.get(meter)))
        return table[key]

    for event in events:
        if not selects(spec, event):
            continue
        aggregation, _ = resolve_aggregation(spec, meters.get(event.meter))
        group = group_key(event, spec.group_by)
        if aggregation is Aggregation.DURATION:
            for w_start, seconds in interval_parts(event, spec, now):
                cell(cells, (event.meter, group, w_start), event.meter).add(event, seconds)
                cell(totals, (event.meter, group), event.meter).add(event, seconds)
            continue
        if not spec.start <= event.time < spec.end:
            continue
        w_start = spec.start if spec.window is Window.NONE else window_start(event.time, spec.window, tz)
        cell(cells, (event.meter, group, w_start), event.meter).add(event)
        cell(totals, (event.meter, group), event.meter).add(event)
    return assemble(cells, totals, meters, spec)


def _rank(total: Accumulator, take: Take | None) -> float:
    """Sort key of a group under ``take``: largest first when descending; empty totals last."""
    descending = take is None or take.descending
    value = total.result()
    if value is None:
        return float("inf")
    return -value if descending else value


def ranked_groups(
    totals: Mapping[tuple[str, tuple[Scalar, ...]], Accumulator], spec: QuerySpec
) -> list[tuple[str, tuple[Scalar, ...]]]:
    """Groups per meter in output order: by key, or by total when ``take`` is set (then cut to its limit)."""
    by_meter: dict[str, list[tuple[Scalar, ...]]] = {}
    for meter, group in totals:
        by_meter.setdefault(meter, []).append(group)
    ordered: list[tuple[str, tuple[Scalar, ...]]] = []
    for meter in sorted(by_meter):
        groups = sorted(by_meter[meter], key=_sort_key)
        if spec.take is not None:
            ranks = {g: _rank(totals[(meter, g)], spec.take) for g in groups}
            groups = sorted(groups, key=ranks.__getitem__)[: spec.take.limit]
        ordered.extend((meter, g) for g in groups)
    return ordered


def assemble(
    cells: Mapping[tuple[str, tuple[Scalar, ...], int], Accumulator],
    totals: Mapping[tuple[str, tuple[Scalar, ...]], Accumulator],
    meters: Mapping[str, Meter],
    spec: QuerySpec,
) -> list[Row]:
    """Turn folded cells into ordered rows, filling empty windows when the spec asks for a dense series."""
    tz = zone(spec.time_zone)
    if spec.window is Window.NONE:
        frames = [(spec.start, spec.end)]
    else:
        frames = list(windows_between(spec.start, spec.end, spec.window, tz))
        if len(frames) > MAX_RANGE_WINDOWS:
            raise InvalidInput("too many windows", [FieldError("window", "the range has too many windows")])
    rows: list[Row] = []
    for meter, group in ranked_groups(totals, spec):
        labels = dict(zip(spec.group_by, group, strict=True))
        aggregation, _ = resolve_aggregation(spec, meters.get(meter))
        for w_start, w_end in frames:
            acc = cells.get((meter, group, w_start))
            if acc is None and not spec.dense:
                continue
            value = acc.result() if acc is not None else empty_value(aggregation)
            rows.append(Row(meter, w_start, w_end, labels, value))
    return rows


__all__ = [
    "CUSTOMER",
    "Accumulator",
    "DimensionFilter",
    "FilterOp",
    "QuerySpec",
    "Row",
    "Take",
    "Window",
    "assemble",
    "evaluate",
    "window_end",
]
