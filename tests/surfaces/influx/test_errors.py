"""Influx errors at the wire: only 401/404/500 with {"error"} and 422 with {"errors"} — never 400 or 403."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.core.errors import StorageError
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.conftest import Served, free_port
from tests.surfaces.influx.conftest import go_client_error

SERVER = {"cluster_id": "c1", "server_id": "s1", "host": "h", "product": "influxdb", "version": "1.0"}


def stats(*items: Any) -> dict[str, Any]:
    return {"cluster_id": "c1", "server_id": "s1", "stats": list(items)}


async def test_blank_server_fields_use_the_clients_wording(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/servers", json={})
    assert r.status_code == 422
    assert r.json() == {
        "errors": {
            "cluster_id": ["ClusterID can not be blank."],
            "host": ["Host can not be blank."],
            "product": ["Product can not be blank."],
            "server_id": ["ServerID can not be blank."],
            "version": ["Version can not be blank."],
        }
    }
    r = await client.post("/api/v1/servers", json={**SERVER, "host": 7, "version": " "})
    assert r.json() == {"errors": {"host": ["Host must be a string."], "version": ["Version can not be blank."]}}


async def test_unreadable_bodies_are_422_and_kept(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/servers", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert list(r.json()["errors"]) == ["body"]
    r = await client.post("/api/v1/usage/influxdb", json={"tags": {}})
    assert r.json() == {"errors": {"body": ["must be a JSON array of usage snapshots."]}}
    r = await client.post("/api/v1/stats/influxdb", json={"stats": "x"})
    assert r.json() == {
        "errors": {
            "cluster_id": ["ClusterID can not be blank."],
            "server_id": ["ServerID can not be blank."],
            "stats": ["Stats must be a list."],
        }
    }
    r = await client.post("/api/v1/stats/bad%20name", json=stats())
    assert r.json() == {"errors": {"product": ["Product must be 1 to 64 letters, digits, '_', '.' or '-'."]}}
    kept = (await client.get("/v1/rejections", params={"surface": "influx"})).json()["items"]
    assert [k["raw"] for k in kept] == [
        "{nope",
        '{"tags":{}}',
        '{"stats":"x"}',
        json.dumps(stats(), separators=(",", ":")),
    ]


async def test_a_bad_stat_does_not_sink_the_good_ones(client: httpx.AsyncClient) -> None:
    body = stats(
        {"name": "engine", "tags": {"path": "/a"}, "values": {"points": 3, "state": "ok", "hot": True, "gone": None}},
        {"values": {"x": 1}},
        {"name": "cache", "tags": {"n": 1}, "values": {"size": {"nested": 1}}},
        {"name": "w", "values": {"label": "only strings"}},
        {"name": "d", "tags": {"cluster_id": "other"}, "values": {"v": 1}},
        "not an object",
    )
    r = await client.post("/api/v1/stats/influxdb", json=body)
    assert r.status_code == 422
    assert r.json() == {
        "errors": {
            "stats[1].name": ["Name can not be blank."],
            "stats[2].tags.n": ["Tag values must be strings."],
            "stats[2].values.size": ["Values must be numbers, strings, booleans or null."],
            "stats[3].values": ["Values must hold at least one number."],
            "stats[4].cluster_id": ["disagrees with another 'cluster_id' of the same record."],
            "stats[5]": ["must be an object."],
        },
        "accepted": 1,
        "rejected": 5,
    }
    assert go_client_error(r.status_code, r.content) is not None
    events = (await client.get("/v1/events", params={"surface": "influx"})).json()["items"]
    assert [(e["meter"], e["value"], e["dimensions"]) for e in events] == [
        (
            "influxdb.engine.points",
            3.0,
            {"path": "/a", "gone": None, "hot": True, "state": "ok", "cluster_id": "c1", "server_id": "s1"},
        )
    ]
    kept = (await client.get("/v1/rejections", params={"surface": "influx"})).json()["items"]
    assert len(kept) == 5
    assert kept[0]["message"] == "stats[1].name: Name can not be blank."
    assert json.loads(kept[0]["raw"])["stat"] == {"values": {"x": 1}}


async def test_unknown_and_revoked_tokens_are_401(client: httpx.AsyncClient, served: Served) -> None:
    for token in ("tok-123", "it_0000_nope", "it__x", " "):
        r = await client.post("/api/v1/usage/influxdb", json=[{"values": {"n": 1}}], headers={"X-Authorization": token})
        if token.strip():
            assert (r.status_code, r.json()) == (401, {"error": "the token is not valid"})
        else:  # a blank header is no token: anonymous
            assert r.status_code == 200


async def test_storage_failure_is_a_500_the_client_sees(client: httpx.AsyncClient, served: Served) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("the database is unavailable")

    served.store.ingest = broken  # type: ignore[method-assign]
    r = await client.post("/api/v1/usage/influxdb", json=[{"values": {"n": 1}}])
    assert (r.status_code, r.json()) == (500, {"error": "the database is unavailable"})
    served.store.get_object = broken  # type: ignore[method-assign]
    r = await client.post("/api/v1/servers", json=SERVER)
    assert (r.status_code, r.json()) == (500, {"error": "the database is unavailable"})


async def test_a_bug_is_a_500_with_a_json_error(client: httpx.AsyncClient, served: Served) -> None:
    async def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    served.store.put_object = bug  # type: ignore[method-assign]
    r = await client.post("/api/v1/servers", json=SERVER)
    assert (r.status_code, r.json()) == (500, {"error": "the server hit an unexpected problem; retry later"})


async def test_body_over_the_limit_is_422(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, max_body_bytes=2048), store=create_store(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post("/api/v1/usage/influxdb", json=[{"values": {"n": 1}, "tags": {"x": "y" * 3000}}])
    assert (r.status_code, r.json()) == (422, {"errors": {"body": ["the body is over 2048 bytes"]}})


# --- fuzz: whatever arrives, the client gets an answer it understands --------------------------------------


@pytest.fixture(scope="module")
def sync_client() -> Iterator[httpx.Client]:
    """One real server for every fuzz example (on the in-memory store: the fuzz is about the wire)."""
    app = create_app(Settings(database_url="memory://"), store=create_store("memory://"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            yield c
    finally:
        server.should_exit = True
        thread.join(10)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.builds(
        lambda name, tags, values: json.dumps(
            {"cluster_id": "c", "server_id": "s", "stats": [{"name": name, "tags": tags, "values": values}]}
        ).encode(),
        st.text(max_size=10),
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/api/v1/servers", "/api/v1/stats/influxdb", "/api/v1/usage/influxdb", "/api/v1/stats/x y"]),
    body=bodies,
    token=st.sampled_from([None, "tok-123", "it_a_b", ""]),
)
def test_fuzz_answers_are_always_understood(
    sync_client: httpx.Client, path: str, body: bytes, token: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["x-authorization"] = token
    r = sync_client.post(path, content=body, headers=headers)
    assert r.status_code in (200, 201, 401, 422), (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    if r.status_code >= 400:
        assert go_client_error(r.status_code, r.content) not in (None, "json decode error")
