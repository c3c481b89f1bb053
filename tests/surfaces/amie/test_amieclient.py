"""The real amieclient 0.6.1 (its own venv, by subprocess) against a live meterd: send, failed, clear, status."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from meterd.core.models import Scope, Tenant
from meterd.service import Meterd
from meterd.storage.factory import create_store
from tests.conftest import LiveServer
from tests.surfaces.amie.conftest import Runner, adjustment, compute, storage


def events(native: httpx.Client) -> list[dict[str, Any]]:
    return list(native.get("/v1/events", params={"surface": "amie"}).json()["items"])


def test_send_each_record_type_becomes_usage_events(amie: Runner, native: httpx.Client) -> None:
    results = amie(
        [
            {"op": "send", "type": "compute", "records": [compute("j1"), compute("j2", parent_record_id="j1")]},
            {"op": "send", "type": "storage", "records": [storage("s1")]},
            {"op": "send", "type": "adjustment", "records": [adjustment("a1", adjustment_type="REFUND")]},
        ]
    )
    assert results == [
        [{"message": "2 records received: 2 loaded, 0 already loaded, 0 failed", "failed": []}],
        [{"message": "1 records received: 1 loaded, 0 already loaded, 0 failed", "failed": []}],
        [{"message": "1 records received: 1 loaded, 0 already loaded, 0 failed", "failed": []}],
    ]
    found = {e["dimensions"]["local_record_id"]: e for e in events(native)}
    j1, j2, s1, a1 = found["j1"], found["j2"], found["s1"], found["a1"]
    assert (j1["meter"], j1["customer"], j1["value"], j1["time"], j1["end_time"]) == (
        "amie.compute",
        "p1",
        10.5,
        "2024-01-01T00:05:00.000Z",
        "2024-01-01T01:05:00.000Z",
    )
    assert j1["dimensions"] == {
        "user": "alice",
        "project": "p1",
        "local_record_id": "j1",
        "resource": "expanse",
        "submit_time": "2024-01-01T00:00:00.000Z",
        "node_count": 2,
        "cpu_core_count": 64,
        "queue": "normal",
    }
    assert "parent_record_id" not in j1["dimensions"]  # the client's [null] is no parent
    assert j2["dimensions"]["parent_record_id"] == "j1"  # ["j1"] unwrapped
    assert (s1["meter"], s1["value"], s1["time"], s1["end_time"]) == (
        "amie.storage",
        2.0,
        "2024-01-01T12:00:00.000Z",
        None,
    )
    assert s1["dimensions"]["bytes_stored"] == 1000 and s1["dimensions"]["media_type"] == "disk"
    assert (a1["meter"], a1["value"], a1["dimensions"]["adjustment_type"]) == ("amie.adjustment", 5.0, "refund")


def test_invalid_records_are_reported_kept_listed_and_cleared(amie: Runner, native: httpx.Client) -> None:
    bad = [
        compute("j1"),
        compute("j2", charge="abc", node_count="0"),
        compute("j3", end_time="2023-12-31T00:00:00Z", start_time="not a time"),
        compute("j4", end_time="2024-01-01T00:00:00Z", username=None),
    ]
    results = amie(
        [
            {"op": "send", "type": "compute", "records": bad},
            {"op": "failed"},
            {"op": "clear_last"},
            {"op": "failed"},
        ]
    )
    sent, failed, cleared, after = results
    assert sent[0]["message"] == "4 records received: 1 loaded, 0 already loaded, 3 failed"
    assert [(f["local_record_id"], f["error"]) for f in sent[0]["failed"]] == [
        ("j2", "Charge: must be a number; Attributes.NodeCount: must be at least 1"),
        ("j3", "StartTime: is not an RFC 3339 time: 'not a time'"),
        ("j4", "Username: is required; EndTime: must not be before StartTime"),
    ]
    ids = [f["failed_record_id"] for f in sent[0]["failed"]]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 3
    assert failed == sent[0]["failed"]
    assert cleared is True
    assert after == []
    assert [e["dimensions"]["local_record_id"] for e in events(native)] == ["j1"]
    # Cleared from the AMIE view means gone from the kept rejections too.
    assert native.get("/v1/rejections", params={"surface": "amie"}).json()["items"] == []


def test_resend_identical_is_a_no_op_and_changed_is_a_conflict(amie: Runner, native: httpx.Client) -> None:
    results = amie(
        [
            {"op": "send", "type": "compute", "records": [compute("j1")]},
            {"op": "send", "type": "compute", "records": [compute("j1"), compute("j1", charge=10.5, node_count=2)]},
            {"op": "send", "type": "compute", "records": [compute("j1", charge="99")]},
            {"op": "clear", "ids": [17]},  # an id that is no failed record: harmless
            {"op": "failed"},
        ]
    )
    first, again, changed, cleared, failed = results
    assert first[0]["message"] == "1 records received: 1 loaded, 0 already loaded, 0 failed"
    assert again[0] == {"message": "2 records received: 0 loaded, 2 already loaded, 0 failed", "failed": []}
    assert changed[0]["message"] == "1 records received: 0 loaded, 0 already loaded, 1 failed"
    (conflict,) = changed[0]["failed"]
    assert conflict["error"] == (
        "a Compute record with Resource 'expanse' and LocalRecordID 'j1' was already loaded with other content"
    )
    assert (conflict["charge"], isinstance(conflict["failed_record_id"], int)) == ("99", True)
    assert cleared is True
    assert failed == [conflict]
    assert [e["value"] for e in events(native)] == [10.5]


def test_status_per_resource_with_naive_offset_and_microsecond_times(amie: Runner) -> None:
    steps: list[dict[str, Any]] = [
        {
            "op": "send",
            "type": "compute",
            "records": [
                compute("j1", charge="1.25"),
                compute("j2", charge="2.5", resource="bridges"),
                compute("j3", charge="4", start_time="2024-02-01T00:00:00Z", end_time="2024-02-01T01:00:00Z"),
                compute("j4", charge="x"),
                compute("j5", charge="y"),
                compute("j6", node_count="-1"),
            ],
        },
        {"op": "send", "type": "adjustment", "records": [adjustment("a1", charge="-3")]},
        {"op": "status", "from": "2024-01-01T00:00:00", "to": "2024-01-02T00:00:00+00:00"},
        {"op": "status", "from": "2024-01-01T02:00:00.123456+02:00", "to": "2024-03-01T00:00:00.000001"},
        {"op": "status"},
        {"op": "status", "from": "2025-01-01T00:00:00"},
    ]
    _, _, january, shifted, everything, later = amie(steps)
    charge_errors = [
        {"error": "Charge: must be a number", "records": [_rec("j4", "x"), _rec("j5", "y")]},
    ]
    node_errors = [{"error": "Attributes.NodeCount: must not be negative", "records": [_rec("j6", "10.5")]}]
    assert january == [
        {"resource": "bridges", "loaded": 1, "failed": 0, "total_charge": 2.5, "errors": []},
        {"resource": "expanse", "loaded": 2, "failed": 3, "total_charge": -1.75, "errors": node_errors + charge_errors},
    ]
    # From 02:00:00.123456+02:00 (00:00:00.123Z, so the adjustment at 00:00:00Z is out) to March: j3 joins.
    assert shifted == [
        {"resource": "bridges", "loaded": 1, "failed": 0, "total_charge": 2.5, "errors": []},
        {"resource": "expanse", "loaded": 2, "failed": 3, "total_charge": 5.25, "errors": node_errors + charge_errors},
    ]
    assert everything == [
        {"resource": "bridges", "loaded": 1, "failed": 0, "total_charge": 2.5, "errors": []},
        {"resource": "expanse", "loaded": 3, "failed": 3, "total_charge": 2.25, "errors": node_errors + charge_errors},
    ]
    assert later == []


def _rec(local_record_id: str, charge: str) -> dict[str, Any]:
    return {"type": "compute", "resource": "expanse", "local_record_id": local_record_id, "charge": charge}


def test_credentials_site_must_match_the_keys_tenant(amie: Runner, live_server: LiveServer, database_url: str) -> None:
    steps = [{"op": "send", "type": "compute", "records": [compute("j1")]}, {"op": "failed"}, {"op": "status"}]
    wrong_site = amie(steps, site="SDSC")
    assert wrong_site[0]["exception"] == "HTTPError" and wrong_site[0]["text"].startswith("401 Client Error")
    not_site = {"exception": "UsageResponseError", "text": "the API key does not belong to site 'SDSC'"}
    assert wrong_site[1:] == [not_site, not_site]
    bad_key = amie(steps[1:2], key="mk_nope_nope")
    assert bad_key == [{"exception": "UsageResponseError", "text": "the API key is not valid"}]
    # A key of tenant SDSC works with site SDSC; a read-only key may read but not send.
    ingest_key, read_key = asyncio.run(site_keys(live_server, database_url))
    ok = amie(steps, site="SDSC", key=ingest_key)
    assert ok[0] == [{"message": "1 records received: 1 loaded, 0 already loaded, 0 failed", "failed": []}]
    assert ok[1] == [] and ok[2][0]["loaded"] == 1
    read_only = amie(steps, site="SDSC", key=read_key)
    assert read_only[0]["exception"] == "HTTPError" and read_only[0]["text"].startswith("403 Client Error")
    assert read_only[1] == []
    # The default tenant saw nothing of SDSC's record.
    assert amie([{"op": "status"}]) == [[]]


async def site_keys(live_server: LiveServer, database_url: str) -> tuple[str, str]:
    """Tenant SDSC with an ingest+read key and a read-only key, written beside the running server."""
    shared = database_url == "memory://"  # the in-memory store can only be reached through the app's instance
    store = live_server.app.state.meterd.store if shared else create_store(database_url)
    if not shared:
        await store.open()
    try:
        meterd = Meterd(store)
        await store.create_tenant(Tenant("SDSC", "San Diego", 0))
        ingest = await meterd.create_key("SDSC", "amie", frozenset({Scope.INGEST, Scope.READ}))
        read = await meterd.create_key("SDSC", "viewer", frozenset({Scope.READ}))
        return ingest.secret, read.secret
    finally:
        if not shared:
            await store.close()


def test_largest_send_the_client_allows(amie: Runner, native: httpx.Client) -> None:
    """Just under amieclient's 768 KiB cap (at or above it, its chunking path crashes before sending)."""
    records = [compute(f"job-{i:05d}", charge="1.5") for i in range(1900)]
    (sent,) = amie([{"op": "send", "type": "compute", "records": records}])
    assert sent == [{"message": "1900 records received: 1900 loaded, 0 already loaded, 0 failed", "failed": []}]
    body = {
        "meter": "amie.compute",
        "from": "2024-01-01T00:00:00Z",
        "to": "2024-01-02T00:00:00Z",
        "aggregation": "count",
    }
    assert [r["value"] for r in native.post("/v1/query", json=body).json()["rows"]] == [1900.0]
