"""PostgreSQL queries: answer from the exact rollup cache (plus pending events) when the spec allows it,
otherwise evaluate the reference fold over the selected live events. Both equal ``core.query.evaluate``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from meterd.core.models import Aggregation, Meter, Scalar, UsageEvent
from meterd.core.query import (
    CUSTOMER,
    MAX_RANGE_WINDOWS,
    FilterOp,
    QuerySpec,
    Row,
    evaluate,
    resolve_aggregation,
)
from meterd.core.rollplan import assemble_values
from meterd.core.windows import Window, windows_between, zone
from meterd.storage.postgres_fold import DAY_MS, HOUR_MS, LVL_DAY, LVL_HOUR
from meterd.storage.postgres_rows import METER_COLUMNS, to_meter

Conn = AsyncConnection[Any]
ROLLABLE = frozenset({Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX, Aggregation.AVG})


@dataclass(frozen=True, slots=True)
class Plan:
    """How to answer from the rollup: its level, the one dimension key involved ('' for none), the frames."""

    lvl: int
    dkey: str
    frames: list[tuple[int, int]]


async def run_query(conn: Conn, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
    """The query's rows, read in one REPEATABLE READ snapshot (the caller opened the transaction)."""
    spec.check()
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cur = await conn.execute(f"SELECT {METER_COLUMNS} FROM meters WHERE tenant = %s", (tenant,))
    meters = {m.key: m for m in map(to_meter, await cur.fetchall())}
    plan = await choose_plan(conn, tenant, spec, meters)
    rows = None if plan is None else await rollup_query(conn, tenant, spec, meters, plan)
    return await raw_query(conn, tenant, spec, meters, now) if rows is None else rows


def frames_of(spec: QuerySpec) -> list[tuple[int, int]] | None:
    """The spec's windows, or None when there are too many to plan (the reference path then reports it)."""
    if spec.window is Window.NONE:
        return [(spec.start, spec.end)]
    frames: list[tuple[int, int]] = []
    for frame in windows_between(spec.start, spec.end, spec.window, zone(spec.time_zone)):
        frames.append(frame)
        if len(frames) > MAX_RANGE_WINDOWS:
            return None
    return frames


def level_for(spec: QuerySpec, frames: list[tuple[int, int]], dkey: str) -> int | None:
    """The coarsest rollup level whose buckets tile every window of the spec (inside its range)."""
    cuts = {spec.start, spec.end}
    cuts.update(b for f in frames for b in f if spec.start < b < spec.end)
    for lvl, width in ((LVL_DAY, DAY_MS), (LVL_HOUR, HOUR_MS)):
        if lvl == LVL_HOUR and dkey:
            return None
        if all(c % width == 0 for c in cuts):
            return lvl
    return None


def dimension_keys(spec: QuerySpec) -> set[str]:
    return {g for g in spec.group_by if g != CUSTOMER} | {f.key for f in spec.filters}


async def choose_plan(conn: Conn, tenant: str, spec: QuerySpec, meters: dict[str, Meter]) -> Plan | None:
    """A rollup plan when every meter's aggregation folds exactly and the windows align, else None."""
    if spec.window is Window.MINUTE:
        return None
    scope = [m for m in spec.meters if m not in spec.exclude_meters] if spec.meters else None
    candidates = scope if scope is not None else [k for k in meters if k not in spec.exclude_meters]
    if any(resolve_aggregation(spec, meters.get(m))[0] not in ROLLABLE for m in candidates):
        return None
    keys = dimension_keys(spec)
    if len(keys) > 1 or any("\x00" in k for k in keys):
        return None
    dkey = next(iter(keys), "")
    if dkey:
        if not scope:
            return None
        cur = await conn.execute(
            "SELECT count(*) FROM rollup_keys WHERE tenant = %s AND dkey = %s AND rolled AND meter = ANY(%s)",
            (tenant, dkey, scope),
        )
        row = await cur.fetchone()
        if row is None or row[0] != len(set(scope)):
            return None
    frames = frames_of(spec)
    if frames is None:
        return None
    lvl = level_for(spec, frames, dkey)
    return None if lvl is None else Plan(lvl, dkey, frames)


def filter_sql(spec: QuerySpec, params: dict[str, Any], dval: str) -> str:
    """WHERE conditions shared by the rollup and pending halves of a rollup query.

    A NULL ``dval`` (a pending value that cannot be rolled up) always passes, so the caller sees it.
    """
    parts = []
    if spec.meters:
        parts.append("meter = ANY(%(meters)s)")
        params["meters"] = list(spec.meters)
    if spec.exclude_meters:
        parts.append("NOT (meter = ANY(%(excluded)s))")
        params["excluded"] = list(spec.exclude_meters)
    if spec.customers is not None:
        parts.append("customer = ANY(%(customers)s)")
        params["customers"] = list(spec.customers)
    for i, f in enumerate(spec.filters):
        params[f"f{i}"] = [json.dumps(v) for v in f.values]
        test = f"dcls({dval}) IN (SELECT dcls(x) FROM unnest(%(f{i})s::text[]) AS x)"
        keep = f.op in (FilterOp.EQ, FilterOp.IN)
        parts.append(f"({dval} IS NULL OR {test})" if keep else f"NOT coalesce({test}, false)")
    return "".join(f" AND {p}" for p in parts)


async def rollup_query(
    conn: Conn, tenant: str, spec: QuerySpec, meters: dict[str, Meter], plan: Plan
) -> list[Row] | None:
    """Fold rollup cells and pending events into the spec's windows; assemble rows in the core.

    When every rollup row is already one output cell (grouped by customer and the plan's key, windows the
    rollup's own buckets), rows are read as they are; otherwise SQL folds them into the windows first.
    None when a pending event's value of the plan's key cannot be rolled up (the reference path answers).
    """
    width = HOUR_MS if plan.lvl == LVL_HOUR else DAY_MS
    params: dict[str, Any] = {"t": tenant, "lvl": plan.lvl, "k": plan.dkey, "s": spec.start, "e": spec.end,
                              "frames": [f[0] for f in plan.frames], "w": width}
    pending_dval = "dval(coalesce(e.fdims, e.dims)::json -> %(k)s)" if plan.dkey else "'null'"
    by_customer = "customer" if CUSTOMER in spec.group_by else "''"
    by_dval = "dval" if plan.dkey in spec.group_by and plan.dkey != CUSTOMER else "'null'"
    frame = "(%(frames)s::bigint[])[width_bucket({0}, %(frames)s::bigint[])]"
    one_to_one = (
        CUSTOMER in spec.group_by
        and (not plan.dkey or plan.dkey in spec.group_by)
        and ((spec.window is Window.DAY and width == DAY_MS) or (spec.window is Window.HOUR and width == HOUR_MS))
    )
    where = "tenant = %(t)s AND lvl = %(lvl)s AND dkey = %(k)s AND bucket >= %(s)s AND bucket < %(e)s AND n > 0"
    where += filter_sql(spec, params, "dval")
    if one_to_one:
        rolled = f"SELECT meter, customer, dval, bucket, n, total, lo, hi FROM rollup WHERE {where}"
    else:
        rolled = (f"SELECT meter, {by_customer}, {by_dval}, {frame.format('bucket')}, sum(n)::bigint, sum(total), "
                  f"min(lo), max(hi) FROM rollup WHERE {where} GROUP BY 1, 2, 3, 4")
    pending = f"""
      SELECT meter, {by_customer}, {pending_dval},
             {frame.format('time - time %% %(w)s')}, count(*), sum(value), min(value), max(value)
      FROM pending AS p JOIN events AS e ON e.seq >= p.batch << 24 AND e.seq < (p.batch + 1) << 24
      WHERE p.tenant = %(t)s AND e.tenant = %(t)s AND NOT e.voided AND time >= %(s)s AND time < %(e)s
      {filter_sql(spec, params, pending_dval)}
      GROUP BY 1, 2, 3, 4"""
    cells: dict[str, dict[tuple[Scalar, ...], dict[int, list[Any]]]] = {}
    labels: dict[str, Scalar] = {}
    shape = tuple(g == CUSTOMER for g in spec.group_by)
    cur = await conn.execute(f"{rolled}\n      UNION ALL{pending}".encode(), params)
    for meter, customer, dval, start, n, total, lo, hi in await cur.fetchall():
        if dval in labels:
            label = labels[dval]
        elif dval is None:
            return None
        else:
            label = labels[dval] = json.loads(dval)
        # the plan's one dimension key gives ``label``; the common shapes skip the generic tuple build
        if shape == (True,):
            group: tuple[Scalar, ...] = (customer,)
        elif shape == (True, False):
            group = (customer, label)
        else:
            group = tuple(customer if is_customer else label for is_customer in shape)
        by_group = cells.get(meter)
        if by_group is None:
            by_group = cells[meter] = {}
        windows = by_group.get(group)
        if windows is None:
            windows = by_group[group] = {}
        part = windows.get(start)
        if part is None:
            windows[start] = [n, total, lo, hi]
        else:
            merge(part, n, total, lo, hi)
    rows: list[Row] = []
    for meter in sorted(cells):
        aggregation = resolve_aggregation(spec, meters.get(meter))[0]
        value = RESULT[aggregation]
        by_group = cells[meter]
        values = {g: {start: value(p) for start, p in w.items()} for g, w in by_group.items()}
        totals = None if spec.take is None else {g: value(whole(w.values())) for g, w in by_group.items()}
        rows.extend(assemble_values(meter, spec, plan.frames, aggregation, values, totals))
    return rows


# A cell's value from its partial aggregate [count, sum, min, max] (as ``Accumulator.result`` computes it).
RESULT: dict[Aggregation, Callable[[list[Any]], float | None]] = {
    Aggregation.SUM: lambda p: p[1],
    Aggregation.COUNT: lambda p: float(p[0]),
    Aggregation.MIN: lambda p: p[2],
    Aggregation.MAX: lambda p: p[3],
    Aggregation.AVG: lambda p: p[1] / p[0],
}


def merge(into: list[Any], n: int, total: float, lo: float | None, hi: float | None) -> None:
    """Fold one partial aggregate [count, sum, min, max] into another."""
    into[0] += n
    into[1] += total
    if lo is not None and (into[2] is None or lo < into[2]):
        into[2] = lo
    if hi is not None and (into[3] is None or hi > into[3]):
        into[3] = hi


def whole(parts: Iterable[list[Any]]) -> list[Any]:
    """One partial aggregate of several (a group's total over its windows)."""
    out: list[Any] = [0, 0.0, None, None]
    for p in parts:
        merge(out, *p)
    return out


async def raw_query(conn: Conn, tenant: str, spec: QuerySpec, meters: dict[str, Meter], now: int) -> list[Row]:
    """The reference evaluation over the live events the spec can select (in ingest order)."""
    params: dict[str, Any] = {"t": tenant, "s": spec.start, "e": spec.end}
    where = ["tenant = %(t)s", "NOT voided"]
    if spec.meters:
        where.append("meter = ANY(%(meters)s)")
        params["meters"] = list(spec.meters)
    if spec.exclude_meters:
        where.append("NOT (meter = ANY(%(excluded)s))")
        params["excluded"] = list(spec.exclude_meters)
    if spec.customers is not None:
        where.append("customer = ANY(%(customers)s)")
        params["customers"] = list(spec.customers)
    in_range = "(time >= %(s)s AND time < %(e)s)"
    open_ended = "(time < %(e)s AND (end_time IS NULL OR end_time > %(s)s))"
    if spec.aggregation is Aggregation.DURATION:
        where.append(open_ended)
    elif spec.aggregation is None:
        params["durations"] = [k for k, m in meters.items() if m.aggregation is Aggregation.DURATION]
        where.append(f"({in_range} OR (meter = ANY(%(durations)s) AND {open_ended}))")
    else:
        where.append(in_range)
    cur = await conn.execute(
        "SELECT id, meter, customer, time, value, dims, end_time, surface FROM events WHERE "
        + " AND ".join(where) + " ORDER BY seq",
        params,
    )
    events = [
        UsageEvent(event_id, meter, customer, time, value, json.loads(dims), end_time, surface)
        for event_id, meter, customer, time, value, dims, end_time, surface in await cur.fetchall()
    ]
    return evaluate(events, meters, spec, now)
