"""Replay the exact requests the Ruby Vault::Usage client sent (wire capture) against a real server.

Each captured request goes out byte for byte (raw path with ``:`` ``@`` ``.``, captured headers and body)
through ``http.client``; only the Basic credentials are swapped for a meterd API key (the capture's are
not meaningful). The client insists on exactly 201 for PUTs and 200 for GETs, parses times only when they
match ``\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z`` and reads ``job_id`` if present, else ``events``.
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer
from tests.surfaces.vault.conftest import ID1, basic

WIRE = Path("/work/shared/reference/wire/vault-ruby-client-requests.ndjson")
RUBY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LOGICAL = {
    "id": ID1,
    "product": "platform:dyno:logical",
    "consumer": "app123@heroku.com",
    "start_time": "2013-01-01T00:00:00Z",
    "stop_time": "2013-02-01T00:00:00Z",
    "detail": {"type": "web", "qty": 2, "ok": True, "none": None},
}


def captured() -> list[dict[str, Any]]:
    if not WIRE.exists():
        pytest.skip(f"the wire capture {WIRE} is missing")
    return [json.loads(line) for line in WIRE.read_text().splitlines() if line.strip()]


def send(server: LiveServer, request: dict[str, Any], authorization: str | None) -> tuple[int, Any]:
    """Send one captured request exactly, with ``authorization`` replacing the captured credentials."""
    target = urlsplit(server.url)
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
    try:
        conn.putrequest(request["method"], request["path"], skip_host=True, skip_accept_encoding=True)
        for name, value in request["headers"].items():
            if name == "Authorization" and authorization is not None:
                value = authorization
            conn.putheader(name, value)
        conn.endheaders(request["body"].encode() or None)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def ruby_view(value: Any) -> Any:
    """What MultiJson + the client turn an event into: top-level time strings become Times (marked here)."""
    if isinstance(value, dict) and "start_time" in value:
        return {k: ("<Time>" if isinstance(v, str) and RUBY_TIME.match(v) else v) for k, v in value.items()}
    return value


def test_the_capture_is_what_protocols_md_describes() -> None:
    requests = captured()
    assert len(requests) == 14
    assert requests[0]["headers"]["Content-Type"] == "application/json"
    assert all(r["headers"]["Authorization"].startswith("Basic ") for r in requests)
    assert "Content-Type" not in requests[1]["headers"] and requests[1]["body"] == ""


def test_replay_the_whole_capture_in_order(live_server: LiveServer) -> None:
    requests = captured()
    auth = basic(live_server.admin_key)
    answers = [send(live_server, r, auth) for r in requests]
    statuses = [status for status, _ in answers]
    assert statuses == [201, 201, 409, 201, 201, 200, 200, 200, 200, 200, 409, 400, 400, 400]
    # 3 and 11 reuse the first event's id with another product: a conflict, kept as a rejection.
    assert answers[0][1] == {"id": ID1, "outcome": "accepted"}
    assert answers[1][1] == {"id": ID1, "outcome": "accepted"}
    assert answers[2][1]["id"] == "conflict"
    assert answers[3][1] == {"id": ID1, "outcome": "accepted"}  # ownership ids are their own namespace
    assert answers[5][1] == LOGICAL
    assert ruby_view(answers[5][1])["start_time"] == "<Time>" and ruby_view(answers[5][1])["stop_time"] == "<Time>"
    assert answers[6][1] == {"events": [LOGICAL]}
    job = answers[7][1]
    assert set(job) == {"job_id"} and UUID.match(job["job_id"])
    assert answers[8][1] == {"events": []}
    assert answers[9][1] == {"events": []}  # the dyno event is closed
    assert [a[1]["id"] for a in answers[11:]] == ["invalid_input"] * 3  # "e" is not a UUID
    rejections = _rejections(live_server)
    assert sorted((r["code"], r["event_id"]) for r in rejections) == sorted(
        [("conflict", ID1), ("conflict", ID1), ("invalid_input", "e"), ("invalid_input", "e")]
    )


def test_conflicting_puts_alone_are_201_and_replays_too(live_server: LiveServer) -> None:
    """Requests 3 and 11 succeed where their id is new (prefix swapped); a replay is 201 again, a no-op."""
    requests = captured()
    auth = basic(live_server.admin_key)
    for index, prefix in ((2, "aaaaaaaa"), (10, "bbbbbbbb")):
        fresh = {**requests[index], "path": requests[index]["path"].replace("d8bb95d1", prefix)}
        assert send(live_server, fresh, auth) == (201, {"id": prefix + ID1[8:], "outcome": "accepted"})
        assert send(live_server, fresh, auth) == (201, {"id": prefix + ID1[8:], "outcome": "duplicate"})
    assert _rejections(live_server) == []


def test_open_dyno_is_listed_until_closed(live_server: LiveServer) -> None:
    requests = captured()
    auth = basic(live_server.admin_key)
    assert send(live_server, requests[0], auth)[0] == 201
    status, body = send(live_server, requests[9], auth)
    assert status == 200
    assert body == {"events": [{**LOGICAL, "stop_time": None}]}
    assert send(live_server, requests[1], auth)[0] == 201
    assert send(live_server, requests[9], auth) == (200, {"events": []})


def test_captured_credentials_are_refused(live_server: LiveServer) -> None:
    """The capture's own passwords are no meterd keys: every request is 401, with a Basic challenge."""
    for request in captured():
        status, body = send(live_server, request, None)
        assert status == 401 and body["id"] == "unauthenticated"


def _rejections(server: LiveServer) -> list[dict[str, Any]]:
    import httpx

    headers = {"authorization": f"Bearer {server.admin_key}"}
    r = httpx.get(f"{server.url}/v1/rejections", params={"surface": "vault"}, headers=headers)
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items
