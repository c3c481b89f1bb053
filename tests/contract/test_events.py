"""Contract: ingest outcomes, isolation, event listing, corrections, rejections and ingest stats."""

from __future__ import annotations

import pytest

from meterd.core.errors import Conflict, FieldError, InvalidInput, NotFound
from meterd.core.events import record_json
from meterd.core.models import Correction, EventStatus, Outcome, UsageEvent
from meterd.core.query import QuerySpec
from meterd.storage.base import EventFilter, NewRejection, Store

A, D, C = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.CONFLICT
T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def ev(
    eid: str,
    value: float = 1.0,
    *,
    meter: str = "calls",
    customer: str = "acme",
    t: int = T0,
    dims: dict[str, object] | None = None,
    surface: str = "native",
    raw: str | None = None,
) -> UsageEvent:
    return UsageEvent(eid, meter, customer, t, value, dict(dims or {}), None, surface, raw)  # type: ignore[arg-type]


async def total(store: Store, tenant: str = "t", meter: str = "calls") -> float | None:
    rows = await store.query(tenant, QuerySpec((meter,), 0, T0 * 2), now=T0)
    return rows[0].value if rows else None


async def test_outcomes_accepted_duplicate_conflict_inside_and_across_batches(store: Store) -> None:
    out = await store.ingest("t", [ev("a", 1), ev("b", 2), ev("a", 1), ev("a", 5), ev("c", 3)], now=T0)
    assert out == [A, A, D, C, A]
    out = await store.ingest("t", [ev("b", 2), ev("b", 2.5), ev("d", 4), ev("d", 4)], now=T0)
    assert out == [D, C, A, D]
    assert await total(store) == 1 + 2 + 3 + 4
    stored = await store.get_event("t", "native", "a")
    assert stored is not None and stored.event.value == 1.0 and stored.status is EventStatus.LIVE


async def test_conflict_is_any_content_difference_and_kept_as_rejection(store: Store) -> None:
    base = ev("x", 1, dims={"region": "eu", "n": 1})
    assert await store.ingest("t", [base], now=T0) == [A]
    variants = [
        ev("x", 1, dims={"region": "eu", "n": 1.0}),
        ev("x", 1, dims={"region": "eu", "n": True}),
        ev("x", 1, dims={"region": "eu"}),
        ev("x", 1, dims={"region": "eu", "n": 1}, customer="other"),
        ev("x", 1, dims={"region": "eu", "n": 1}, meter="other"),
        ev("x", 1, dims={"region": "eu", "n": 1}, t=T0 + 1),
        UsageEvent("x", "calls", "acme", T0, 1.0, {"region": "eu", "n": 1}, T0 + 5),
    ]
    assert await store.ingest("t", variants, now=T0) == [C] * len(variants)
    same_other_order = ev("x", 1, dims={"n": 1, "region": "eu"}, raw="different raw payload")
    assert await store.ingest("t", [same_other_order], now=T0) == [D]
    page = await store.list_rejections("t")
    assert [r.code for r in page.items] == ["conflict"] * len(variants)
    first = page.items[0]
    assert first.event_id == "x" and first.meter == "calls" and first.surface == "native"
    assert first.message == "event 'x' exists with other content"
    assert first.raw == record_json(variants[0])
    assert first.created_at == T0


async def test_identity_is_tenant_surface_and_id(store: Store) -> None:
    assert await store.ingest("t1", [ev("e", 1)], now=T0) == [A]
    assert await store.ingest("t2", [ev("e", 10)], now=T0) == [A]
    assert await store.ingest("t1", [ev("e", 100, surface="aws")], now=T0) == [A]
    assert await store.ingest("t1", [ev("e", 1), ev("e", 100, surface="aws")], now=T0) == [D, D]
    assert await total(store, "t1") == 101
    assert await total(store, "t2") == 10
    assert await total(store, "t3") is None
    assert (await store.get_event("t2", "native", "e")).event.value == 10  # type: ignore[union-attr]
    assert await store.get_event("t3", "native", "e") is None
    assert await store.get_event("t1", "amie", "e") is None
    page = await store.list_events("t2", EventFilter())
    assert [(s.event.id, s.event.value) for s in page.items] == [("e", 10.0)]


async def test_get_event_returns_everything_stored(store: Store) -> None:
    e = UsageEvent(
        "full",
        "disk",
        "acme",
        T0 + 123,
        2.25,
        {"region": "eu", "n": 3, "f": 0.5, "b": False, "z": None},
        T0 + 5000,
        "vault",
        '{"raw": true}',
    )
    await store.ingest("t", [e], now=T0 + 9)
    stored = await store.get_event("t", "vault", "full")
    assert stored is not None
    assert stored.event == e
    assert stored.ingested_at == T0 + 9
    assert stored.status is EventStatus.LIVE and stored.replaces is None and stored.replaced_by is None


async def test_list_events_pages_and_filters(store: Store) -> None:
    batch = [
        ev(
            f"e{i}",
            i,
            meter="m1" if i % 2 else "m2",
            customer=f"c{i % 3}",
            t=T0 + i * 1000,
            surface="aws" if i == 5 else "native",
        )
        for i in range(10)
    ]
    await store.ingest("t", batch, now=T0)
    await store.ingest("u", [ev("other")], now=T0)
    await store.void_event("t", "native", "e4", "mistake", None, T0)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_events("t", EventFilter(), limit=3, cursor=cursor)
        seen += [s.event.id for s in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"e{i}" for i in range(10)]
    seqs = [s.seq for s in (await store.list_events("t", EventFilter(), limit=100)).items]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10

    async def ids(where: EventFilter) -> list[str]:
        return [s.event.id for s in (await store.list_events("t", where, limit=100)).items]

    assert await ids(EventFilter(meter="m1")) == ["e1", "e3", "e5", "e7", "e9"]
    assert await ids(EventFilter(customer="c0")) == ["e0", "e3", "e6", "e9"]
    assert await ids(EventFilter(surface="aws")) == ["e5"]
    assert await ids(EventFilter(start=T0 + 2000, end=T0 + 5000)) == ["e2", "e3", "e4"]
    assert await ids(EventFilter(status=EventStatus.VOIDED)) == ["e4"]
    assert "e4" not in await ids(EventFilter(status=EventStatus.LIVE))
    assert await ids(EventFilter(meter="m1", customer="c0", start=T0 + 4000)) == ["e9"]
    assert await ids(EventFilter(meter="nope")) == []
    assert await ids(EventFilter(customer="nobody")) == []
    last = await store.list_events("t", EventFilter(), limit=10)
    assert last.next_cursor is None


async def test_void_event(store: Store) -> None:
    await store.ingest("t", [ev("a", 1), ev("b", 2)], now=T0)
    correction = await store.void_event("t", "native", "a", "duplicate charge", "key-1", T0 + 5)
    assert correction == Correction(correction.id, "a", "native", "void", "duplicate charge", "key-1", T0 + 5)
    stored = await store.get_event("t", "native", "a")
    assert stored is not None and stored.status is EventStatus.VOIDED and stored.replaced_by is None
    assert await total(store) == 2
    with pytest.raises(Conflict):
        await store.void_event("t", "native", "a", "again", None, T0)
    with pytest.raises(NotFound):
        await store.void_event("t", "native", "zzz", "x", None, T0)
    with pytest.raises(NotFound):
        await store.void_event("other", "native", "b", "x", None, T0)
    # A voided id still dedups: same content is a duplicate, other content a conflict; nothing comes back.
    assert await store.ingest("t", [ev("a", 1), ev("a", 7)], now=T0) == [D, C]
    assert await total(store) == 2
    assert await store.list_corrections("t", "native", "a") == [correction]


async def test_amend_event_links_both_ways_and_audits(store: Store) -> None:
    await store.ingest("t", [ev("a", 1, dims={"region": "eu"}), ev("b", 2)], now=T0)
    replacement = ev("", 10, dims={"region": "us"}, customer="acme2")
    c1 = await store.amend_event("t", "native", "a", replacement, "wrong value", "k", T0 + 1)
    assert c1.action == "amend" and c1.replacement_id == f"a~{T0 + 1}" and c1.event_id == "a"
    assert c1.reason == "wrong value" and c1.key_id == "k" and c1.created_at == T0 + 1
    old = await store.get_event("t", "native", "a")
    new = await store.get_event("t", "native", f"a~{T0 + 1}")
    assert old is not None and new is not None
    assert old.status is EventStatus.VOIDED and old.replaced_by == f"a~{T0 + 1}"
    assert new.status is EventStatus.LIVE and new.replaces == "a" and new.ingested_at == T0 + 1
    assert new.event == UsageEvent(f"a~{T0 + 1}", "calls", "acme2", T0, 10.0, {"region": "us"}, None, "native")
    assert await total(store) == 12
    # Amend the replacement again, with an explicit id; the audit trail of the original follows the chain.
    c2 = await store.amend_event("t", "native", f"a~{T0 + 1}", ev("a-v3", 20), "again", None, T0 + 2)
    assert c2.replacement_id == "a-v3"
    assert await total(store) == 22
    assert await store.list_corrections("t", "native", "a") == [c1, c2]
    assert await store.list_corrections("t", "native", "a-v3") == []
    assert await store.list_corrections("t", "native", "b") == []
    with pytest.raises(Conflict):
        await store.amend_event("t", "native", "b", ev("a"), "id taken", None, T0 + 3)
    with pytest.raises(Conflict):
        await store.amend_event("t", "native", "a", ev("fresh"), "already voided", None, T0 + 3)
    with pytest.raises(NotFound):
        await store.amend_event("t", "native", "missing", ev("fresh2"), "x", None, T0 + 3)
    assert await store.get_event("t", "native", "fresh") is None
    assert await total(store) == 22
    assert await store.ingest("t", [ev("a-v3", 20)], now=T0) == [D]


async def test_rejections_add_list_page_delete(store: Store) -> None:
    errors = (FieldError("value", "must be a number"),)
    ids = await store.add_rejections(
        "t",
        [
            NewRejection("native", "invalid_input", "the event is invalid", '{"value": "x"}', "calls", "e1", errors),
            NewRejection("amie", "invalid_input", "bad record", "raw-2"),
            NewRejection("native", "invalid_input", "the event is invalid", "raw-3"),
        ],
        now=T0,
    )
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    other = await store.add_rejections("u", [NewRejection("native", "c", "m", "r")], now=T0)
    page = await store.list_rejections("t", limit=2)
    assert [r.raw for r in page.items] == ['{"value": "x"}', "raw-2"]
    first = page.items[0]
    assert (first.id, first.surface, first.code, first.message, first.meter, first.event_id, first.created_at) == (
        ids[0],
        "native",
        "invalid_input",
        "the event is invalid",
        "calls",
        "e1",
        T0,
    )
    assert [(e.path, e.message) for e in first.errors] == [("value", "must be a number")]
    assert page.next_cursor is not None
    rest = await store.list_rejections("t", limit=2, cursor=page.next_cursor)
    assert [r.raw for r in rest.items] == ["raw-3"] and rest.next_cursor is None
    assert [r.raw for r in (await store.list_rejections("t", surface="amie")).items] == ["raw-2"]
    assert await store.delete_rejections("t", [ids[0], ids[0], other[0], 999_999]) == 1
    assert [r.raw for r in (await store.list_rejections("t")).items] == ["raw-2", "raw-3"]
    assert [r.raw for r in (await store.list_rejections("u")).items] == ["r"]
    assert await store.delete_rejections("t", []) == 0


async def test_ingest_keeps_given_rejections_in_the_same_batch(store: Store) -> None:
    bad = NewRejection(
        "native",
        "invalid_input",
        "the event is invalid",
        '{"meter": 1}',
        None,
        None,
        (FieldError("meter", "is required"),),
    )
    out = await store.ingest("t", [ev("a"), ev("a", 3)], [bad], now=T0)
    assert out == [A, C]
    page = await store.list_rejections("t")
    assert [(r.code, r.raw) for r in page.items] == [("conflict", page.items[0].raw), ("invalid_input", '{"meter": 1}')]
    assert await store.ingest("t", [], [bad], now=T0) == []
    assert len((await store.list_rejections("t")).items) == 3


async def test_ingest_stats_counts_outcomes_and_groups_rejections(store: Store) -> None:
    minute = 60_000
    await store.ingest("t", [ev("a"), ev("b"), ev("a"), ev("a", 2, surface="native")], now=T0)
    await store.ingest(
        "t",
        [ev("c", meter="other", surface="aws")],
        [NewRejection("aws", "invalid_input", "bad time", "r1", "other")],
        now=T0 + minute,
    )
    await store.add_rejections(
        "t", [NewRejection("native", "invalid_input", "bad value", f"r{i}") for i in range(2, 6)], now=T0 + 2 * minute
    )
    await store.add_rejections("u", [NewRejection("native", "x", "elsewhere", "r")], now=T0)
    stats = await store.ingest_stats("t", T0, T0 + 10 * minute, samples=2)
    assert stats.counts == {
        ("calls", "native", "accepted"): 2,
        ("calls", "native", "duplicate"): 1,
        ("calls", "native", "conflict"): 1,
        ("other", "aws", "accepted"): 1,
        ("other", "aws", "rejected"): 1,
        ("", "native", "rejected"): 4,
    }
    groups = [(s, m, n, [r.raw for r in rs]) for s, m, n, rs in stats.rejection_groups]
    assert groups == [
        ("native", "bad value", 4, ["r2", "r3"]),
        ("aws", "bad time", 1, ["r1"]),
        ("native", "event 'a' exists with other content", 1, [stats.rejection_groups[2][3][0].raw]),
    ]
    narrow = await store.ingest_stats("t", T0 + minute, T0 + 2 * minute)
    assert narrow.counts == {("other", "aws", "accepted"): 1, ("other", "aws", "rejected"): 1}
    assert [(s, m, n) for s, m, n, _ in narrow.rejection_groups] == [("aws", "bad time", 1)]


async def test_close_interval(store: Store) -> None:
    open_ = UsageEvent("i1", "conn", "acme", T0, 1.0, {}, None)
    closed = UsageEvent("i2", "conn", "acme", T0, 1.0, {}, T0 + 500)
    await store.ingest("t", [open_, closed], now=T0)
    with pytest.raises(NotFound):
        await store.close_interval("t", "native", "nope", T0 + 1, T0)
    with pytest.raises(NotFound):
        await store.close_interval("other", "native", "i1", T0 + 1, T0)
    assert await store.close_interval("t", "native", "i1", T0 + 1000, T0) is A
    assert (await store.get_event("t", "native", "i1")).event.end_time == T0 + 1000  # type: ignore[union-attr]
    assert await store.close_interval("t", "native", "i1", T0 + 1000, T0) is D
    assert await store.close_interval("t", "native", "i1", T0 + 2000, T0) is C
    assert await store.close_interval("t", "native", "i2", T0 + 500, T0) is D
    assert await store.close_interval("t", "native", "i2", T0 + 600, T0) is C
    assert await store.ingest("t", [UsageEvent("i1", "conn", "acme", T0, 1.0, {}, T0 + 1000)], now=T0) == [D]
    assert await store.ingest("t", [UsageEvent("i1", "conn", "acme", T0, 1.0, {}, None)], now=T0) == [C]
    await store.ingest("t", [UsageEvent("i3", "conn", "acme", T0, 1.0, {}, None)], now=T0)
    assert await store.close_interval("t", "native", "i3", T0 - 1, T0) is C
    await store.void_event("t", "native", "i3", "x", None, T0)
    assert await store.close_interval("t", "native", "i3", T0 + 5, T0) is C
    rejected = (await store.list_rejections("t")).items
    assert [r.code for r in rejected] == ["conflict"] * 5
    stats = await store.ingest_stats("t", T0, T0 + 60_000)
    assert stats.counts[("conn", "native", "accepted")] == 4
    assert stats.counts[("conn", "native", "duplicate")] == 3
    assert stats.counts[("conn", "native", "conflict")] == 5


async def test_a_malformed_cursor_is_invalid_input(store: Store) -> None:
    with pytest.raises(InvalidInput):
        await store.list_events("t", EventFilter(), 10, "not-a-cursor")
    with pytest.raises(InvalidInput):
        await store.list_rejections("t", None, 10, "-1")


async def test_rejections_with_nul_characters_are_kept(store: Store) -> None:
    """Whatever a client sent is kept, even text a database cannot hold verbatim (PostgreSQL and NUL)."""
    bad = NewRejection("vault", "invalid_input", "product: invalid", "raw\x00", meter="\x00", event_id="e\x00")
    ids = await store.add_rejections("t", [bad], 1_000)
    page = await store.list_rejections("t")
    assert [r.id for r in page.items] == ids
    assert page.items[0].raw.startswith("raw")
    stats = await store.ingest_stats("t", 0, 10**12)
    assert sum(n for (_, _, outcome), n in stats.counts.items() if outcome == "rejected") == 1
