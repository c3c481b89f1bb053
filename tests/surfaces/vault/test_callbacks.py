"""callback_url jobs: 200 {"job_id"} at once, the events POSTed to an allowed host, timeouts, bounded retries."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from meterd.core.callbacks import Retry
from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.conftest import Served
from tests.surfaces.vault.conftest import ID1, Receiver, basic

U, APP = "user1@heroku.com", "app1@heroku.com"
WINDOW = "2013-01-01T00:00:00Z/2013-02-01T00:00:00Z"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def seed(vault: httpx.AsyncClient) -> None:
    path = f"/products/platform:dyno:logical/usage/{APP}/events/{ID1}/open/2013-01-02T00:00:00Z"
    assert (await vault.put(path, json={"type": "web"})).status_code == 201
    assert (await vault.put(f"/users/{U}/apps/{APP}/open/{ID1}/2013-01-01T00:00:00Z")).status_code == 201


async def job(served: Served, job_id: str) -> dict[str, Any]:
    await served.app.state.vault_jobs.drain()
    found = await served.store.get_object("default", "callback.job", job_id)
    assert found is not None
    return found


async def start(vault: httpx.AsyncClient, url: str, **params: str) -> str:
    r = await vault.get(f"/users/{U}/usage/{WINDOW}", params={"callback_url": url, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"job_id"} and UUID.match(body["job_id"])  # never both job_id and events
    job_id: str = body["job_id"]
    return job_id


async def test_delivers_the_same_events_as_the_synchronous_answer(
    served: Served, vault: httpx.AsyncClient, receiver: Receiver
) -> None:
    await seed(vault)
    job_id = await start(vault, receiver.url)
    state = await job(served, job_id)
    assert (state["status"], state["attempts"], state["last_error"]) == ("delivered", 1, None)
    [post] = receiver.received
    assert post["path"] == "/cb"
    assert post["headers"]["content-type"] == "application/json"
    assert post["headers"]["x-meterd-job-id"] == job_id
    sync = (await vault.get(f"/users/{U}/usage/{WINDOW}")).json()
    assert json.loads(post["body"]) == sync
    assert sync["events"][0]["stop_time"] is None and len(sync["events"]) == 1


async def test_snapshot_and_exclude_apply_to_jobs(served: Served, vault: httpx.AsyncClient, receiver: Receiver) -> None:
    await seed(vault)
    await job(served, await start(vault, receiver.url, snapshot="true"))
    await job(served, await start(vault, receiver.url, exclude="platform:dyno:logical"))
    assert [json.loads(p["body"]) for p in receiver.received] == [{"events": []}, {"events": []}]


async def test_retries_server_errors_then_delivers(
    served: Served, vault: httpx.AsyncClient, receiver: Receiver
) -> None:
    await seed(vault)
    receiver.statuses = [503, 429]
    state = await job(served, await start(vault, receiver.url))
    assert (state["status"], state["attempts"]) == ("delivered", 3)
    assert len(receiver.received) == 3 and len({p["body"] for p in receiver.received}) == 1


async def test_gives_up_after_the_bounded_attempts(
    served: Served, vault: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    state = await job(served, await start(vault, receiver.url))
    assert (state["status"], state["attempts"], state["last_error"]) == ("failed", 3, "the callback answered 500")
    assert len(receiver.received) == 3


async def test_client_errors_and_redirects_are_not_retried(
    served: Served, vault: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [404, 302]
    first = await job(served, await start(vault, receiver.url))
    second = await job(served, await start(vault, receiver.url))
    assert [(s["status"], s["attempts"]) for s in (first, second)] == [("failed", 1), ("failed", 1)]
    assert len(receiver.received) == 2


async def test_unreachable_callback_fails_after_retries(served: Served, vault: httpx.AsyncClient) -> None:
    state = await job(served, await start(vault, "http://127.0.0.1:9/cb"))  # the capture's discard port
    assert state["status"] == "failed" and state["attempts"] == 3 and "Connect" in state["last_error"]


async def test_slow_callback_times_out_and_is_retried(
    served: Served, vault: httpx.AsyncClient, receiver: Receiver
) -> None:
    served.app.state.vault_jobs.retry = Retry(attempts=2, timeout_s=0.2, backoff_s=0.01)
    receiver.delay = 0.5
    state = await job(served, await start(vault, receiver.url))
    assert (state["status"], state["attempts"]) == ("failed", 2)
    assert "Timeout" in state["last_error"]  # each attempt is cut at the timeout, then retried
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/cb",
        "http://localhost/cb",
        "ftp://127.0.0.1/cb",
        "http://user:pw@127.0.0.1/cb",
        "http://127.0.0.1:99999/cb",
        "/relative",
        "http://127.0.0.1.evil.example/cb",
    ],
)
async def test_refused_urls_are_422(vault: httpx.AsyncClient, url: str) -> None:
    r = await vault.get(f"/users/{U}/usage/{WINDOW}", params={"callback_url": url})
    assert r.status_code == 422 and r.json()["id"] == "callback_refused"


async def test_no_allowlist_means_no_callbacks(database_url: str) -> None:
    settings = Settings(database_url=database_url)  # METERD_VAULT_CALLBACK_HOSTS unset
    store = create_store(database_url)
    app = create_app(settings, store=store)
    async with app.router.lifespan_context(app):
        minted = await app.state.meterd.bootstrap()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get(
                f"/users/{U}/usage/{WINDOW}",
                params={"callback_url": "http://127.0.0.1:9/cb", "snapshot": "true"},
                headers={"authorization": basic(minted.secret)},
            )
            assert r.status_code == 422
            assert "METERD_VAULT_CALLBACK_HOSTS" in r.json()["message"]
        assert await store.list_objects("default", "callback.job") == []


def test_allowlist_from_the_environment() -> None:
    settings = Settings.from_env({"METERD_VAULT_CALLBACK_HOSTS": "hooks.internal, 127.0.0.1:8123"})
    assert settings.vault_callback_hosts == ("hooks.internal", "127.0.0.1:8123")
