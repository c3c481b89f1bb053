"""The real ``amberflo-metering-python`` 3.3.1 and 2.3.0, each in its own virtualenv, against a live meterd.

The clients run in a subprocess (both install the package ``metering``); ``make test`` creates the venvs. Usage
reports are compared with the independent reference; retries go through a proxy that injects 429s, 500s and
lost acknowledgements, and meterd must still count every record exactly once.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.surfaces.amberflo.proxy import fault_proxy
from tests.surfaces.amberflo.reference import report, unique

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = Path(__file__).parent / "clients"
START = 1704067200  # 2024-01-01T00:00:00Z, a Monday
DAY = 86400


def drive(version: int, url: str, key: str, steps: list[dict[str, Any]]) -> list[Any]:
    """Run the real client of ``version`` through ``steps``; its results, one per step."""
    python = ROOT / f".venv-amberflo{version}" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{python.parent.parent.name} is missing: run `make client-venvs` (`make test` creates it)")
    plan = json.dumps({"url": url, "key": key, "steps": steps})
    script = CLIENTS / f"amberflo{version}.py"
    proc = subprocess.run([str(python), str(script)], input=plan, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: list[Any] = json.loads(proc.stdout.strip().splitlines()[-1])["results"]
    return results


def make_records(count: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        record: dict[str, Any] = {
            "uniqueId": f"s{seed}-{i}",
            "meterApiName": rnd.choice(["api-calls", "api-calls", "storage"]),
            "meterValue": rnd.randint(0, 20),
            "customerId": rnd.choice(["c1", "c2", "c3"]),
            "meterTimeInMillis": (START + rnd.randint(0, 40 * DAY)) * 1000 + rnd.randint(0, 999),
        }
        if rnd.random() < 0.8:
            record["dimensions"] = {"region": rnd.choice(["eu", "us"])}
        out.append(record)
    return out


def native(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {server.admin_key}"}, timeout=30)


def stored_totals(server: LiveServer) -> dict[tuple[str, str], tuple[float, int]]:
    """(sum, count) per (meter, customer) of everything meterd holds, by the native query."""
    out: dict[tuple[str, str], tuple[float, int]] = {}
    with native(server) as c:
        for aggregation in ("sum", "count"):
            body = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "group_by": ["customer"]}
            rows = c.post("/v1/query", json={**body, "aggregation": aggregation}).json()["rows"]
            for row in rows:
                key = (row["meter"], row["group"]["customer"])
                s, n = out.get(key, (0.0, 0))
                out[key] = (row["value"], n) if aggregation == "sum" else (s, int(row["value"]))
    return out


def expected_totals(records: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, int]]:
    out: dict[tuple[str, str], tuple[float, int]] = {}
    for r in unique(records):
        s, n = out.get((r["meterApiName"], r["customerId"]), (0.0, 0))
        out[(r["meterApiName"], r["customerId"])] = (s + r["meterValue"], n + 1)
    return out


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def as_query(q: dict[str, Any]) -> dict[str, Any]:
    """The wire query of a driver step (as the SDK builds it), for the reference."""
    wire: dict[str, Any] = {
        "meterApiName": q["meter"],
        "aggregation": q["aggregation"],
        "timeGroupingInterval": q["interval"],
        "timeRange": {"startTimeInSeconds": q["start"], "endTimeInSeconds": q["end"]},
    }
    if q.get("group_by"):
        wire["groupBy"] = q["group_by"]
    if q.get("filter"):
        wire["filter"] = q["filter"]
    if q.get("take"):
        wire["take"] = {"limit": q["take"][0], "isAscending": q["take"][1]}
    return wire


# 3.3.1 -----------------------------------------------------------------------------------------------------
def test_v3_threaded_producer_with_retries_counts_every_record_once(live_server: LiveServer) -> None:
    records = make_records(40, seed=3)
    faults = ["lost-ack", "429", "500", "lost-ack"]
    with fault_proxy(live_server.url, faults) as proxy:
        step = {"op": "meter", "records": records, "batch_size": 7, "threads": 2, "retries": 4}
        [result] = drive(3, proxy.url, live_server.admin_key, [step])
    assert result == {"queued": [True] * 40, "errors": []}
    posts = [(path, status) for method, path, status in proxy.log if method == "POST"]
    assert {path for path, _ in posts} == {"/ingest/"}
    assert sorted(status for _, status in posts if status != 200) == [429, 500, 500, 500]
    assert sum(status == 200 for _, status in posts) >= 6  # 40 records in batches of at most 7
    assert stored_totals(live_server) == expected_totals(records)


def test_v3_gives_up_on_a_rejected_batch_and_meterd_keeps_the_bad_record(live_server: LiveServer) -> None:
    good = make_records(1, seed=4)[0]
    bad = {**good, "uniqueId": "bad", "customerId": "not a valid id"}
    [result] = drive(3, live_server.url, live_server.admin_key, [{"op": "meter", "records": [good, bad]}])
    assert result == {"queued": [True, True], "errors": [{"status": 400, "size": 2}]}
    assert stored_totals(live_server) == expected_totals([good])
    with native(live_server) as c:
        kept = c.get("/v1/rejections", params={"surface": "amberflo"}).json()["items"]
    assert [json.loads(k["raw"])["uniqueId"] for k in kept] == ["bad"]


def test_v3_send_answers_the_ingest_text(live_server: LiveServer) -> None:
    one, many = make_records(1, seed=5)[0], make_records(10, seed=6)
    steps = [{"op": "send", "payload": one}, {"op": "send", "payload": many}, {"op": "send", "payload": many}]
    assert drive(3, live_server.url, live_server.admin_key, steps) == [
        "1 records were ingested",
        "10 records were ingested",
        "10 records were ingested",
    ]
    assert stored_totals(live_server) == expected_totals([one, *many])


USAGE_FORMS = [
    {"aggregation": "SUM", "interval": "DAY"},
    {"aggregation": "COUNT", "interval": "HOUR", "group_by": ["customerId"], "end": START + 2 * DAY},
    {"aggregation": "MIN", "interval": "WEEK", "group_by": ["region"], "filter": {"customerId": ["c1", "c2"]}},
    {"aggregation": "MAX", "interval": "MONTH", "group_by": ["customerId", "region"], "take": [2, False]},
    {"aggregation": "SUM", "interval": "WEEK", "group_by": ["customerId"], "take": [1, True]},
    {"aggregation": "SUM", "interval": "DAY", "filter": {"region": ["us"]}, "start": START + 5 * DAY},
]


def test_v3_every_usage_query_form_equals_the_reference(live_server: LiveServer) -> None:
    records = make_records(120, seed=7)
    queries = [{"meter": "api-calls", "start": START, "end": START + 45 * DAY, **form} for form in USAGE_FORMS]
    steps = [{"op": "send", "payload": records}]
    steps += [{"op": "usage", "query": q} for q in queries]
    steps += [{"op": "usage_batch", "queries": queries[:2]}]
    results = drive(3, live_server.url, live_server.admin_key, steps)
    assert results[0] == "120 records were ingested"
    for q, got in zip(queries, results[1:-1], strict=True):
        assert rounded(got) == rounded(report(records, as_query(q), 0)), q
    assert rounded(results[-1]) == [rounded(report(records, as_query(q), 0)) for q in queries[:2]]


def test_v3_all_usage(live_server: LiveServer) -> None:
    records = make_records(60, seed=8)
    common = {"op": "usage_all", "interval": "WEEK", "start": START, "end": START + 28 * DAY}
    steps = [
        {"op": "send", "payload": records},
        common,
        {**common, "by_customer": True},
        {**common, "customer": "c2"},
    ]
    _, plain, by_customer, one = drive(3, live_server.url, live_server.admin_key, steps)
    for reports, extra in (
        (plain, {}),
        (by_customer, {"groupBy": ["customerId"]}),
        (one, {"filter": {"customerId": ["c2"]}}),
    ):
        assert [r["metadata"]["meterApiName"] for r in reports] == ["api-calls", "storage"]
        for got in reports:
            query = {
                "meterApiName": got["metadata"]["meterApiName"],
                "aggregation": "SUM",
                "timeGroupingInterval": "WEEK",
                "timeRange": {"startTimeInSeconds": START, "endTimeInSeconds": START + 28 * DAY},
                **extra,
            }
            assert got["metadata"] == query
            assert rounded(got) == rounded(report(records, query, 0))


def test_v3_customers(live_server: LiveServer) -> None:
    steps = [
        {"op": "customer_get", "id": "c1"},
        {"op": "customer_add", "id": "c1", "name": "C One", "email": "c1@example.com", "traits": {"plan": "pro"}},
        {"op": "customer_get", "id": "c1"},
        {"op": "customer_add_or_update", "id": "c1", "name": "C Uno"},
        {"op": "customer_add_or_update", "id": "c2", "name": "C Two", "enabled": False},
        {"op": "customer_add", "id": "c2", "name": "again"},
        {"op": "customer_list"},
        {"op": "customer_delete", "id": "c1"},
        {"op": "customer_get", "id": "c1"},
    ]
    got = drive(3, live_server.url, live_server.admin_key, steps)
    assert got[0] == {}
    assert got[1]["customerId"] == "c1" and got[1]["traits"] == {"plan": "pro"}
    assert got[2] == got[1]
    assert got[3]["customerName"] == "C Uno" and not got[3]["traits"] and "customerEmail" not in got[3]
    assert got[4]["customerId"] == "c2" and got[4]["enabled"] is False
    assert got[5]["error"]["status"] == 409
    assert [c["customerId"] for c in got[6]] == ["c1", "c2"]
    assert got[7]["customerId"] == "c1"
    assert got[8] == {}


# 2.3.0 -----------------------------------------------------------------------------------------------------
def test_v2_client_with_retries_counts_every_record_once(live_server: LiveServer) -> None:
    records = make_records(23, seed=9)
    with fault_proxy(live_server.url, ["lost-ack", "500", "429"]) as proxy:
        step = {"op": "meter", "records": records, "batch_size": 5, "retries": 3}
        [result] = drive(2, proxy.url, live_server.admin_key, [step])
    assert result == {"queued": [True] * 23, "errors": []}
    posts = [(path, status) for method, path, status in proxy.log if method == "POST"]
    assert {path for path, _ in posts} == {"/ingest"}  # 2.x: no trailing slash, no gzip
    assert sorted(status for _, status in posts if status != 200) == [429, 500, 500]
    assert stored_totals(live_server) == expected_totals(records)


def test_v2_usage_with_a_string_filter_and_customers(live_server: LiveServer) -> None:
    records = make_records(50, seed=10)
    query = {
        "meter": "api-calls",
        "aggregation": "SUM",
        "interval": "DAY",
        "start": START,
        "end": START + 10 * DAY,
        "group_by": ["customerId"],
        "filter": {"customerId": "c1"},
        "take": [5, False],
    }
    steps = [
        {"op": "meter", "records": records, "batch_size": 20},
        {"op": "usage", "query": query},
        {"op": "usage", "query": {**query, "aggregation": "MAX", "interval": "WEEK", "filter": None}},
        {"op": "customer_add_or_update", "id": "c1", "name": "C One", "traits": {"t": "v"}},
        {"op": "customer_add_or_update", "id": "c1", "name": "C Uno"},
    ]
    _, usage, usage_max, added, updated = drive(2, live_server.url, live_server.admin_key, steps)
    assert usage["payload"]["aggregation"] == "Sum" and usage["payload"]["filter"] == {"customerId": "c1"}
    assert rounded(usage["report"]) == rounded(report(records, usage["payload"], 0))
    assert rounded(usage_max["report"]) == rounded(report(records, usage_max["payload"], 0))
    assert added["customerName"] == "C One" and added["traits"] == {"t": "v"}
    assert updated["customerName"] == "C Uno" and updated["traits"] == {}
