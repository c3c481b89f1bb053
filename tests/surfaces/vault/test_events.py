"""Interval usage events at the wire: open and close in either order, replays, conflicts, validation, auth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meterd.core.models import Scope
from tests.conftest import Served
from tests.surfaces.vault.conftest import ID1, ID2, ID3, basic

P = "platform:dyno:logical"
APP = "app123@heroku.com"


def open_path(event_id: str, start: str, product: str = P, consumer: str = APP) -> str:
    return f"/products/{product}/usage/{consumer}/events/{event_id}/open/{start}"


def close_path(event_id: str, stop: str, product: str = P, consumer: str = APP) -> str:
    return f"/products/{product}/usage/{consumer}/events/{event_id}/close/{stop}"


def both_path(event_id: str, start: str, stop: str, product: str = P, consumer: str = APP) -> str:
    return f"/products/{product}/usage/{consumer}/events/{event_id}/open/{start}/close/{stop}"


async def rejections(native: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await native.get("/v1/rejections", params={"surface": "vault"})
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_open_then_close(vault: httpx.AsyncClient) -> None:
    r = await vault.put(open_path(ID1, "2013-01-01T00:00:00Z"), json={"type": "web"})
    assert (r.status_code, r.json()) == (201, {"id": ID1, "outcome": "accepted"})
    got = (await vault.get(f"/usage_events/{ID1}")).json()
    assert got == {
        "id": ID1,
        "product": P,
        "consumer": APP,
        "start_time": "2013-01-01T00:00:00Z",
        "stop_time": None,
        "detail": {"type": "web"},
    }
    r = await vault.put(close_path(ID1, "2013-01-02T00:00:00Z"))
    assert (r.status_code, r.json()) == (201, {"id": ID1, "outcome": "accepted"})
    assert (await vault.get(f"/usage_events/{ID1}")).json()["stop_time"] == "2013-01-02T00:00:00Z"


async def test_close_before_open_is_kept_until_the_open_arrives(
    vault: httpx.AsyncClient, native: httpx.AsyncClient
) -> None:
    r = await vault.put(close_path(ID1, "2013-01-02T00:00:00Z"))
    assert (r.status_code, r.json()) == (201, {"id": ID1, "outcome": "accepted"})
    assert (await vault.get(f"/usage_events/{ID1}")).status_code == 404  # only half of it is known
    assert (await vault.put(close_path(ID1, "2013-01-02T00:00:00Z"))).json()["outcome"] == "duplicate"
    r = await vault.put(
        open_path(ID1, "2013-01-01T00:00:00Z"), content=b'{"size":"2X"}', headers={"content-type": "application/json"}
    )
    assert (r.status_code, r.json()["outcome"]) == (201, "accepted")
    got = (await vault.get(f"/usage_events/{ID1}")).json()
    assert (got["start_time"], got["stop_time"], got["detail"]) == (
        "2013-01-01T00:00:00Z",
        "2013-01-02T00:00:00Z",
        {"size": "2X"},
    )
    listed = (await native.get("/v1/events", params={"surface": "vault"})).json()["items"]
    assert [(e["id"], e["end_time"], e["value"]) for e in listed] == [(ID1, "2013-01-02T00:00:00.000Z", 1.0)]
    assert await rejections(native) == []


@pytest.mark.parametrize("order", ["open-close", "close-open", "both"])
async def test_replays_are_201_no_ops_in_every_order(vault: httpx.AsyncClient, order: str) -> None:
    requests = {
        "open-close": [open_path(ID1, "2013-01-01T00:00:00Z"), close_path(ID1, "2013-01-03T00:00:00Z")],
        "close-open": [close_path(ID1, "2013-01-03T00:00:00Z"), open_path(ID1, "2013-01-01T00:00:00Z")],
        "both": [both_path(ID1, "2013-01-01T00:00:00Z", "2013-01-03T00:00:00Z")],
    }[order]
    first = [(await vault.put(path)).json()["outcome"] for path in requests]
    assert first == ["accepted"] * len(requests)
    for _ in range(2):
        again = [(await vault.put(path)) for path in [*requests, *reversed(requests)]]
        assert {(r.status_code, r.json()["outcome"]) for r in again} == {(201, "duplicate")}
    # every part of the finished event replays as a duplicate, whichever way it was sent
    for path in (
        open_path(ID1, "2013-01-01T00:00:00Z"),
        close_path(ID1, "2013-01-03T00:00:00Z"),
        both_path(ID1, "2013-01-01T00:00:00Z", "2013-01-03T00:00:00Z"),
    ):
        assert ((await vault.put(path)).status_code, (await vault.put(path)).json()["outcome"]) == (201, "duplicate")


CONFLICTS = [
    ("other product", open_path(ID1, "2013-01-01T00:00:00Z", product="addon:x")),
    ("other consumer", open_path(ID1, "2013-01-01T00:00:00Z", consumer="app9@heroku.com")),
    ("other start", open_path(ID1, "2013-01-01T00:00:01Z")),
    ("other stop", close_path(ID1, "2013-01-05T00:00:00Z")),
    ("other detail", open_path(ID1, "2013-01-01T00:00:00Z")),
    ("close for other product", close_path(ID1, "2013-01-03T00:00:00Z", product="addon:x")),
]


@pytest.mark.parametrize(("why", "path"), CONFLICTS, ids=[c[0] for c in CONFLICTS])
async def test_same_id_other_content_is_409_and_kept(
    vault: httpx.AsyncClient, native: httpx.AsyncClient, why: str, path: str
) -> None:
    assert (await vault.put(open_path(ID1, "2013-01-01T00:00:00Z"), json={"k": 1})).status_code == 201
    assert (await vault.put(close_path(ID1, "2013-01-03T00:00:00Z"))).status_code == 201
    r = await vault.put(path)
    assert r.status_code == 409 and r.json()["id"] == "conflict"
    kept = await rejections(native)
    assert [(k["code"], k["event_id"]) for k in kept] == [("conflict", ID1)]
    assert path in kept[0]["raw"]
    got = (await vault.get(f"/usage_events/{ID1}")).json()  # nothing changed
    assert (got["product"], got["consumer"], got["start_time"], got["stop_time"], got["detail"]) == (
        P,
        APP,
        "2013-01-01T00:00:00Z",
        "2013-01-03T00:00:00Z",
        {"k": 1},
    )


async def test_conflicts_against_a_pending_close(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    assert (await vault.put(close_path(ID1, "2013-01-03T00:00:00Z"))).status_code == 201
    assert (await vault.put(close_path(ID1, "2013-01-04T00:00:00Z"))).status_code == 409
    assert (await vault.put(open_path(ID1, "2013-01-01T00:00:00Z", consumer="other@h"))).status_code == 409
    assert (await vault.put(open_path(ID1, "2013-01-05T00:00:00Z"))).status_code == 409  # after the stop
    assert len(await rejections(native)) == 3
    assert (await vault.put(open_path(ID1, "2013-01-01T00:00:00Z"))).status_code == 201
    assert (await vault.get(f"/usage_events/{ID1}")).json()["stop_time"] == "2013-01-03T00:00:00Z"


async def test_close_before_the_start_of_a_stored_open_is_409(vault: httpx.AsyncClient) -> None:
    assert (await vault.put(open_path(ID1, "2013-01-02T00:00:00Z"))).status_code == 201
    assert (await vault.put(close_path(ID1, "2013-01-01T00:00:00Z"))).status_code == 409
    assert (await vault.get(f"/usage_events/{ID1}")).json()["stop_time"] is None


async def test_zero_length_event_is_fine(vault: httpx.AsyncClient) -> None:
    r = await vault.put(both_path(ID1, "2013-01-01T00:00:00Z", "2013-01-01T00:00:00Z", product="account:credit:x"))
    assert r.status_code == 201


BAD = [
    ("nested detail", open_path(ID1, "2013-01-01T00:00:00Z"), b'{"a":{"b":1}}'),
    ("list in detail", open_path(ID1, "2013-01-01T00:00:00Z"), b'{"a":[1]}'),
    ("detail not an object", open_path(ID1, "2013-01-01T00:00:00Z"), b"[1,2]"),
    ("detail not JSON", open_path(ID1, "2013-01-01T00:00:00Z"), b"{nope"),
    ("offset time", open_path(ID1, "2013-01-01T00:00:00+01:00"), b""),
    ("UTC offset spelled +00:00", open_path(ID1, "2013-01-01T00:00:00+00:00"), b""),
    ("no zone", open_path(ID1, "2013-01-01T00:00:00"), b""),
    ("fraction", open_path(ID1, "2013-01-01T00:00:00.000Z"), b""),
    ("date only", open_path(ID1, "2013-01-01"), b""),
    ("no such day", open_path(ID1, "2013-02-30T00:00:00Z"), b""),
    ("garbage time", close_path(ID1, "yesterday"), b""),
    ("not a UUID", open_path("e", "2013-01-01T00:00:00Z"), b""),
    ("stop before start", both_path(ID1, "2013-01-02T00:00:00Z", "2013-01-01T00:00:00Z"), b""),
    ("bad product", open_path(ID1, "2013-01-01T00:00:00Z", product="-x"), b""),
]


@pytest.mark.parametrize(("why", "path", "body"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_is_400_and_kept(
    vault: httpx.AsyncClient, native: httpx.AsyncClient, why: str, path: str, body: bytes
) -> None:
    headers = {"content-type": "application/json"} if body else {}
    r = await vault.put(path, content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["id"] == "invalid_input" and r.json()["message"]
    kept = await rejections(native)
    assert len(kept) == 1 and kept[0]["code"] == "invalid_input"
    assert (await native.get("/v1/events", params={"surface": "vault"})).json()["items"] == []


async def test_detail_too_large_is_413(vault: httpx.AsyncClient) -> None:
    body = b'{"a":"' + b"x" * 70_000 + b'"}'
    r = await vault.put(open_path(ID1, "2013-01-01T00:00:00Z"), content=body)
    assert r.status_code == 413


async def test_unknown_event_is_404(vault: httpx.AsyncClient) -> None:
    r = await vault.get(f"/usage_events/{ID3}")
    assert r.status_code == 404 and r.json()["id"] == "not_found"


async def test_voided_event_is_gone(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    await vault.put(both_path(ID1, "2013-01-01T00:00:00Z", "2013-01-02T00:00:00Z"))
    r = await native.post(f"/v1/events/{ID1}/void", params={"surface": "vault"}, json={"reason": "test"})
    assert r.status_code == 200
    assert (await vault.get(f"/usage_events/{ID1}")).status_code == 404


async def test_product_meter_aggregates_by_duration(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    await vault.put(both_path(ID1, "2013-01-01T00:00:00Z", "2013-01-01T02:00:00Z"))
    meter = (await native.get(f"/v1/meters/{P}")).json()
    assert (meter["aggregation"], meter["unit"]) == ("duration", "s")
    body = {"meter": P, "from": "2013-01-01T00:00:00Z", "to": "2013-01-02T00:00:00Z", "group_by": ["customer"]}
    rows = (await native.post("/v1/query", json=body)).json()["rows"]
    assert [(r["group"], r["value"]) for r in rows] == [({"customer": APP}, 7200.0)]


async def test_basic_auth(served: Served, vault: httpx.AsyncClient) -> None:
    path = open_path(ID2, "2013-01-01T00:00:00Z")
    for headers in (
        {},
        {"authorization": basic("mk_nope_nope")},
        {"authorization": "Bearer x"},
        {"authorization": "Basic !!!"},
        {"authorization": basic("", "only-user")},
    ):
        r = await vault.put(path, headers={**headers} if headers else {"authorization": ""})
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="meterd"'
    reader = await served.meterd.create_key("default", "reader", frozenset({Scope.READ}))
    writer = await served.meterd.create_key("default", "writer", frozenset({Scope.INGEST}))
    assert (await vault.put(path, headers={"authorization": basic(reader.secret)})).status_code == 403
    assert (await vault.put(path, headers={"authorization": basic(writer.secret, "any name")})).status_code == 201
    assert (await vault.get(f"/usage_events/{ID2}", headers={"authorization": basic(writer.secret)})).status_code == 403
    assert (await vault.get(f"/usage_events/{ID2}", headers={"authorization": basic(reader.secret)})).status_code == 200


async def test_ids_are_case_insensitive(vault: httpx.AsyncClient) -> None:
    assert (await vault.put(open_path(ID1.upper(), "2013-01-01T00:00:00Z"))).status_code == 201
    assert (await vault.put(open_path(ID1, "2013-01-01T00:00:00Z"))).json()["outcome"] == "duplicate"
    assert (await vault.get(f"/usage_events/{ID1.upper()}")).json()["id"] == ID1
