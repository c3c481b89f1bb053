"""The real SDK against the real server: in-process (ASGI), in a thread (uvicorn) and as a process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import meterd
from tests.conftest import LiveServer, Served
from tests.sdk.server_process import ServerProcess, durable_store_available

FROM, TO = "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"
MAY = datetime(2024, 5, 10, tzinfo=UTC)


def totals(client: meterd.Client, meters: list[str]) -> dict[str, tuple[float | None, float | None]]:
    sums = {r.meter: r.value for r in client.query(meters, FROM, TO, aggregation="sum").rows}
    counts = {r.meter: r.value for r in client.query(meters, FROM, TO, aggregation="count").rows}
    return {m: (sums.get(m), counts.get(m)) for m in meters}


async def test_every_operation_in_process(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with meterd.AsyncClient("http://testserver", served.admin_key, transport=transport) as client:
        for i in range(3000):
            client.meter("api_calls", i % 10, f"c{i % 4}", time=MAY, dimensions={"region": "eu" if i % 2 else "us"})
        assert await client.aflush(30)
        assert client.stats().accepted == 3000
        result = await client.query("api_calls", FROM, TO, group_by=["region"])
        assert {r.group["region"]: r.value for r in result.rows} == {
            "eu": float(sum(i % 10 for i in range(3000) if i % 2)),
            "us": float(sum(i % 10 for i in range(3000) if not i % 2)),
        }
        csv = await client.query_csv("api_calls", FROM, TO, window="day", time_zone="Europe/Berlin")
        assert csv.splitlines()[0] == "meter,start,end,value"
        answer = await client.ingest(
            [
                {"id": "one", "meter": "m", "customer": "c", "time": MAY, "value": 2},
                {"id": "one", "meter": "m", "customer": "c", "time": MAY, "value": 2},
                {"meter": "m", "customer": "c", "value": "x"},
            ]
        )
        assert [r.outcome for r in answer.results] == ["accepted", "duplicate", "rejected"]
        assert answer.results[2].errors[0].path == "value"
        assert (await client.get_event("one")).event.value == 2.0
        voided = await client.void_event("one", "test")
        assert voided.event.status == "voided" and voided.correction.action == "void"
        page = await client.list_events(meter="api_calls", limit=10)
        assert len(page.items) == 10 and page.next_cursor is not None
        assert len([e async for e in client.iter_events(meter="api_calls", page_size=1000)]) == 3000
        amended = await client.amend_event(page.items[0].id, "fix", {"value": 100})
        assert amended.event.replaces == page.items[0].id and amended.event.value == 100.0
        customer = await client.create_customer("acme", name="Acme", traits={"tier": "gold"})
        assert (await client.update_customer("acme", name="Acme 2")).name == "Acme 2" and customer.id == "acme"
        await client.delete_customer("acme")
        with pytest.raises(meterd.errors.NotFoundError):
            await client.get_customer("acme")
        assert (await client.create_meter("gpu", aggregation="max", unit="s")).aggregation == "max"
        assert (await client.get_meter("gpu")).unit == "s"
        assert "gpu" in [m.key for m in await client.list_meters()]
        await client.delete_meter("gpu")
        created = await client.create_key("ingest-only", ["ingest"])
        assert created.secret.startswith("mk_") and created.key.scopes == ("ingest",)
        assert created.key.id in [k.id for k in await client.list_keys()]
        async with meterd.AsyncClient("http://testserver", created.secret, transport=transport) as limited:
            with pytest.raises(meterd.errors.PermissionDeniedError):
                await limited.list_keys()
        assert (await client.revoke_key(created.key.id)).revoked_at is not None
        status = await client.ingest_status()
        assert any(c.outcome == "rejected" for c in status.counts)
        rejections = await client.list_rejections()
        assert rejections.items and await client.delete_rejections([r.id for r in rejections.items]) == len(
            rejections.items
        )
        with pytest.raises(meterd.errors.UnprocessableError) as caught:
            await client.query("api_calls", TO, FROM)
        assert caught.value.errors[0].path == "to"
        assert await client.ready()


def test_sync_client_from_8_threads_against_a_live_server(live_server: LiveServer) -> None:
    with meterd.Client(live_server.url, live_server.admin_key) as client:

        def work(thread: int) -> None:
            for i in range(2500):
                client.meter(f"m{thread % 3}", i % 5 + 1, f"c{i % 7}", time=MAY)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.flush(60)
        stats = client.stats()
        assert (stats.enqueued, stats.accepted, stats.dropped) == (20_000, 20_000, {})
        per_thread = sum(i % 5 + 1 for i in range(2500))
        expected = {
            "m0": (3.0 * per_thread, 7500.0),
            "m1": (3.0 * per_thread, 7500.0),
            "m2": (2.0 * per_thread, 5000.0),
        }
        assert totals(client, ["m0", "m1", "m2"]) == expected
        with pytest.raises(meterd.errors.AuthenticationError):
            meterd.Client(live_server.url, "mk_nope_nope").list_meters()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "meterd.db" if durable_store_available() else None)
    server.start()
    yield server
    server.stop()


def test_against_a_server_process(server_process: ServerProcess) -> None:
    assert server_process.key is not None
    with meterd.Client(server_process.url, server_process.key) as client:
        for i in range(5000):
            client.meter("api_calls", i, "acme", time=MAY)
        assert client.flush(60)
        assert totals(client, ["api_calls"]) == {"api_calls": (float(sum(range(5000))), 5000.0)}
        client.meter("api_calls", 7, "acme", time=MAY, id="last")
        assert client.flush(10)
        assert client.get_event("last").event.value == 7.0


def test_every_typed_operation_of_the_sync_client(live_server: LiveServer) -> None:
    with meterd.Client(live_server.url, live_server.admin_key) as client:
        answer = client.ingest(
            [{"id": f"e{i}", "meter": "api_calls", "customer": "acme", "time": MAY, "value": i} for i in range(5)]
            + [{"meter": "api_calls", "customer": "acme", "value": None}]
        )
        assert answer.counts == {"accepted": 5, "duplicate": 0, "conflict": 0, "rejected": 1}
        assert [e.id for e in client.iter_events(meter="api_calls", page_size=2)] == [f"e{i}" for i in range(5)]
        assert client.list_events(customer="acme", start=MAY, end=datetime(2024, 6, 1, tzinfo=UTC)).items
        assert client.get_event("e1").event.value == 1.0
        assert client.void_event("e1", "mistake").event.status == "voided"
        assert client.amend_event("e2", "fix", {"value": 20}).event.value == 20.0
        assert client.get_event("e2").corrections[0].action == "amend"
        rows = client.query(["api_calls"], FROM, TO, window="day", dense=True).rows
        assert sum(r.value or 0 for r in rows) == 0 + 20 + 3 + 4
        assert "api_calls" in client.query_csv("api_calls", FROM, TO)
        assert client.create_customer("acme", name="Acme").name == "Acme"
        assert client.get_customer("acme").enabled
        assert client.update_customer("acme", enabled=False).enabled is False
        assert [c.id for c in client.list_customers().items] == ["acme"]
        client.delete_customer("acme")
        assert client.create_meter("cpu", aggregation="avg").aggregation == "avg"
        assert client.update_meter("cpu", unit="core").unit == "core"
        assert client.get_meter("cpu").key == "cpu" and "cpu" in [m.key for m in client.list_meters()]
        client.delete_meter("cpu")
        created = client.create_key("reader", ["read"])
        assert created.key.id in [k.id for k in client.list_keys()]
        assert client.revoke_key(created.key.id).revoked_at is not None
        assert client.ingest_status(start=MAY, end=datetime.now(UTC)).counts
        rejected = client.list_rejections(surface="native")
        assert client.delete_rejections([r.id for r in rejected.items]) == len(rejected.items) == 1
        assert client.ready()
