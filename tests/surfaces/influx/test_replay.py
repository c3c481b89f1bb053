"""Replay the Go usage-client's captured requests byte for byte against a live server; exact statuses and bodies."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.surfaces.influx.conftest import FIXED_NOW, captured, go_client_error, replay_headers

SERVER_BODY = {
    "cluster_id": "clus1",
    "server_id": "serv1",
    "host": "h",
    "product": "influxdb",
    "version": "1.0",
    "first_seen": "2024-06-01T12:00:00.000Z",
    "last_seen": "2024-06-01T12:00:00.000Z",
}


@pytest.fixture
def http(live_server: LiveServer) -> httpx.Client:
    live_server.app.state.meterd.clock = lambda: FIXED_NOW
    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False) as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def native(live_server: LiveServer) -> httpx.Client:
    headers = {"authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as c:
        yield c  # type: ignore[misc]


def register(http: httpx.Client, organization: str = "Acme Corp", cluster_id: str = "clus1") -> str:
    """Go through /start as a browser would and return the token of the redirect."""
    form = {
        "cluster_id": cluster_id,
        "product": "influxdb",
        "redirect_url": "http://app.example:8888/done",
        "organization": organization,
        "email": "ops@acme.example",
    }
    r = http.post("/start", data=form)
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"http://app\.example:8888/done\?token=(it_[0-9a-f]+_[A-Za-z0-9_\-]+)", r.headers["location"])
    assert match, r.headers["location"]
    return match.group(1)


def send(http: httpx.Client, request: dict[str, Any], token: str | None = "keep") -> httpx.Response:
    return http.request(
        request["method"], request["path"], content=request["body"].encode(), headers=replay_headers(request, token)
    )


def query(native: httpx.Client, meter: str, group_by: list[str]) -> list[dict[str, Any]]:
    body = {"meter": meter, "from": "2024-06-01T00:00:00Z", "to": "2024-06-02T00:00:00Z", "group_by": group_by}
    r = native.post("/v1/query", json=body)
    assert r.status_code == 200, r.text
    return [{"group": row["group"], "value": row["value"]} for row in r.json()["rows"]]


def test_capture_as_sent_unknown_token_is_401_and_anonymous_usage_is_stored(
    http: httpx.Client, native: httpx.Client
) -> None:
    requests = captured()
    assert [r["path"] for r in requests] == [
        "/api/v1/servers",
        "/api/v1/stats/influxdb",
        "/api/v1/usage/influxdb",
        "/api/v1/usage/bad",
        "/api/v1/usage/html",
        "/api/v1/usage/forbidden",
    ]
    answers = [send(http, r) for r in requests]
    assert [a.status_code for a in answers] == [401, 401, 200, 200, 200, 200]
    assert answers[0].json() == {"error": "the token is not valid"}
    assert go_client_error(401, answers[1].content) == "the token is not valid"
    assert [a.json() for a in answers[2:]] == [{"accepted": 1}] * 4
    assert all(a.headers["content-type"] == "application/json" for a in answers)
    # The anonymous snapshot: one event per numeric value, tags and string values as dimensions.
    assert query(native, "influxdb.usage.num_series", ["customer", "os", "cluster_id"]) == [
        {"group": {"customer": "anonymous", "os": "linux", "cluster_id": "23423"}, "value": 87232.0}
    ]
    assert query(native, "forbidden.usage.num_series", ["customer"]) == [
        {"group": {"customer": "anonymous"}, "value": 87232.0}
    ]
    assert native.get("/v1/influx/servers").json() == {"items": []}


def test_capture_with_a_registered_token_belongs_to_the_customer(http: httpx.Client, native: httpx.Client) -> None:
    token = register(http)
    servers, stats, usage = captured()[:3]
    first = send(http, servers, token)
    assert first.status_code == 201
    assert first.json() == {**SERVER_BODY, "customer": "acme-corp", "registrations": 1}
    again = send(http, servers, token)  # every application start registers again: an upsert
    assert again.status_code == 200
    assert again.json() == {**SERVER_BODY, "customer": "acme-corp", "registrations": 2}
    assert go_client_error(first.status_code, first.content) is None
    r = send(http, stats, token)
    assert (r.status_code, r.json()) == (200, {"accepted": 1})
    r = send(http, usage, token)
    assert (r.status_code, r.json()) == (200, {"accepted": 1})
    assert query(native, "influxdb.engine.points_write", ["customer", "path", "cluster_id", "server_id"]) == [
        {"group": {"customer": "acme-corp", "path": "/x", "cluster_id": "clus1", "server_id": "serv1"}, "value": 39.0}
    ]
    assert query(native, "influxdb.usage.num_series", ["customer"]) == [
        {"group": {"customer": "acme-corp"}, "value": 87232.0}
    ]
    listed = native.get("/v1/influx/servers", params={"customer": "acme-corp"}).json()
    assert listed == {"items": [{**SERVER_BODY, "customer": "acme-corp", "registrations": 2}]}
    assert native.get("/v1/influx/servers", params={"customer": "other"}).json() == {"items": []}
    events = native.get("/v1/events", params={"surface": "influx", "meter": "influxdb.engine.points_write"}).json()
    (event,) = events["items"]
    assert event["time"] == "2024-06-01T12:00:00.000Z"
    assert event["dimensions"] == {"path": "/x", "cluster_id": "clus1", "server_id": "serv1"}


def test_anonymous_server_keeps_its_customer_and_a_token_claims_an_anonymous_one(
    http: httpx.Client, native: httpx.Client
) -> None:
    servers = captured()[0]
    r = send(http, servers, None)
    assert (r.status_code, r.json()["customer"]) == (201, "anonymous")
    token = register(http)
    r = send(http, servers, token)
    assert (r.status_code, r.json()["customer"], r.json()["registrations"]) == (200, "acme-corp", 2)
    r = send(http, servers, None)  # a later start without the token does not orphan it
    assert (r.status_code, r.json()["customer"], r.json()["registrations"]) == (200, "acme-corp", 3)
    assert [s["customer"] for s in native.get("/v1/influx/servers").json()["items"]] == ["acme-corp"]
