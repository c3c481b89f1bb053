"""Property: POST /v1/query equals a naive reference computed here, over random ingest histories.

Histories mix duplicates, conflicting resends, voids, amendments and late events; queries mix windows,
time zones across DST changes, group-by, aggregations and take. The reference below buckets with plain
datetime arithmetic and never calls meterd's own query code.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store

BASE = datetime(2024, 10, 24, tzinfo=UTC)  # the range spans Europe's (Oct 27) and America's (Nov 3) fall-back
SPAN_HOURS = 14 * 24
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]


@dataclass(frozen=True)
class Ev:
    id: str
    customer: str
    region: str | None
    hour_offset: float
    value: int

    def record(self) -> dict[str, Any]:
        when = BASE + timedelta(hours=self.hour_offset)
        dims = {"region": self.region} if self.region is not None else {}
        return {
            "id": self.id,
            "meter": "m",
            "customer": self.customer,
            "time": when.isoformat(),
            "value": self.value,
            "dimensions": dims,
        }

    def instant(self) -> datetime:
        return BASE + timedelta(hours=self.hour_offset)


events_st = st.builds(
    Ev,
    id=st.sampled_from([f"e{i}" for i in range(25)]),
    customer=st.sampled_from(["acme", "beta", "corp"]),
    region=st.sampled_from(["eu", "us", None]),
    hour_offset=st.integers(0, SPAN_HOURS * 4 - 1).map(lambda q: q / 4),
    value=st.integers(0, 50),
)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(events_st, min_size=1, max_size=12)),
        st.tuples(st.just("void"), st.sampled_from([f"e{i}" for i in range(25)])),
        st.tuples(st.just("amend"), st.sampled_from([f"e{i}" for i in range(25)]), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=8,
)
query_st = st.fixed_dictionaries(
    {
        "window": st.sampled_from(["none", "hour", "day", "week", "month"]),
        "time_zone": st.sampled_from(ZONES),
        "group_by": st.sampled_from([[], ["customer"], ["region"], ["customer", "region"]]),
        "aggregation": st.sampled_from(["sum", "count", "min", "max", "avg", "latest"]),
        "start_h": st.integers(0, SPAN_HOURS - 1),
        "len_h": st.integers(1, SPAN_HOURS),
        "take": st.one_of(st.none(), st.tuples(st.integers(1, 3), st.booleans())),
    }
)


def apply(ops: list[Any]) -> dict[str, Ev]:
    """The live events after the history, by the domain rules (first content of an id wins)."""
    stored: dict[str, Ev] = {}
    live: dict[str, Ev] = {}
    for op in ops:
        if op[0] == "ingest":
            for ev in op[1]:
                if ev.id not in stored:
                    stored[ev.id] = ev
                    live[ev.id] = ev
        elif op[0] == "void" and op[1] in live:
            del live[op[1]]
        elif op[0] == "amend" and op[1] in live:
            old = live.pop(op[1])
            new = Ev(f"{old.id}-amended", old.customer, old.region, old.hour_offset, op[2])
            stored[new.id] = new
            live[new.id] = new
    return live


def bucket(instant: datetime, window: str, tz: ZoneInfo) -> datetime:
    local = instant.astimezone(tz)
    if window == "hour":
        return (instant - timedelta(minutes=local.minute, seconds=local.second)).replace(microsecond=0)
    if window == "day":
        return datetime(local.year, local.month, local.day, tzinfo=tz).astimezone(UTC)
    if window == "week":
        monday = local.date() - timedelta(days=local.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=tz).astimezone(UTC)
    return datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)


def fold(aggregation: str, evs: list[Ev]) -> float:
    values = [e.value for e in evs]
    if aggregation == "sum":
        return float(sum(values))
    if aggregation == "count":
        return float(len(values))
    if aggregation == "min":
        return float(min(values))
    if aggregation == "max":
        return float(max(values))
    if aggregation == "avg":
        return sum(values) / len(values)
    return float(max(evs, key=lambda e: (e.instant(), e.id)).value)


def reference(live: dict[str, Ev], q: dict[str, Any]) -> set[tuple[Any, ...]]:
    start = BASE + timedelta(hours=q["start_h"])
    end = start + timedelta(hours=q["len_h"])
    tz = ZoneInfo(q["time_zone"])
    chosen = [e for e in live.values() if start <= e.instant() < end]

    def group(e: Ev) -> tuple[Any, ...]:
        return tuple(e.customer if k == "customer" else e.region for k in q["group_by"])

    groups: dict[tuple[Any, ...], list[Ev]] = {}
    for e in chosen:
        groups.setdefault(group(e), []).append(e)
    keep = set(groups)
    if q["take"] is not None:
        limit, descending = q["take"]
        ordered = sorted(groups, key=lambda g: tuple((0, "") if v is None else (1, v) for v in g))
        ordered.sort(
            key=lambda g: -fold(q["aggregation"], groups[g]) if descending else fold(q["aggregation"], groups[g])
        )
        keep = set(ordered[:limit])
    rows = set()
    for g in keep:
        cells: dict[datetime, list[Ev]] = {}
        for e in groups[g]:
            key = start if q["window"] == "none" else bucket(e.instant(), q["window"], tz)
            cells.setdefault(key, []).append(e)
        for when, evs in cells.items():
            rows.add((when, g, round(fold(q["aggregation"], evs), 6)))
    return rows


async def run(ops: list[Any], q: dict[str, Any], database: str) -> set[tuple[Any, ...]]:
    store = create_store(database)
    app = create_app(Settings(database_url=database), store=store)
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"authorization": f"Bearer {key}"}
        ) as client:
            for op in ops:
                if op[0] == "ingest":
                    r = await client.post("/v1/events", json=[e.record() for e in op[1]])
                    assert r.status_code == 200
                elif op[0] == "void":
                    r = await client.post(f"/v1/events/{op[1]}/void", json={"reason": "test"})
                    assert r.status_code in (200, 404, 409)
                else:
                    body = {"reason": "test", "event": {"id": f"{op[1]}-amended", "value": op[2]}}
                    r = await client.post(f"/v1/events/{op[1]}/amend", json=body)
                    assert r.status_code in (200, 404, 409)
            start = BASE + timedelta(hours=q["start_h"])
            body = {
                "meter": "m",
                "from": start.isoformat(),
                "to": (start + timedelta(hours=q["len_h"])).isoformat(),
                "window": q["window"],
                "time_zone": q["time_zone"],
                "group_by": q["group_by"],
                "aggregation": q["aggregation"],
            }
            if q["take"] is not None:
                body["take"] = {"limit": q["take"][0], "order": "desc" if q["take"][1] else "asc"}
            r = await client.post("/v1/query", json=body)
            assert r.status_code == 200, r.text
            return {
                (
                    datetime.fromisoformat(row["start"]),
                    tuple(row["group"][k] for k in q["group_by"]),
                    round(row["value"], 6),
                )
                for row in r.json()["rows"]
            }


def database_urls(tmp: Path) -> list[str]:
    urls = ["memory://"]
    try:
        import meterd.storage.sqlite  # noqa: F401

        urls.append(str(tmp / "property.db"))
    except ImportError:
        pass
    return urls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_st, q=query_st)
def test_query_equals_naive_reference(ops: list[Any], q: dict[str, Any]) -> None:
    live = apply(ops)
    expected = reference(live, q)
    with tempfile.TemporaryDirectory() as tmp:
        for url in database_urls(Path(tmp)):
            assert asyncio.run(run(ops, q, url)) == expected, url
    assert not any(math.isnan(v) for _, _, v in expected)
