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

import json
import sqlite3
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
    Labeling,
    aligned,
    frames,
    labeling,
    split,
)
from meterd.storage.sqlite_conn import ReadTx
from meterd.storage.sqlite_rollup import watermark
from meterd.storage.sqlite_rows import Names, dims_value, json_path, meter_row

INT64 = 2**63
SUM_AGGS = "min(seq), sum(value), count(*), min(value), max(value)"


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
        self._decoded: dict[str, Scalar] = {}

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
            fold = self._fold(lab)
        except Fallback:
            return self._python()
        return assemble(fold.cells, fold.totals, self.defs, self.spec)

    def _fold(self, lab: Labeling) -> Fold:
        fold = Fold(self.meter, self.aggregation, self.unique)
        if self.aggregation is Aggregation.UNIQUE_COUNT:
            self._unique(fold, lab)
        elif self.aggregation is Aggregation.LATEST:
            self._latest(fold, lab)
        else:
            parts: list[tuple[Any, ...]] = []
            rolled = self._rolled_key()
            if rolled is None:
                parts += self._raw_sums(lab, self.spec.start, self.spec.end, tail=False)
            else:
                parts += self._pieces(lab, rolled[0], rolled[1])
            self._fold_sums(fold, parts)
        return fold

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
                cols.append("(dims -> ?)")
                params.append(path)
        return cols, params

    def _decode(self, key: str, raw: Any) -> Scalar:
        if key == CUSTOMER:
            return self.names.customer(self.conn, int(raw))
        if raw is None:
            return None
        text = str(raw)
        found = self._decoded.get(text)
        if found is None and text not in self._decoded:
            found = self._decoded[text] = json.loads(text)
        return found

    def _group(self, raw: tuple[Any, ...]) -> tuple[Scalar, ...]:
        return tuple(self._decode(key, value) for key, value in zip(self.spec.group_by, raw, strict=True))

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
        sql = f"SELECT {select} FROM {source} WHERE {where.text()} GROUP BY {group}"
        return self.conn.execute(sql, [*params, *where.params]).fetchall()

    # sum, count, min, max, avg ---------------------------------------------------------------------------
    def _raw_sums(self, lab: Labeling, start: int, end: int, tail: bool) -> list[tuple[Any, ...]]:
        cols, params = self._raw_groups()
        select = ", ".join([*cols, label_sql(lab, "time"), SUM_AGGS])
        group = ", ".join(str(i) for i in range(1, len(cols) + 2))
        rows = self._raw_select(select, params, self._raw_where(start, end, tail), tail, group)
        n = len(cols)
        return [(r[n + 1], tuple(r[:n]), r[n], *r[n + 2 :]) for r in rows]

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
        for start, end in pieces.raw:
            parts += self._raw_sums(lab, start, end, tail=False)
        if allowed is not None and not allowed:
            return parts
        for table, ranges in (("roll_hour", pieces.hour), ("roll_day", pieces.day)):
            for start, end in ranges:
                parts += self._rollup(lab, table, key, allowed, start, end)
        interior = pieces.interior
        if interior is not None:
            parts += self._raw_sums(lab, interior[0], interior[1], tail=True)
        return parts

    def _rollup(
        self, lab: Labeling, table: str, key: str | None, allowed: list[str] | None, start: int, end: int
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
        select = ", ".join([*cols, label_sql(lab, "b"), "sum(s), sum(c), min(mn), max(mx)"])
        group = ", ".join(str(i) for i in range(1, len(cols) + 2))
        sql = f"SELECT {select} FROM {table} WHERE {where.text()} GROUP BY {group}"
        n = len(cols)
        return [(-1, tuple(r[:n]), r[n], *r[n + 1 :]) for r in self.conn.execute(sql, where.params)]

    def _fold_sums(self, fold: Fold, parts: list[tuple[Any, ...]]) -> None:
        parts.sort(key=lambda p: p[0])
        for _, raw_group, window, total, count, low, high in parts:
            fold.add(self._group(raw_group), int(window), float(total), int(count), float(low), float(high))

    # unique_count and latest ---------------------------------------------------------------------------
    def _check_unambiguous(self, raw_groups: list[tuple[Any, ...]]) -> None:
        seen: dict[tuple[object, ...], tuple[Any, ...]] = {}
        for raw in raw_groups:
            key = tuple(_python_key(v) for v in self._group(raw))
            if seen.setdefault(key, raw) != raw:
                raise Fallback

    def _unique(self, fold: Fold, lab: Labeling) -> None:
        cols, params = self._raw_groups()
        path = json_path(self.unique) if self.unique is not None else None
        if self.unique is not None and path is None:
            raise Fallback
        distinct = "count(DISTINCT json_extract(dims, ?))" if path is not None else "0"
        dparams = [path] if path is not None else []
        where = self._raw_where(self.spec.start, self.spec.end, tail=False)
        n = len(cols)
        select = ", ".join([*cols, label_sql(lab, "time"), "min(seq)", distinct])
        group = ", ".join(str(i) for i in range(1, n + 2))
        rows = self._raw_select(select, [*params, *dparams], where, False, group)
        self._check_unambiguous([tuple(r[:n]) for r in rows])
        for r in sorted(rows, key=lambda r: r[n + 1]):
            fold.set_cell(self._group(tuple(r[:n])), int(r[n]), float(r[n + 2]))
        if self.spec.take is not None:
            select = ", ".join([*cols, distinct]) if cols else distinct
            sql = f"SELECT {select} FROM events INDEXED BY events_q WHERE {where.text()}"
            if cols:
                sql += f" GROUP BY {', '.join(str(i) for i in range(1, n + 1))}"
            for r in self.conn.execute(sql, [*params, *dparams, *where.params]):
                fold.set_total(self._group(tuple(r[:n])), float(r[n]))

    def _latest(self, fold: Fold, lab: Labeling) -> None:
        cols, params = self._raw_groups()
        n = len(cols)
        named = [f"{c} AS g{i}" for i, c in enumerate(cols)]
        keys = [f"g{i}" for i in range(n)]
        where = self._raw_where(self.spec.start, self.spec.end, tail=False)
        inner = ", ".join([*named, f"{label_sql(lab, 'time')} AS w", "value", "time", "id", "seq"])
        partition = ", ".join([*keys, "w"])
        sql = (
            f"SELECT {', '.join([*keys, 'w', 'value', 'time', 'id', 'seq'])} FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY time DESC, id DESC, seq) AS rn "
            f"FROM (SELECT {inner} FROM events INDEXED BY events_q WHERE {where.text()})) WHERE rn = 1"
        )
        rows = self.conn.execute(sql, [*params, *where.params]).fetchall()
        self._check_unambiguous([tuple(r[:n]) for r in rows])
        for r in sorted(rows, key=lambda r: r[n + 4]):
            fold.add_latest(self._group(tuple(r[:n])), int(r[n]), int(r[n + 2]), str(r[n + 3]), float(r[n + 1]))

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


def _python_key(value: Scalar) -> object:
    """Values Python treats as one dict key (1, 1.0, True; 0.0, -0.0) map to one key."""
    return ("n", value) if isinstance(value, int | float) else ("s", value)
