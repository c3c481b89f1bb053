"""Attributing a query to owners: which store queries answer it, and how their rows fold into the exact result.

With ``attribute_to_owner`` the ``customer`` of every event is replaced by whoever owned that customer at the
time (see :mod:`meterd.core.ownership`): a ``duration`` splits each interval exactly at ownership changes;
every other aggregation counts an event for the owner at the event's time. Time when nobody owned the
resource stays with the resource itself, so totals are conserved. The ``customers`` filter applies to the
attributed customer.

The answer is assembled from ordinary queries (so stores need nothing new): one over the whole range grouped
by customer, and one per (owned resource, ownership piece) restricted to that resource and piece. Rows fold
per aggregation: sum, count and duration add; min and max compare; avg folds a sum and a count query;
unique_count folds a count query grouped by the unique dimension. ``latest`` cannot be combined across
owners from query rows and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Aggregation, Meter, Scalar
from meterd.core.query import CUSTOMER, Accumulator, QuerySpec, Row, assemble, resolve_aggregation
from meterd.core.windows import Window

K = TypeVar("K")
DIRECT = frozenset({Aggregation.SUM, Aggregation.COUNT, Aggregation.DURATION, Aggregation.MIN, Aggregation.MAX})


@dataclass(frozen=True, slots=True)
class Variant:
    """One store query shape; ``role`` says how its rows fold (``value``, ``sum``, ``count``, ``seen``)."""

    spec: QuerySpec
    role: str
    dimension: str | None = None


def plan(spec: QuerySpec, meters: Mapping[str, Meter]) -> list[Variant]:
    """The query variants (over the whole range, every customer, grouped by customer) that answer ``spec``."""
    spec.check()
    group_by = spec.group_by if CUSTOMER in spec.group_by else (*spec.group_by, CUSTOMER)
    base = replace(spec, group_by=group_by, customers=None, take=None, dense=False)
    chosen = spec.aggregation
    if chosen is Aggregation.LATEST:
        raise _no_latest("the query asks for latest")
    if chosen in DIRECT:
        return [Variant(base, "value")]
    if chosen is Aggregation.AVG:
        return _averaged(base)
    if chosen is Aggregation.UNIQUE_COUNT and spec.unique_dimension is not None:
        return [_seen(base, spec.unique_dimension)]
    return _per_meter(spec, base, meters)


def _per_meter(spec: QuerySpec, base: QuerySpec, meters: Mapping[str, Meter]) -> list[Variant]:
    """Variants when each meter's own aggregation (or unique dimension) applies."""
    classes: dict[tuple[Aggregation, str | None], list[str]] = {}
    for key in spec.meters or tuple(sorted(meters)):
        if key in spec.exclude_meters:
            continue
        aggregation, unique = resolve_aggregation(spec, meters.get(key))
        kind = Aggregation.SUM if aggregation in DIRECT else aggregation
        classes.setdefault((kind, unique if kind is Aggregation.UNIQUE_COUNT else None), []).append(key)
    latest = classes.pop((Aggregation.LATEST, None), [])
    if latest:
        raise _no_latest(f"meters {', '.join(sorted(latest))} use latest")
    variants: list[Variant] = []
    direct = classes.pop((Aggregation.SUM, None), [])
    if spec.meters and direct:
        variants.append(Variant(replace(base, meters=tuple(direct)), "value"))
    elif not spec.meters and spec.aggregation is None:  # every meter, even those no longer in the catalog (sum)
        special = tuple(key for keys in classes.values() for key in keys)
        variants.append(Variant(replace(base, meters=(), exclude_meters=(*spec.exclude_meters, *special)), "value"))
    for (kind, unique), keys in sorted(classes.items(), key=lambda kv: (kv[0][0].value, kv[0][1] or "")):
        shape = replace(base, meters=tuple(keys))
        variants += _averaged(shape) if kind is Aggregation.AVG else [_seen(shape, unique)]
    return variants


def _averaged(shape: QuerySpec) -> list[Variant]:
    """An average folds exactly from a sum and a count."""
    return [
        Variant(replace(shape, aggregation=Aggregation.SUM), "sum"),
        Variant(replace(shape, aggregation=Aggregation.COUNT), "count"),
    ]


def _seen(shape: QuerySpec, dimension: str | None) -> Variant:
    """A unique count folds exactly from counts grouped by the counted dimension (none: it counts 0)."""
    grouped = shape.group_by if dimension is None or dimension in shape.group_by else (*shape.group_by, dimension)
    return Variant(replace(shape, aggregation=Aggregation.COUNT, group_by=grouped), "seen", dimension)


def _no_latest(which: str) -> InvalidInput:
    return InvalidInput(
        "attribute_to_owner cannot combine 'latest' across owners",
        [FieldError("aggregation", f"{which}; choose another aggregation")],
    )


def piece_spec(variant: Variant, resource: str, start: int, end: int) -> QuerySpec:
    """The variant restricted to one resource over one ownership piece."""
    return replace(variant.spec, customers=(resource,), start=start, end=end)


class Folder:
    """Folds rows of variant queries into cells and totals keyed like :func:`meterd.core.query.evaluate`'s."""

    def __init__(self, spec: QuerySpec, meters: Mapping[str, Meter]) -> None:
        self.spec = spec
        self.meters = meters
        self.cells: dict[tuple[str, tuple[Scalar, ...], int], Accumulator] = {}
        self.totals: dict[tuple[str, tuple[Scalar, ...]], Accumulator] = {}

    def wanted(self, customer: str) -> bool:
        return self.spec.customers is None or customer in self.spec.customers

    def fold(self, variant: Variant, rows: Iterable[Row], customer: str | None = None) -> None:
        """Fold rows, counting them for ``customer`` (None: the customer each row names)."""
        for row in rows:
            target = customer if customer is not None else str(row.group.get(CUSTOMER))
            if not self.wanted(target):
                continue
            group = tuple(target if key == CUSTOMER else row.group.get(key) for key in self.spec.group_by)
            start = self.spec.start if self.spec.window is Window.NONE else row.start
            cell = self._cell(self.cells, (row.meter, group, start), row.meter)
            total = self._cell(self.totals, (row.meter, group), row.meter)
            _add(cell, variant, row)
            _add(total, variant, row)

    def _cell(self, table: dict[K, Accumulator], key: K, meter: str) -> Accumulator:
        found = table.get(key)
        if found is None:
            found = table[key] = Accumulator(*resolve_aggregation(self.spec, self.meters.get(meter)))
        return found

    def rows(self) -> list[Row]:
        """The attributed answer, ordered, cut by ``take`` and made dense as the spec asks."""
        return assemble(self.cells, self.totals, self.meters, self.spec)


def _add(acc: Accumulator, variant: Variant, row: Row) -> None:
    value = row.value if row.value is not None else 0.0
    if variant.role == "seen":
        seen = row.group.get(variant.dimension or "")
        if value > 0 and seen is not None:
            acc.seen.add(seen)
        return
    if variant.role == "count" or acc.aggregation is Aggregation.COUNT:
        acc.count += round(value)
        return
    acc.total += value
    if variant.role == "sum":
        return
    acc.count += 1
    acc.low = value if acc.low is None else min(acc.low, value)
    acc.high = value if acc.high is None else max(acc.high, value)
