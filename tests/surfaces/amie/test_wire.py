"""AMIE at the wire: the captured requests replayed, exact bodies, limits, errors, and what amieclient cannot parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterd.core.errors import InvalidInput
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.conftest import Served

CAPTURE = Path(__file__).with_name("amieclient-requests.ndjson")  # copied from reference/wire/
PREFIX = "/amie/api/v1"

COMPUTE: dict[str, Any] = {
    "Username": "u",
    "LocalProjectID": "p",
    "LocalRecordID": "j1",
    "Resource": "r",
    "SubmitTime": "2024-01-01T00:00:00Z",
    "StartTime": "2024-01-01T00:00:00Z",
    "EndTime": "2024-01-01T01:00:00Z",
    "Charge": "1",
    "Attributes": {"NodeCount": "1", "CpuCoreCount": "4", "Queue": "normal"},
    "ParentRecordID": [None],
    "LocalReference": "ref1",
}
STORAGE: dict[str, Any] = {
    "Charge": "2",
    "CollectionTime": "2024-01-01T00:00:00Z",
    "LocalProjectID": "p",
    "LocalRecordID": "s1",
    "Resource": "r",
    "Username": "u",
    "Attributes": {"BytesStored": "100", "MediaType": "disk"},
}
ADJUSTMENT: dict[str, Any] = {
    "AdjustmentType": "credit",
    "Charge": "5",
    "StartTime": "2024-01-01T00:00:00Z",
    "LocalProjectID": "p",
    "LocalRecordID": "a1",
    "Resource": "r",
    "Username": "u",
}


@pytest.fixture
async def amie(served: Served) -> httpx.AsyncClient:
    """An in-process client with the AMIE headers of the default tenant's admin key."""
    headers = {"XA-API-KEY": served.admin_key, "XA-SITE": "default"}
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c  # type: ignore[misc]


async def send(amie: httpx.AsyncClient, usage_type: str, *records: Any) -> httpx.Response:
    return await amie.post(f"{PREFIX}/usage/", json={"UsageType": usage_type, "Records": list(records)})


def loaded(n: int, dup: int = 0, failed: int = 0) -> str:
    return f"{n + dup + failed} records received: {n} loaded, {dup} already loaded, {failed} failed"


async def test_replay_the_captured_requests(amie: httpx.AsyncClient, served: Served) -> None:
    captured = [json.loads(line) for line in CAPTURE.read_text().splitlines()]
    answers = []
    for request in captured:
        headers = {k: v for k, v in request["headers"].items() if k not in ("Host", "Content-Length")}
        headers.update({"XA-API-KEY": served.admin_key, "XA-SITE": "default"})
        path = PREFIX + request["path"].removeprefix("/api/v1")
        answers.append(await amie.request(request["method"], path, content=request["body"].encode(), headers=headers))
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.headers["content-type"] == "application/json" for a in answers)
    assert [a.json() for a in answers] == [
        {"Message": loaded(1), "ValidationFailedRecords": []},
        {"Message": loaded(1), "ValidationFailedRecords": []},
        {"ValidationFailedRecords": []},
        {"Message": "0 failed records cleared", "Cleared": [], "NotFound": [17, 18, 19]},
        [{"Resource": "r", "LoadedRecordCount": 2, "FailedJobCount": 0, "TotalCharge": 6.0, "Errors": []}],
        {"Message": loaded(1), "ValidationFailedRecords": []},
    ]


async def test_storage_records_in_answers_are_served_as_sent(amie: httpx.AsyncClient) -> None:
    """amieclient crashes parsing any Storage record in an answer (its from_dict bug); the wire is still right."""
    bad = {**STORAGE, "Charge": "lots", "Attributes": {"BytesStored": "-1", "Colour": "red"}}
    r = await send(amie, "Storage", STORAGE, bad)
    expected = {
        **bad,
        "UsageType": "Storage",
        "Error": "Charge: must be a number; Attributes.Colour: is not an attribute of a Storage record; "
        "Attributes.BytesStored: must not be negative",
        "FailedRecordID": 1,
    }
    assert (r.status_code, r.json()) == (200, {"Message": loaded(1, failed=1), "ValidationFailedRecords": [expected]})
    assert (await amie.get(f"{PREFIX}/usage/failed")).json() == {"ValidationFailedRecords": [expected]}
    status = (await amie.get(f"{PREFIX}/usage/status")).json()
    error = {"Error": expected["Error"], "Records": [expected]}
    assert status == [
        {"Resource": "r", "LoadedRecordCount": 1, "FailedJobCount": 1, "TotalCharge": 2.0, "Errors": [error]}
    ]


async def test_failed_compute_is_made_parseable(amie: httpx.AsyncClient) -> None:
    """Missing required fields come back as null and a Compute record always has an Attributes object."""
    r = await send(amie, "Compute", {"LocalRecordID": 5, "Resource": "r"}, 7)
    required = ("Username", "LocalProjectID", "SubmitTime", "StartTime", "EndTime", "Charge")
    nulls = dict.fromkeys(required)
    first, second = r.json()["ValidationFailedRecords"]
    assert first == {
        "LocalRecordID": 5,
        "Resource": "r",
        "UsageType": "Compute",
        **nulls,
        "Attributes": {},
        "Error": "Username: is required; LocalProjectID: is required; SubmitTime: is required; StartTime: is required; "
        "EndTime: is required; Charge: is required; Attributes.NodeCount: is required",
        "FailedRecordID": 1,
    }
    assert second == {
        "Record": 7,
        "UsageType": "Compute",
        **nulls,
        "LocalRecordID": None,
        "Resource": None,
        "Attributes": {},
        "Error": "a record must be a JSON object",
        "FailedRecordID": 2,
    }


async def test_errors_are_grouped_by_message_and_type(amie: httpx.AsyncClient) -> None:
    await send(amie, "Compute", {**COMPUTE, "Charge": "x"}, {**COMPUTE, "LocalRecordID": "j2", "Charge": "y"})
    await send(amie, "Adjustment", {**ADJUSTMENT, "Charge": "z"})
    (resource,) = (await amie.get(f"{PREFIX}/usage/status")).json()
    assert resource["FailedJobCount"] == 3
    assert [(e["Error"], [x["UsageType"] for x in e["Records"]]) for e in resource["Errors"]] == [
        ("Charge: must be a number", ["Adjustment"]),
        ("Charge: must be a number", ["Compute", "Compute"]),
    ]


@pytest.mark.parametrize(
    ("usage_type", "changes", "error"),
    [
        ("Compute", {"Username": ""}, "Username: is required"),
        ("Compute", {"Charge": None}, "Charge: is required"),
        ("Compute", {"Charge": "-1"}, "Charge: must not be negative"),
        ("Compute", {"Charge": "NaN"}, "Charge: must be a number"),
        ("Compute", {"Charge": True}, "Charge: must be a number"),
        (
            "Compute",
            {"SubmitTime": "2024-13-01T00:00:00"},
            "SubmitTime: is not an RFC 3339 time: '2024-13-01T00:00:00'",
        ),
        ("Compute", {"StartTime": 1704067200}, "StartTime: must be an ISO 8601 time such as 2024-01-01T00:00:00Z"),
        ("Compute", {"EndTime": "2023-12-31T23:59:59Z"}, "EndTime: must not be before StartTime"),
        ("Compute", {"Attributes": {"NodeCount": "1.5"}}, "Attributes.NodeCount: must be a whole number"),
        ("Compute", {"Attributes": {"NodeCount": 1, "CpuCoreCount": 0}}, "Attributes.CpuCoreCount: must be at least 1"),
        ("Compute", {"Attributes": {"NodeCount": 1, "Memory": "-2"}}, "Attributes.Memory: must not be negative"),
        ("Compute", {"Attributes": {"CpuCoreCount": 2}}, "Attributes.NodeCount: is required"),
        ("Compute", {"Attributes": "big"}, "Attributes: must be an object"),
        ("Compute", {"ParentRecordID": ["a", "b"]}, "ParentRecordID: must be an id, or a list holding one id"),
        ("Compute", {"ParentRecordID": [{"x": 1}]}, "ParentRecordID: must be a string"),
        ("Compute", {"LocalRecordID": "x" * 129}, "LocalRecordID: must be at most 128 characters"),
        ("Compute", {"Colour": "red"}, "Colour: is not a field of a Compute record"),
        ("Compute", {"UsageType": "Storage"}, "UsageType: must be Compute, the type of the message"),
        ("Compute", {"Queue": "q"}, "Queue: is not a field of a Compute record"),
        ("Storage", {"CollectionTime": None}, "CollectionTime: is required"),
        ("Storage", {"Attributes": {"CollectionInterval": 0}}, "Attributes.CollectionInterval: must be at least 1"),
        ("Storage", {"Attributes": {"MediaType": ["disk"]}}, "Attributes.MediaType: must be a string"),
        (
            "Adjustment",
            {"AdjustmentType": "bonus"},
            "AdjustmentType: must be one of credit, refund, storage-credit, debit, reservation, storage-debit",
        ),
        ("Adjustment", {"AdjustmentType": None}, "AdjustmentType: is required"),
        ("Adjustment", {"EndTime": "2024-01-01T00:00:00Z"}, "EndTime: is not a field of a Adjustment record"),
    ],
)
async def test_field_by_field_validation(
    amie: httpx.AsyncClient, usage_type: str, changes: dict[str, Any], error: str
) -> None:
    base = {"Compute": COMPUTE, "Storage": STORAGE, "Adjustment": ADJUSTMENT}[usage_type]
    r = await send(amie, usage_type, {**base, **changes})
    assert r.status_code == 200
    (failed,) = r.json()["ValidationFailedRecords"]
    assert failed["Error"] == error


@pytest.mark.parametrize(
    ("usage_type", "changes", "dimension", "value"),
    [
        ("Compute", {"ParentRecordID": ["j0"]}, "parent_record_id", "j0"),
        ("Compute", {"ParentRecordID": "j0"}, "parent_record_id", "j0"),
        ("Compute", {"ParentRecordID": [None]}, "parent_record_id", None),
        ("Compute", {"SubmitTime": "2023-12-31T23:00:00.123456"}, "submit_time", "2023-12-31T23:00:00.123Z"),
        ("Compute", {"SubmitTime": "2024-01-01T01:00:00+02:00"}, "submit_time", "2023-12-31T23:00:00.000Z"),
        ("Compute", {"Attributes": {"NodeCount": 3.0, "Memory": "1.5e3"}}, "memory", 1500.0),
        ("Compute", {"LocalRecordID": 42}, "local_record_id", "42"),
        ("Storage", {"Attributes": {"FileCount": "12", "SystemCopies": 2}}, "file_count", 12),
        ("Adjustment", {"AdjustmentType": "Storage-Credit", "Charge": "-4.5"}, "adjustment_type", "storage-credit"),
    ],
)
async def test_values_are_normalised(
    amie: httpx.AsyncClient,
    client: httpx.AsyncClient,
    usage_type: str,
    changes: dict[str, Any],
    dimension: str,
    value: Any,
) -> None:
    base = {"Compute": COMPUTE, "Storage": STORAGE, "Adjustment": ADJUSTMENT}[usage_type]
    r = await send(amie, usage_type, {**base, **changes})
    assert r.json() == {"Message": loaded(1), "ValidationFailedRecords": []}
    (event,) = (await client.get("/v1/events", params={"surface": "amie"})).json()["items"]
    assert event["dimensions"].get(dimension) == value


async def test_duplicate_and_conflict_inside_one_message(amie: httpx.AsyncClient) -> None:
    r = await send(amie, "Compute", COMPUTE, COMPUTE, {**COMPUTE, "Charge": 2}, {**COMPUTE, "Charge": 1.0})
    body = r.json()
    assert body["Message"] == loaded(1, dup=2, failed=1)
    (conflict,) = body["ValidationFailedRecords"]
    assert (conflict["Charge"], conflict["FailedRecordID"]) == (2, 1)
    assert (
        conflict["Error"]
        == "a Compute record with Resource 'r' and LocalRecordID 'j1' was already loaded with other content"
    )
    # The same LocalRecordID on another resource or of another type is another record.
    r = await send(amie, "Compute", {**COMPUTE, "Resource": "r2"})
    assert r.json()["Message"] == loaded(1)
    r = await send(amie, "Adjustment", {**ADJUSTMENT, "LocalRecordID": "j1"})
    assert r.json()["Message"] == loaded(1)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[]", 'the body must be a UsageMessage: {"UsageType": ..., "Records": [...]}'),
        (
            b'{"UsageType": "Network", "Records": []}',
            "UsageType must be one of Compute, Storage, Adjustment, not 'Network'",
        ),
        (b'{"UsageType": "Compute", "Records": {}}', "Records must be a list of records"),
    ],
)
async def test_unreadable_messages_are_400_and_kept_apart(
    amie: httpx.AsyncClient, client: httpx.AsyncClient, body: bytes, error: str
) -> None:
    r = await amie.post(f"{PREFIX}/usage/", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"error": error})
    kept = (await client.get("/v1/rejections", params={"surface": "amie"})).json()["items"]
    assert [(k["code"], k["raw"]) for k in kept] == [("bad_message", body.decode())]
    assert (await amie.get(f"{PREFIX}/usage/failed")).json() == {"ValidationFailedRecords": []}


async def test_message_over_one_mib_is_413(amie: httpx.AsyncClient) -> None:
    records = [{**COMPUTE, "LocalRecordID": f"j{i}"} for i in range(3500)]
    body = json.dumps({"UsageType": "Compute", "Records": records}).encode()
    assert len(body) > 1024 * 1024
    r = await amie.post(f"{PREFIX}/usage/", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (413, {"error": "the body is over 1048576 bytes"})


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "send the XA-API-KEY and XA-SITE headers"),
        ({"XA-API-KEY": "k3y", "XA-SITE": "SITE"}, "the API key is malformed"),
        ({"XA-API-KEY": "mk_abc_def", "XA-SITE": "default"}, "the API key is not valid"),
        ({"XA-SITE": "SITE"}, "send the XA-API-KEY and XA-SITE headers"),
    ],
)
async def test_credentials(served: Served, headers: dict[str, str], error: str) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for method, path in (("POST", "/usage/"), ("GET", "/usage/failed"), ("GET", "/usage/status")):
            r = await c.request(method, PREFIX + path, headers=headers, json={})
            assert (r.status_code, r.json()) == (401, {"error": error})
        r = await c.get(PREFIX + "/usage/failed", headers={"XA-API-KEY": served.admin_key, "XA-SITE": "Default"})
        assert (r.status_code, r.json()) == (401, {"error": "the API key does not belong to site 'Default'"})


async def test_status_times_and_bad_ranges(amie: httpx.AsyncClient) -> None:
    await send(amie, "Compute", COMPUTE)
    url = f"{PREFIX}/usage/status"
    # A '+' that arrived unescaped decodes as a space; the offset is still read.
    r = await amie.get(url + "?FromTime=2024-01-01T00:00:00+00:00&ToTime=2024-01-01T00:00:00.001000")
    assert [x["LoadedRecordCount"] for x in r.json()] == [1]
    r = await amie.get(url, params={"FromTime": "2024-01-01T00:00:00.001"})
    assert r.json() == []
    r = await amie.get(url, params={"FromTime": "yesterday"})
    assert (r.status_code, r.json()) == (400, {"error": "FromTime is not an RFC 3339 time: 'yesterday'"})
    r = await amie.get(url, params={"FromTime": "2024-01-02T00:00:00", "ToTime": "2024-01-01T00:00:00"})
    assert (r.status_code, r.json()) == (400, {"error": "ToTime must not be before FromTime"})


async def test_clear_only_this_tenants_amie_failed_records(amie: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await send(amie, "Compute", {**COMPUTE, "Charge": "x"})
    await client.post("/api/v1/usage/influxdb", json={"not": "an array"})  # an influx rejection: id 2
    r = await amie.delete(f"{PREFIX}/usage/failed/1,2,3")
    assert (r.status_code, r.json()) == (
        200,
        {"Message": "1 failed records cleared", "Cleared": [1], "NotFound": [2, 3]},
    )
    assert [k["surface"] for k in (await client.get("/v1/rejections")).json()["items"]] == ["influx"]
    r = await amie.delete(f"{PREFIX}/usage/failed/1,a")
    assert (r.status_code, r.json()) == (400, {"error": "failed record ids must be comma-separated numbers, not '1,a'"})


async def test_unknown_paths_and_methods_answer_json_errors(amie: httpx.AsyncClient) -> None:
    r = await amie.get(f"{PREFIX}/usage/summary")
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    r = await amie.put(f"{PREFIX}/usage/")
    assert (r.status_code, r.json()) == (405, {"error": "Method Not Allowed"})


async def test_the_prefix_is_configurable(database_url: str) -> None:
    settings = Settings(database_url=database_url, amie_prefix="xsede/usage/api/")
    app = create_app(settings, store=create_store(database_url))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        transport = httpx.ASGITransport(app=app)
        headers = {"XA-API-KEY": key, "XA-SITE": "default"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
            r = await c.post("/xsede/usage/api/usage/", json={"UsageType": "Compute", "Records": [COMPUTE]})
            assert (r.status_code, r.json()["Message"]) == (200, loaded(1))
            assert (await c.get(f"{PREFIX}/usage/failed")).status_code == 404
    with pytest.raises(InvalidInput, match="must not be the root"):
        create_app(Settings(database_url=database_url, amie_prefix="/"), store=create_store(database_url))
