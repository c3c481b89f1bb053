"""SQLite store specifics: hash collisions, several processes on one file, crash durability, rollups in use,
dimension-key states, query plans, migrations."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meterd.core.errors import StorageError
from meterd.core.models import Aggregation, Meter, Outcome, UsageEvent
from meterd.core.query import DimensionFilter, FilterOp, QuerySpec
from meterd.core.windows import Window
from meterd.storage import migrate, sqlite_ingest, sqlite_rollup
from meterd.storage.memory import MemoryStore
from meterd.storage.sqlite import SQLiteStore, Tuning

H = 3_600_000
DAY = 24 * H
T = 1_717_372_800_000  # 2024-06-03T00:00:00Z
A, D, C = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.CONFLICT


def ev(eid: str, value: float = 1.0, t: int = T, customer: str = "c", meter: str = "m", **dims: object) -> UsageEvent:
    return UsageEvent(eid, meter, customer, t, value, dims)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "u.db"), tuning=Tuning(idle_seconds=3600, roll_every=10**9))
    await s.open()
    yield s
    await s.close()


async def test_true_hash_collisions_are_told_apart(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_ingest, "identity_hash", lambda tenant, surface, event_id: 42)
    assert await store.ingest("t", [ev("a", 1), ev("b", 2), ev("a", 1), ev("b", 3)], now=T) == [A, A, D, C]
    assert await store.ingest("u", [ev("a", 9)], now=T) == [A]
    assert await store.ingest("t", [ev("c", 4), ev("a", 1), ev("a", 5, surface_dummy="x")], now=T) == [A, D, C]
    assert (await store.get_event("t", "native", "b")).event.value == 2  # type: ignore[union-attr]
    assert (await store.get_event("u", "native", "a")).event.value == 9  # type: ignore[union-attr]
    await store.void_event("t", "native", "b", "x", None, T)
    rows = await store.query("t", QuerySpec(("m",), T, T + H), now=T)
    assert rows[0].value == 5.0
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT count(DISTINCT h), count(*) FROM events").fetchone() == (1, 4)


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from meterd.core.models import UsageEvent
    from meterd.storage.sqlite import SQLiteStore

    async def main(path, seed):
        store = SQLiteStore(path)
        await store.open()
        accepted = []
        for b in range(20):
            ids = [f"id-{(seed * 7 + b * 13 + i) % 400}" for i in range(50)]
            batch = [UsageEvent(i, "m", "c", 1_717_372_800_000 + int(i[3:]), 1.0) for i in ids]
            outcomes = await store.ingest("t", batch, now=0)
            accepted += [e.id for e, o in zip(batch, outcomes) if o.value == "accepted"]
        await store.close()
        print(json.dumps(accepted))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def test_several_processes_on_one_file_accept_each_id_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, path, str(seed)], stdout=subprocess.PIPE, env=env)
             for seed in range(3)]
    accepted: list[str] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        accepted += __import__("json").loads(out)
    assert len(accepted) == len(set(accepted))
    db = sqlite3.connect(path)
    assert sorted(r[0] for r in db.execute("SELECT id FROM events")) == sorted(accepted)
    assert db.execute("SELECT sum(s) FROM roll_hour").fetchone()[0] == len(accepted)  # rolled on close


_CRASH = textwrap.dedent(
    """
    import asyncio, sys, time
    from meterd.core.models import UsageEvent
    from meterd.storage.sqlite import SQLiteStore

    async def main(path):
        store = SQLiteStore(path)
        await store.open()
        for b in range(5):
            await store.ingest("t", [UsageEvent(f"e{b}-{i}", "m", "c", 1_717_372_800_000, 1.0) for i in range(100)])
            print(f"acked {b}", flush=True)
        time.sleep(60)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _CRASH, path], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(5)]
    assert lines[-1].strip() == "acked 4"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    async def check() -> None:
        store = SQLiteStore(path)
        await store.open()
        rows = await store.query("t", QuerySpec(("m",), T, T + H), now=T)
        assert rows[0].value == 500.0
        await store.close()

    asyncio.run(check())


async def test_rollups_answer_eligible_queries(store: SQLiteStore) -> None:
    await store.ingest("t", [ev(f"e{i}", i, T + i * H // 3, region="eu" if i % 2 else "us") for i in range(200)],
                       now=T)
    await store.roll_up()
    daily = QuerySpec(("m",), T, T + 3 * DAY, Window.DAY)
    by_region = QuerySpec(("m",), T, T + 3 * DAY, Window.HOUR, group_by=("region",))
    berlin = QuerySpec(("m",), T, T + 3 * DAY, Window.DAY, "Europe/Berlin")
    raw_only = QuerySpec(("m",), T, T + 3 * DAY, Window.MINUTE)
    before = [await store.query("t", q, T) for q in (daily, by_region, berlin, raw_only)]
    db = sqlite3.connect(store.path)
    with db:  # poison the caches: eligible queries must show it, the others must not
        for table in ("roll_hour", "roll_day", "roll_hour_dim", "roll_day_dim"):
            db.execute(f"UPDATE {table} SET s = s + 1000")
    after = [await store.query("t", q, T) for q in (daily, by_region, berlin, raw_only)]
    for i in range(3):
        assert [r.value for r in after[i]] != [r.value for r in before[i]]
    assert after[3] == before[3]


async def test_tail_and_rolled_events_combine_exactly(tmp_path: Path) -> None:
    memory = MemoryStore()
    store = SQLiteStore(str(tmp_path / "x.db"), tuning=Tuning(idle_seconds=3600, roll_every=10**9))
    await store.open()
    q = QuerySpec(("m",), T + H // 2, T + 2 * DAY + 5, Window.DAY, group_by=("customer",),
                  aggregation=Aggregation.MAX)
    for round_ in range(4):
        batch = [ev(f"r{round_}-{i}", (i * 7 + round_) % 11, T + (i * 37 + round_ * 1000) * 60_000 % (2 * DAY),
                    customer=f"c{i % 3}") for i in range(60)]
        for s in (memory, store):
            await s.ingest("t", batch, now=T)
        if round_ % 2 == 0:
            await store.roll_up()
        for s in (memory, store):
            await s.void_event("t", "native", f"r{round_}-5", "x", None, T)
        assert await store.query("t", q, T) == await memory.query("t", q, T)
    await store.close()


async def test_high_cardinality_keys_stop_being_rolled_up(store: SQLiteStore) -> None:
    await store.ingest("t", [ev("a", 1, region="eu")], now=T)
    await store.roll_up()
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT dk, state FROM dim_keys").fetchall() == [("region", "rolled")]
    many = [ev(f"u{i}", 1, T + i, region="eu", user=f"user{i}") for i in range(sqlite_rollup.MAX_ROLLED_VALUES + 5)]
    await store.ingest("t", many[:10], now=T)
    await store.roll_up()
    assert dict(db.execute("SELECT dk, state FROM dim_keys").fetchall()) == {"region": "rolled", "user": "rolled"}
    await store.ingest("t", many[10:], now=T)
    assert dict(db.execute("SELECT dk, state FROM dim_keys").fetchall()) == {"region": "rolled", "user": "high"}
    assert db.execute("SELECT count(*) FROM roll_hour_dim WHERE dk = 'user'").fetchone() == (0,)
    await store.roll_up()
    only = DimensionFilter("user", FilterOp.IN, ("user3", None))
    q = QuerySpec(("m",), T, T + H, group_by=("user",), filters=(only,))
    got = [(r.group, r.value) for r in await store.query("t", q, T)]
    assert got == [({"user": None}, 1.0), ({"user": "user3"}, 1.0)]


async def test_a_key_first_seen_after_rolling_gets_its_null_cells(store: SQLiteStore) -> None:
    await store.ingest("t", [ev("a", 1), ev("b", 2, T + H)], now=T)
    await store.roll_up()
    await store.ingest("t", [ev("c", 4, T + 2 * H, tier="gold")], now=T)
    await store.roll_up()
    q = QuerySpec(("m",), T, T + DAY, Window.DAY, group_by=("tier",))
    assert [(r.group["tier"], r.value) for r in await store.query("t", q, T)] == [(None, 3.0), ("gold", 4.0)]
    q = QuerySpec(("m",), T, T + DAY, filters=(DimensionFilter("tier", FilterOp.NE, ("gold",)),))
    assert [r.value for r in await store.query("t", q, T)] == [3.0]


async def test_values_python_calls_equal_share_a_group_labelled_by_the_first_event(tmp_path: Path) -> None:
    events = [ev("a", 1, T + 5, k=1.0), ev("b", 2, T + 1, k=1), ev("c", 4, T + 2, k=True), ev("d", 8, T + 3, k="1")]
    memory = MemoryStore()
    store = SQLiteStore(str(tmp_path / "eq.db"), tuning=Tuning(idle_seconds=3600, roll_every=1))
    await store.open()
    for s in (memory, store):
        await s.ingest("t", events, now=T)
    for agg in (Aggregation.SUM, Aggregation.LATEST, Aggregation.UNIQUE_COUNT):
        q = QuerySpec(("m",), T, T + H, group_by=("k",), aggregation=agg, unique_dimension="k")
        expected = await memory.query("t", q, T)
        assert await store.query("t", q, T) == expected
    q = QuerySpec(("m",), T, T + H, group_by=("k",))
    assert [(r.group["k"], r.value) for r in await store.query("t", q, T)] == [(1.0, 7.0), ("1", 8.0)]
    await store.close()


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


async def test_query_plans_survive_analyze(store: SQLiteStore) -> None:
    await store.ingest("t", [ev(f"e{i}", 1, T + i * 1000, customer=f"c{i % 50}", meter=f"m{i % 3}")
                             for i in range(3000)], now=T)
    await store.roll_up()
    db = sqlite3.connect(store.path)
    db.execute("ANALYZE")
    db.commit()
    raw = ("SELECT sid, min(seq), sum(value) FROM events INDEXED BY events_q WHERE mid = ? AND live = 1 AND "
           "time >= ? AND time < ? GROUP BY 1")
    assert "USING COVERING INDEX events_q (mid=? AND time>? AND time<?)" in _plan(db, raw, (1, T, T + DAY))
    tail = ("SELECT sid, sum(value) FROM events NOT INDEXED WHERE seq > ? AND +mid = ? AND live = 1 AND "
            "+time >= ? AND +time < ? GROUP BY 1")
    assert "USING INTEGER PRIMARY KEY (rowid>?)" in _plan(db, tail, (5, 1, T, T + DAY))
    roll = "SELECT sid, sum(s) FROM roll_day WHERE mid = ? AND b >= ? AND b < ? GROUP BY 1"
    assert "USING PRIMARY KEY (mid=? AND b>? AND b<?)" in _plan(db, roll, (1, T, T + DAY))
    probe = "SELECT h, seq, mid, surface, id FROM events WHERE h IN (?, ?)"
    assert "USING INDEX events_h (h=?)" in _plan(db, probe, (1, 2))
    rows = await store.query("t", QuerySpec(("m1",), T, T + DAY, Window.HOUR, group_by=("customer",)), T)
    assert sum(r.value or 0 for r in rows) == 1000


async def test_migrations_are_recorded_and_refuse_unknown_versions(tmp_path: Path) -> None:
    path = str(tmp_path / "mig.db")
    first = SQLiteStore(path)
    await first.open()
    await first.close()
    again = SQLiteStore(path)
    await again.open()
    await again.close()
    db = sqlite3.connect(path)
    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in migrate.packaged("sqlite")]
    with db:
        db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(StorageError):
        await SQLiteStore(path).open()


def test_migration_files_load_in_order_and_split() -> None:
    found = migrate.packaged("sqlite")
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    statements = migrate.split_statements("CREATE TABLE a (x); -- note\n-- only a comment\nINSERT INTO a VALUES (1);\n")
    assert statements == ["CREATE TABLE a (x)", "-- only a comment\nINSERT INTO a VALUES (1)"]
    assert migrate.pending(found, [1]) == found[1:]
    with pytest.raises(migrate.MigrationError):
        migrate.pending(found, [1, 999])


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "c.db"))
    with pytest.raises(StorageError):
        await s.ingest("t", [ev("a")], now=T)
    await s.open()
    await s.close()
    with pytest.raises(StorageError):
        await s.get_event("t", "native", "a")


async def test_synchronous_mode_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SQLiteStore(str(tmp_path / "s.db"), synchronous="SOMETIMES")
    s = SQLiteStore(str(tmp_path / "s.db"), synchronous="full")
    await s.open()
    assert await s.ingest("t", [ev("a")], now=T) == [A]
    await s.close()


async def test_meter_definitions_pick_the_aggregation(store: SQLiteStore) -> None:
    await store.put_meter("t", Meter("m", Aggregation.MAX))
    await store.ingest("t", [ev("a", 3), ev("b", 5, T + 1)], now=T)
    assert [r.value for r in await store.query("t", QuerySpec(("m",), T, T + H), T)] == [5.0]


def test_multiprocessing_start_method_is_available() -> None:
    assert "spawn" in multiprocessing.get_all_start_methods()
