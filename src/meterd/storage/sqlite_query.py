"""Queries of the SQLite store, always equal to ``core.query.evaluate`` over the live events.

Per meter, one of three paths, all inside one read transaction (one snapshot):

- rollups: sum/count/min/max/avg whose windows fall on whole hours, grouped or filtered by customer and at
  most one rolled-up dimension key. Whole UTC days come from daily rollups, other whole hours from hourly
  ones, partial edge hours and the unrolled tail (seq above the watermark) from raw events;
- raw SQL over the covering index ``events_q`` (other windows, other dimensions, unique_count, latest);
- Python: fetch the events and run ``evaluate`` itself (duration, exotic keys or values, and the rare case
  where values such as ``1`` and ``1.0`` share a group for aggregations SQL cannot label exactly).

Sums add partial sums, so float results may differ from ``evaluate`` in the last bits of rounding; values that
are exact in binary (integers, halves, ...) give identical answers.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from meterd.core.models import Aggregation, Meter, Scalar, UsageEvent
from meterd.core.query import (
    CUSTOMER,
    DimensionFilter,
    FilterOp,
    QuerySpec,
    Row,
    assemble,
    evaluate,
    resolve_aggregation,
)
from meterd.core.rollplan import (
    DAY_MS,
    HOUR_MS,
    ROLLABLE,
    Fold,
    Group,
    Labeling,
    aligned,
    assemble_values,
    frames,
    labeling,
    split,
)
from meterd.storage.sqlite_conn import ReadTx
from meterd.storage.sqlite_rollup import watermark
from meterd.storage.sqlite_rows import Names, dims_value, json_path, meter_row

INT64 = 2**63
SUM_AGGS = "sum(value), count(*), min(value), max(value), min(seq)"


class Fallback(Exception):
    """This meter's answer needs the Python path."""


def run(names: Names, conn: sqlite3.Connection, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
    """Answer ``spec`` for ``tenant``: the rows of every selected meter, in meter order."""
    spec.check()
    windows = frames(spec)
    with ReadTx(conn):
        mids = names.tenant_mids(conn, tenant)
        chosen = sorted(
            (meter, mid)
            for mid, meter in mids.items()
            if (not spec.meters or meter in spec.meters) and meter not in spec.exclude_meters
        )
        if not chosen:
            return []
        defs = {m.key: m for m in map(meter_row, conn.execute(_METERS_SQL, (tenant,)))}
        top = watermark(conn)
        rows: list[Row] = []
        for meter, mid in chosen:
            plan = MeterQuery(names, conn, spec, now, mid, meter, defs, windows, top)
            rows.extend(plan.rows())
        return rows


_METERS_SQL = (
    "SELECT key, aggregation, unit, description, unique_dimension, properties, created_at "
    "FROM meters WHERE tenant = ?"
)


def label_sql(lab: Labeling, col: str) -> str:
    """SQL computing the window start of ``col`` (integers only, so the text is safe to inline)."""
    if lab.kind == "const":
        return str(int(lab.origin))
    if lab.kind == "uniform":
        return f"({col} - ({col} - {int(lab.origin)}) % {int(lab.width)})"
    return _case_tree(col, lab.starts, 0, len(lab.starts) - 1)


def _case_tree(col: str, starts: tuple[int, ...], lo: int, hi: int) -> str:
    if lo == hi:
        return str(int(starts[lo]))
    mid = (lo + hi + 1) // 2
    left = _case_tree(col, starts, lo, mid - 1)
    right = _case_tree(col, starts, mid, hi)
    return f"CASE WHEN {col} < {int(starts[mid])} THEN {left} ELSE {right} END"


def _bindable(value: Scalar) -> bool:
    return not (isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64)


def filter_sql(f: DimensionFilter) -> tuple[str, list[Any]]:
    """A dimension filter over the raw ``dims`` JSON with Python's ``in`` semantics (1 == 1.0 == True)."""
    path = json_path(f.key)
    if path is None or not all(_bindable(v) for v in f.values):
        raise Fallback
    parts: list[str] = []
    params: list[Any] = []
    present = [v for v in f.values if v is not None]
    if present:
        parts.append(f"json_extract(dims, ?) IN ({','.join('?' * len(present))})")
        params += [path, *present]
    if any(v is None for v in f.values):
        parts.append("json_extract(dims, ?) IS NULL")
        params.append(path)
    inside = f"coalesce(({' OR '.join(parts)}), 0)" if parts else "0"
    return (inside if f.op in (FilterOp.EQ, FilterOp.IN) else f"NOT {inside}"), params


@dataclass(slots=True)
class Where:
    """SQL conditions and their parameters."""

    sql: list[str]
    params: list[Any]

    def add(self, sql: str, *params: Any) -> None:
        self.sql.append(sql)
        self.params.extend(params)

    def text(self) -> str:
        return " AND ".join(self.sql)


class MeterQuery:
    """The answer for one meter."""

    def __init__(
        self,
        names: Names,
        conn: sqlite3.Connection,
        spec: QuerySpec,
        now: int,
        mid: int,
        meter: str,
        defs: dict[str, Meter],
        windows: list[tuple[int, int]],
        top: int,
    ) -> None:
        self.names, self.conn, self.spec, self.now = names, conn, spec, now
        self.mid, self.meter, self.defs, self.windows, self.top = mid, meter, defs, windows, top
        self.aggregation, self.unique = resolve_aggregation(spec, defs.get(meter))
        self.sids: list[int] | None = None
        self._decoded: dict[tuple[Any, ...], tuple[Scalar, ...]] = {}
        self._texts: dict[str, Scalar] = {}

    # entry ---------------------------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        if self.spec.customers is not None:
            self.sids = sorted(self.names.sids_of(self.conn, self.mid, self.spec.customers))
            if not self.sids:
                return []
        lab = labeling(self.spec, self.windows)
        try:
            if lab is None or self.aggregation is Aggregation.DURATION:
                raise Fallback
            if self.aggregation is Aggregation.UNIQUE_COUNT:
                return self._unique(lab)
            if self.aggregation is Aggregation.LATEST:
                return self._latest(lab)
            return self._sums(lab)
        except Fallback:
            return self._python()

    def _finish(
        self, cells: Mapping[Group, Mapping[int, float | None]], totals: Mapping[Group, float | None] | None
    ) -> list[Row]:
        return assemble_values(self.meter, self.spec, self.windows, self.aggregation, cells, totals)

    # group columns and decoding ------------------------------------------------------------------------
    def _raw_groups(self) -> tuple[list[str], list[Any]]:
        cols: list[str] = []
        params: list[Any] = []
        for key in self.spec.group_by:
            if key == CUSTOMER:
                cols.append("sid")
            else:
                path = json_path(key)
                if path is None:
                    raise Fallback
                cols.append("coalesce(dims -> ?, 'null')")
                params.append(path)
        return cols, params

    def _group(self, raw: tuple[Any, ...]) -> tuple[Scalar, ...]:
        """The Python group of a row's raw group columns (customer from sid, values from JSON text)."""
        found = self._decoded.get(raw)
        if found is None:
            found = self._decoded[raw] = tuple(
                self._decode(key, value) for key, value in zip(self.spec.group_by, raw, strict=True)
            )
        return found

    def _decode(self, key: str, raw: Any) -> Scalar:
        if key == CUSTOMER:
            return self.names.customer(self.conn, int(raw))
        text = str(raw)
        if text not in self._texts:
            self._texts[text] = json.loads(text)
        return self._texts[text]

    def _by_group(self, keyed: dict[tuple[Any, ...], Any], n: int) -> dict[Group, dict[int, Any]] | None:
        """Cells keyed by (raw group..., window) regrouped by Python group; None when two raw groups are one
        Python group (values like 1 and 1.0), which only the careful path labels exactly."""
        out: dict[Group, dict[int, Any]] = {}
        raw_of: dict[Group, tuple[Any, ...]] = {}
        for key, cell in keyed.items():
            raw = key[:n]
            group = self._group(raw)
            if raw_of.setdefault(group, raw) != raw:
                return None
            out.setdefault(group, {})[int(key[n])] = cell
        return out

    def _raw_where(self, start: int, end: int, tail: bool) -> Where:
        where = Where([], [])
        if tail:
            where.add("seq > ?", self.top)
            where.add("+mid = ?", self.mid)
            where.add("live = 1")
            where.add("+time >= ?", start)
            where.add("+time < ?", end)
        else:
            where.add("mid = ?", self.mid)
            where.add("live = 1")
            where.add("time >= ?", start)
            where.add("time < ?", end)
        if self.sids is not None:
            where.add(f"sid IN ({','.join('?' * len(self.sids))})", *self.sids)
        for f in self.spec.filters:
            sql, params = filter_sql(f)
            where.add(sql, *params)
        return where

    def _raw_select(self, select: str, params: list[Any], where: Where, tail: bool, group: str) -> list[Any]:
        source = "events NOT INDEXED" if tail else "events INDEXED BY events_q"
        sql = f"SELECT {select} FROM {source} WHERE {where.text()}"
        if group:
            sql += f" GROUP BY {group}"
        return self.conn.execute(sql, [*params, *where.params]).fetchall()

    # sum, count, min, max, avg ---------------------------------------------------------------------------
    def _sums(self, lab: Labeling) -> list[Row]:
        n = len(self.spec.group_by)
        rolled = self._rolled_key()
        if rolled is None:
            parts = self._raw_sums(lab, self.spec.start, self.spec.end, tail=False)
        else:
            parts = self._pieces(lab, rolled[0], rolled[1])
        keyed: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for row in parts:
            key = row[: n + 1]
            old = keyed.get(key)
            keyed[key] = row if old is None else _merge(old, row, n)
        grouped = self._by_group(keyed, n)
        if grouped is None:
            return self._careful(parts, n)
        pick = _RESULT[self.aggregation]
        cells = {g: {w: pick(r, n) for w, r in per.items()} for g, per in grouped.items()}
        totals = None
        if self.spec.take is not None:
            totals = {g: pick(functools.reduce(lambda a, b: _merge(a, b, n), per.values()), n)
                      for g, per in grouped.items()}
        return self._finish(cells, totals)

    def _careful(self, parts: list[tuple[Any, ...]], n: int) -> list[Row]:
        """Fold parts in the order of their first event so merged groups get ``evaluate``'s labels."""
        fold = Fold(self.meter, self.aggregation, self.unique)
        for row in sorted(parts, key=lambda r: r[n + 5]):
            group = self._group(tuple(row[:n]))
            fold.add(group, int(row[n]), float(row[n + 1]), int(row[n + 2]), float(row[n + 3]), float(row[n + 4]))
        return assemble(fold.cells, fold.totals, self.defs, self.spec)

    def _raw_sums(self, lab: Labeling, start: int, end: int, tail: bool) -> list[tuple[Any, ...]]:
        cols, params = self._raw_groups()
        select = ", ".join([*cols, label_sql(lab, "time"), SUM_AGGS])
        group = ", ".join(str(i) for i in range(1, len(cols) + 2))
        return self._raw_select(select, params, self._raw_where(start, end, tail), tail, group)

    def _rolled_key(self) -> tuple[str | None, list[str] | None] | None:
        """(dimension key or None, allowed JSON values or None) when rollups can answer; else None."""
        spec = self.spec
        if self.aggregation not in ROLLABLE or not aligned(spec, self.windows, HOUR_MS):
            return None
        keys = {k for k in spec.group_by if k != CUSTOMER} | {f.key for f in spec.filters}
        if not keys:
            return None, None
        if len(keys) > 1:
            return None
        key = keys.pop()
        state = self.conn.execute("SELECT state FROM dim_keys WHERE mid = ? AND dk = ?", (self.mid, key)).fetchone()
        if state is None or state[0] != "rolled":
            return None
        texts = [r[0] for r in self.conn.execute("SELECT dv FROM dim_values WHERE mid = ? AND dk = ?", (self.mid, key))]
        texts = sorted(set(texts) | {"null"})
        decoded = {text: json.loads(text) for text in texts}
        if key in spec.group_by and len({_python_key(v) for v in decoded.values()}) != len(decoded):
            return None
        mine = [f for f in spec.filters if f.key == key]
        if not mine:
            return key, None
        allowed = [t for t in texts if all(f.matches({key: decoded[t]}) for f in mine)]
        return key, allowed

    def _pieces(self, lab: Labeling, key: str | None, allowed: list[str] | None) -> list[tuple[Any, ...]]:
        pieces = split(self.spec.start, self.spec.end, aligned(self.spec, self.windows, DAY_MS))
        parts: list[tuple[Any, ...]] = []
        if allowed is not None and not allowed:
            return parts
        for table, width, ranges in (("roll_day", DAY_MS, pieces.day), ("roll_hour", HOUR_MS, pieces.hour)):
            for start, end in ranges:
                parts += self._rollup(lab, table, width, key, allowed, start, end)
        for start, end in pieces.raw:
            parts += self._raw_sums(lab, start, end, tail=False)
        interior = pieces.interior
        if interior is not None:
            parts += self._raw_sums(lab, interior[0], interior[1], tail=True)
        return parts

    def _rollup(
        self, lab: Labeling, table: str, width: int, key: str | None, allowed: list[str] | None, start: int, end: int
    ) -> list[tuple[Any, ...]]:
        cols = ["sid" if k == CUSTOMER else "dv" for k in self.spec.group_by]
        where = Where([], [])
        where.add("mid = ?", self.mid)
        if key is not None:
            table += "_dim"
            where.add("dk = ?", key)
        where.add("b >= ?", start)
        where.add("b < ?", end)
        if allowed is not None:
            where.add(f"dv IN ({','.join('?' * len(allowed))})", *allowed)
        if self.sids is not None:
            where.add(f"sid IN ({','.join('?' * len(self.sids))})", *self.sids)
        if self._unique_per_bucket(lab, width, key, allowed):
            select = ", ".join([*cols, "b", "s, c, mn, mx, -1"])
            sql = f"SELECT {select} FROM {table} WHERE {where.text()}"
        else:
            select = ", ".join([*cols, label_sql(lab, "b"), "sum(s), sum(c), min(mn), max(mx), -1"])
            group = ", ".join(str(i) for i in range(1, len(cols) + 2))
            sql = f"SELECT {select} FROM {table} WHERE {where.text()} GROUP BY {group}"
        return self.conn.execute(sql, where.params).fetchall()

    def _unique_per_bucket(self, lab: Labeling, width: int, key: str | None, allowed: list[str] | None) -> bool:
        """Whether rollup rows are already one per output cell (window = bucket, every key column grouped)."""
        if lab.kind != "uniform" or lab.width != width or lab.origin % width:
            return False
        one_sid = CUSTOMER in self.spec.group_by or (self.sids is not None and len(self.sids) == 1)
        one_dv = key is None or key in self.spec.group_by or (allowed is not None and len(allowed) == 1)
        return one_sid and one_dv

    # unique_count and latest ---------------------------------------------------------------------------
    def _unique(self, lab: Labeling) -> list[Row]:
        cols, params = self._raw_groups()
        path = json_path(self.unique) if self.unique is not None else None
        if self.unique is not None and path is None:
            raise Fallback
        distinct = "count(DISTINCT json_extract(dims, ?))" if path is not None else "0"
        dparams = [path] if path is not None else []
        where = self._raw_where(self.spec.start, self.spec.end, tail=False)
        n = len(cols)
        select = ", ".join([*cols, label_sql(lab, "time"), distinct])
        group = ", ".join(str(i) for i in range(1, n + 2))
        rows = self._raw_select(select, [*params, *dparams], where, False, group)
        grouped = self._by_group({tuple(r[: n + 1]): float(r[n + 1]) for r in rows}, n)
        if grouped is None:
            raise Fallback
        totals: dict[Group, float | None] | None = None
        if self.spec.take is not None:
            select = ", ".join([*cols, distinct])
            totals = {self._group(tuple(r[:n])): float(r[n])
                      for r in self._raw_select(select, [*params, *dparams], where, False, ", ".join(
                          str(i) for i in range(1, n + 1)))}
        return self._finish(grouped, totals)

    def _latest(self, lab: Labeling) -> list[Row]:
        cols, params = self._raw_groups()
        n = len(cols)
        named = [f"{c} AS g{i}" for i, c in enumerate(cols)]
        keys = [f"g{i}" for i in range(n)]
        where = self._raw_where(self.spec.start, self.spec.end, tail=False)
        inner = ", ".join([*named, f"{label_sql(lab, 'time')} AS w", "value", "time", "id", "seq"])
        partition = ", ".join([*keys, "w"])
        sql = (
            f"SELECT {', '.join([*keys, 'w', 'value', 'time', 'id'])} FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY time DESC, id DESC, seq) AS rn "
            f"FROM (SELECT {inner} FROM events INDEXED BY events_q WHERE {where.text()})) WHERE rn = 1"
        )
        rows = self.conn.execute(sql, [*params, *where.params]).fetchall()
        grouped = self._by_group({tuple(r[: n + 1]): r[n + 1 :] for r in rows}, n)
        if grouped is None:
            raise Fallback
        cells = {g: {w: float(c[0]) for w, c in per.items()} for g, per in grouped.items()}
        totals = {g: float(max(per.values(), key=lambda c: (c[1], c[2]))[0]) for g, per in grouped.items()}
        return self._finish(cells, totals)

    # python ----------------------------------------------------------------------------------------------
    def _python(self) -> list[Row]:
        spec = self.spec
        where = Where(["mid = ?", "live = 1"], [self.mid])
        if self.aggregation is Aggregation.DURATION:
            where.add("time < ?", spec.end)
            where.add("coalesce(end_time, ?) > ?", min(spec.end, self.now), spec.start)
        else:
            where.add("time >= ?", spec.start)
            where.add("time < ?", spec.end)
        if self.sids is not None:
            where.add(f"sid IN ({','.join('?' * len(self.sids))})", *self.sids)
        sql = f"SELECT sid, id, time, value, dims, end_time, surface FROM events WHERE {where.text()} ORDER BY seq"
        events = [
            UsageEvent(event_id, self.meter, self.names.customer(self.conn, sid), time, value,
                       dims_value(dims), end_time, surface)
            for sid, event_id, time, value, dims, end_time, surface in self.conn.execute(sql, where.params)
        ]
        return evaluate(events, self.defs, replace(spec, meters=(self.meter,), exclude_meters=()), self.now)


def _merge(a: tuple[Any, ...], b: tuple[Any, ...], n: int) -> tuple[Any, ...]:
    """Two partial (group..., window, sum, count, min, max, first seq) rows of one cell as one."""
    return (*a[: n + 1], a[n + 1] + b[n + 1], a[n + 2] + b[n + 2], min(a[n + 3], b[n + 3]), max(a[n + 4], b[n + 4]),
            min(a[n + 5], b[n + 5]))


_RESULT: dict[Aggregation, Callable[[tuple[Any, ...], int], float | None]] = {
    Aggregation.SUM: lambda r, n: float(r[n + 1]),
    Aggregation.COUNT: lambda r, n: float(r[n + 2]),
    Aggregation.MIN: lambda r, n: float(r[n + 3]),
    Aggregation.MAX: lambda r, n: float(r[n + 4]),
    Aggregation.AVG: lambda r, n: float(r[n + 1]) / r[n + 2],
}


def _python_key(value: Scalar) -> object:
    """Values Python treats as one dict key (1, 1.0, True; 0.0, -0.0) map to one key."""
    return ("n", value) if isinstance(value, int | float) else ("s", value)
