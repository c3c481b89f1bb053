"""Native queries with attribute_to_owner: dyno-hours per user per day by product, checked against hand
computations and (hypothesis) against a brute-force reference over an hourly grid."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.intervals import Claim
from meterd.core.models import Aggregation, Meter, UsageEvent
from meterd.core.query import QuerySpec, Window
from meterd.core.timeutil import parse_time
from meterd.service import Meterd
from meterd.service.attribution import attributed_query
from meterd.service.ownership import record_ownership
from meterd.storage.memory import MemoryStore

DYNO, ADDON = "platform:dyno:logical", "addon:memcache:100mb"
U1, U2, A, B = "u1@heroku.com", "u2@heroku.com", "appa@heroku.com", "appb@heroku.com"
H = 3_600_000
DAY = 24 * H
S = parse_time("2013-01-01T00:00:00Z")


def iso(ms: int) -> str:
    from meterd.core.timeutil import format_seconds

    return format_seconds(ms)


async def put(vault: httpx.AsyncClient, path: str) -> None:
    r = await vault.put(path)
    assert r.status_code == 201, r.text


async def seed(vault: httpx.AsyncClient) -> None:
    """U1 owns A until day 2 noon, then U2; U1 owns B throughout; U1 also uses an add-on itself."""
    o1, o2, o3 = (str(uuid.uuid4()) for _ in range(3))
    await put(vault, f"/users/{U1}/apps/{A}/open/{o1}/{iso(S)}")
    await put(vault, f"/users/{U1}/apps/{A}/close/{o1}/{iso(S + DAY + 12 * H)}")
    await put(vault, f"/users/{U2}/apps/{A}/open/{o2}/{iso(S + DAY + 12 * H)}")
    await put(vault, f"/users/{U1}/apps/{B}/open/{o3}/{iso(S - DAY)}")
    e1, e2, e3 = (str(uuid.uuid4()) for _ in range(3))
    await put(vault, f"/products/{DYNO}/usage/{A}/events/{e1}/open/{iso(S + 6 * H)}/close/{iso(S + 2 * DAY + 6 * H)}")
    await put(vault, f"/products/{DYNO}/usage/{B}/events/{e2}/open/{iso(S + DAY)}")  # still open
    await put(vault, f"/products/{ADDON}/usage/{U1}/events/{e3}/open/{iso(S)}/close/{iso(S + H)}")


def query(**extra: Any) -> dict[str, Any]:
    return {
        "from": iso(S),
        "to": iso(S + 3 * DAY),
        "window": "day",
        "group_by": ["customer"],
        "attribute_to_owner": True,
        **extra,
    }


def table(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    return {(r["meter"], r["group"].get("customer", "*"), r["start"][:10]): r["value"] / 3600 for r in rows}


async def test_dyno_hours_per_user_per_day_by_product(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    await seed(vault)
    r = await native.post("/v1/query", json=query())
    assert r.status_code == 200, r.text
    assert table(r.json()["rows"]) == {
        (ADDON, U1, "2013-01-01"): 1.0,
        (DYNO, U1, "2013-01-01"): 18.0,  # A from 06:00
        (DYNO, U1, "2013-01-02"): 12.0 + 24.0,  # A until noon, B all day
        (DYNO, U1, "2013-01-03"): 24.0,  # B, open: counted to the query's end
        (DYNO, U2, "2013-01-02"): 12.0,
        (DYNO, U2, "2013-01-03"): 6.0,
    }


async def test_without_attribution_usage_stays_with_the_apps(
    vault: httpx.AsyncClient, native: httpx.AsyncClient
) -> None:
    await seed(vault)
    rows = (await native.post("/v1/query", json=query(attribute_to_owner=False, window="none"))).json()["rows"]
    assert table(rows) == {(ADDON, U1, "2013-01-01"): 1.0, (DYNO, A, "2013-01-01"): 48.0, (DYNO, B, "2013-01-01"): 48.0}
    attributed = (await native.post("/v1/query", json=query(window="none"))).json()["rows"]
    assert table(attributed) == {
        (ADDON, U1, "2013-01-01"): 1.0,
        (DYNO, U1, "2013-01-01"): 78.0,
        (DYNO, U2, "2013-01-01"): 18.0,
    }
    assert attributed[0]["start"] == "2013-01-01T00:00:00.000Z" and attributed[0]["end"] == "2013-01-04T00:00:00.000Z"


async def test_filters_take_dense_and_no_grouping(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    await seed(vault)
    rows = (await native.post("/v1/query", json=query(filters={"customers": [U2]}, dense=True))).json()["rows"]
    assert table(rows) == {(DYNO, U2, "2013-01-01"): 0.0, (DYNO, U2, "2013-01-02"): 12.0, (DYNO, U2, "2013-01-03"): 6.0}
    rows = (await native.post("/v1/query", json=query(meter=DYNO, window="none", take={"limit": 1}))).json()["rows"]
    assert table(rows) == {(DYNO, U1, "2013-01-01"): 78.0}
    rows = (await native.post("/v1/query", json=query(meter=DYNO, window="none", group_by=[]))).json()["rows"]
    assert table(rows) == {(DYNO, "*", "2013-01-01"): 96.0}  # attribution conserves the total


async def test_latest_cannot_be_attributed(native: httpx.AsyncClient) -> None:
    r = await native.post("/v1/query", json=query(aggregation="latest"))
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "aggregation"


async def test_csv_answer(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    await seed(vault)
    r = await native.post("/v1/query", json=query(meter=ADDON), headers={"accept": "text/csv"})
    assert r.text.splitlines() == [
        "meter,start,end,customer,value",
        f"{ADDON},2013-01-01T00:00:00.000Z,2013-01-02T00:00:00.000Z,{U1},3600.0",
    ]


# --------------------------------------------------------------------------------------------------------
# property: the service equals a brute-force reference over an hourly grid


@dataclass(frozen=True)
class Own:
    id: str
    owner: str
    resource: str
    start: int
    stop: int | None


CUSTOMERS = [U1, U2, A, B]
hour = st.integers(min_value=-24, max_value=4 * 24)
owns = st.lists(
    st.builds(
        lambda i, owner, res, start, length: Own(
            f"o{i:03d}", owner, res, S + start * H, None if length is None else S + (start + length) * H
        ),
        st.integers(0, 999),
        st.sampled_from([U1, U2]),
        st.sampled_from([A, B]),
        hour,
        st.none() | st.integers(0, 60),
    ),
    max_size=5,
    unique_by=lambda o: o.id,
)
events = st.lists(
    st.tuples(
        st.sampled_from(CUSTOMERS),
        hour,
        st.none() | st.integers(0, 50),
        st.integers(1, 5),
        st.sampled_from(["x", "y", "z"]),
    ),
    max_size=8,
)
AGGREGATIONS = [
    Aggregation.DURATION,
    Aggregation.SUM,
    Aggregation.COUNT,
    Aggregation.MAX,
    Aggregation.MIN,
    Aggregation.AVG,
    Aggregation.UNIQUE_COUNT,
]


def owner_at(resource: str, at: int, ownerships: list[Own]) -> str:
    """Whoever's ownership contains ``at`` and started last (ties: larger id); else the resource itself."""
    best: Own | None = None
    for o in ownerships:
        inside = o.resource == resource and o.start <= at and (o.stop is None or at < o.stop)
        if inside and (best is None or (o.start, o.id) > (best.start, best.id)):
            best = o
    return best.owner if best else resource


def reference(
    evs: list[UsageEvent],
    ownerships: list[Own],
    aggregation: Aggregation,
    start: int,
    end: int,
    now: int,
    customers: list[str] | None,
) -> dict[tuple[str, int], float]:
    """(customer, day) → value, by brute force: every hour slot (durations) or every event time (others)."""
    folded: dict[tuple[str, int], list[tuple[float, object]]] = defaultdict(list)
    for e in evs:
        if aggregation is Aggregation.DURATION:
            stop = e.end_time if e.end_time is not None else min(end, now)
            slot = e.time
            while slot < min(stop, end):
                if slot >= start:
                    folded[(owner_at(e.customer, slot, ownerships), (slot - S) // DAY)].append((3600.0 * e.value, None))
                slot += H
        elif start <= e.time < end:
            folded[(owner_at(e.customer, e.time, ownerships), (e.time - S) // DAY)].append((e.value, e.dimensions["k"]))
    out: dict[tuple[str, int], float] = {}
    for key, items in folded.items():
        if customers is not None and key[0] not in customers:
            continue
        values = [v for v, _ in items]
        out[key] = {
            Aggregation.DURATION: sum(values),
            Aggregation.SUM: sum(values),
            Aggregation.COUNT: float(len(values)),
            Aggregation.MAX: max(values),
            Aggregation.MIN: min(values),
            Aggregation.AVG: sum(values) / len(values),
            Aggregation.UNIQUE_COUNT: float(len({d for _, d in items})),
        }[aggregation]
    return out


async def attributed(
    evs: list[UsageEvent], ownerships: list[Own], spec: QuerySpec, now: int
) -> dict[tuple[str, int], float]:
    store = MemoryStore()
    meterd = Meterd(store, clock=lambda: now)
    await store.put_meter("t", Meter("m", Aggregation.DURATION, unique_dimension="k"))
    assert set(await meterd.ingest_events("t", evs)) <= {"accepted"}
    for o in ownerships:
        claim = Claim((o.owner, o.resource), o.start, o.stop)
        await record_ownership(meterd, "t", "vault", o.id, claim, "{}")
    rows = await attributed_query(meterd, "t", spec)
    return {(str(r.group["customer"]), (r.start - S) // DAY): r.value for r in rows if r.value is not None}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    owns,
    events,
    st.sampled_from(AGGREGATIONS),
    st.integers(0, 4 * 24),
    st.none() | st.sampled_from([[U1], [U2, A], [B]]),
)
def test_attribution_matches_brute_force(
    ownerships: list[Own],
    raw: list[tuple[str, int, int | None, int, str]],
    aggregation: Aggregation,
    now_hour: int,
    customers: list[str] | None,
) -> None:
    ownerships = [o for o in ownerships if o.stop is None or o.stop >= o.start]
    evs = [
        UsageEvent(
            f"e{i}",
            "m",
            customer,
            S + h * H,
            float(value),
            {"k": k},
            None if length is None else S + (h + length) * H,
            "vault",
        )
        for i, (customer, h, length, value, k) in enumerate(raw)
    ]
    start, end, now = S, S + 3 * DAY, S + now_hour * H
    spec = QuerySpec(
        ("m",),
        start,
        end,
        Window.DAY,
        group_by=("customer",),
        aggregation=aggregation,
        customers=tuple(customers) if customers else None,
    )
    got = asyncio.run(attributed(evs, ownerships, spec, now))
    expected = reference(evs, ownerships, aggregation, start, end, now, customers)
    if aggregation is Aggregation.DURATION:  # evaluate keeps no cell for an empty interval; drop zero slots
        expected = {k: v for k, v in expected.items() if v}
        got = {k: v for k, v in got.items() if v}
    assert got == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(owns, events, st.integers(0, 4 * 24))
def test_attribution_conserves_totals(
    ownerships: list[Own], raw: list[tuple[str, int, int | None, int, str]], now_hour: int
) -> None:
    ownerships = [o for o in ownerships if o.stop is None or o.stop >= o.start]
    evs = [
        UsageEvent(f"e{i}", "m", c, S + h * H, float(v), {"k": k}, None if n is None else S + (h + n) * H, "vault")
        for i, (c, h, n, v, k) in enumerate(raw)
    ]
    spec = QuerySpec(("m",), S, S + 3 * DAY, Window.DAY, group_by=("customer",))
    got = asyncio.run(attributed(evs, ownerships, spec, S + now_hour * H))
    plain = asyncio.run(attributed(evs, [], spec, S + now_hour * H))
    assert sum(got.values()) == pytest.approx(sum(plain.values()))


def test_latest_is_refused_by_the_planner() -> None:
    spec = QuerySpec(("m",), S, S + DAY, aggregation=Aggregation.LATEST)
    with pytest.raises(InvalidInput):
        asyncio.run(attributed([], [], spec, S))


METERS = [
    Meter("dur", Aggregation.DURATION),
    Meter("avg", Aggregation.AVG),
    Meter("uniq", Aggregation.UNIQUE_COUNT, unique_dimension="k"),
    Meter("nodim", Aggregation.UNIQUE_COUNT),
    Meter("max", Aggregation.MAX),
    Meter("cnt", Aggregation.COUNT),
    Meter("gone", Aggregation.AVG),  # deleted from the catalog after ingest: counts as sum
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([m.key for m in METERS]),
            st.sampled_from(CUSTOMERS),
            hour,
            st.none() | st.integers(0, 50),
            st.integers(-3, 5),
            st.sampled_from(["x", "y", None]),
        ),
        max_size=12,
    ),
    st.sampled_from([(), ("dur",), ("avg", "uniq", "cnt"), ("gone", "max", "nodim")]),
    st.sampled_from([Window.NONE, Window.DAY, Window.HOUR]),
    st.sampled_from([(), ("customer",), ("k",), ("k", "customer")]),
    st.none() | st.sampled_from([Aggregation.SUM, Aggregation.AVG, Aggregation.UNIQUE_COUNT, Aggregation.MIN]),
    st.booleans(),
    st.none() | st.integers(1, 3),
    st.none() | st.sampled_from([[U1], [A, B]]),
)
def test_without_ownerships_attribution_equals_the_plain_query(
    raw: list[tuple[str, str, int, int | None, int, str | None]],
    meters: tuple[str, ...],
    window: Window,
    group_by: tuple[str, ...],
    aggregation: Aggregation | None,
    dense: bool,
    take: int | None,
    customers: list[str] | None,
) -> None:
    from meterd.core.query import Take

    evs = [
        UsageEvent(f"e{i}", m, c, S + h * H, float(v), {"k": k}, None if n is None else S + (h + n) * H, "x")
        for i, (m, c, h, n, v, k) in enumerate(raw)
    ]
    unique = "k" if aggregation is Aggregation.UNIQUE_COUNT else None
    spec = QuerySpec(
        meters,
        S,
        S + 2 * DAY,
        window,
        group_by=group_by,
        aggregation=aggregation,
        dense=dense,
        unique_dimension=unique,
        take=Take(take) if take else None,
        customers=tuple(customers) if customers else None,
    )

    async def both() -> tuple[list[Any], list[Any]]:
        store = MemoryStore()
        meterd = Meterd(store, clock=lambda: S + 30 * H)
        for meter in METERS:
            await store.put_meter("t", meter)
        await meterd.ingest_events("t", evs)
        await store.delete_meter("t", "gone")
        return await attributed_query(meterd, "t", spec), await meterd.query("t", spec)

    got, plain = asyncio.run(both())
    assert [(r.meter, r.start, r.end, r.group) for r in got] == [(r.meter, r.start, r.end, r.group) for r in plain]
    assert [r.value for r in got] == pytest.approx([r.value for r in plain])
