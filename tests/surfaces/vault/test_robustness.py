"""No vault request ever answers 5xx; opens and closes racing each other still meet."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.surfaces.vault.conftest import ID1

segment = st.one_of(
    st.sampled_from(["2013-01-01T00:00:00Z", ID1, "app@h.com", "platform:dyno:x", "", "..", "%00", "9999-99-99"]),
    st.text(min_size=1, max_size=40),
).map(lambda s: quote(s, safe=":@.") or "x")
TEMPLATES = [
    "/products/{}/usage/{}/events/{}/open/{}",
    "/products/{}/usage/{}/events/{}/close/{}",
    "/products/{}/usage/{}/events/{}/open/{}/close/{}",
    "/users/{}/apps/{}/open/{}/{}",
    "/users/{}/apps/{}/close/{}/{}",
    "/usage_events/{}",
    "/users/{}/usage/{}/{}",
    "/users/{}/usage/product/{}",
    "/apps/{}/ps/open",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(TEMPLATES),
    st.lists(segment, min_size=5, max_size=5),
    st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    st.sampled_from([b"", b"{}", b'{"a":1}', b'{"a":{"b":1}}', b"\xff\xfe", b"[", b"null", b'{"a":1e999}']),
    st.sampled_from(["", "?exclude=a,b", "?snapshot=yes", "?callback_url=http%3A%2F%2F127.0.0.1%3A9%2F", "?x=%ff"]),
)
async def test_never_a_server_error(
    vault: httpx.AsyncClient, template: str, parts: list[str], method: str, body: bytes, query: str
) -> None:
    path = template.format(*parts[: template.count("{}")]) + query
    response = await vault.request(method, path, content=body)
    assert response.status_code < 500, (path, response.status_code, response.text)


async def test_racing_opens_and_closes_meet(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    ids = [str(uuid.uuid4()) for _ in range(25)]

    def requests(eid: str, n: int) -> list[str]:
        base = f"/products/platform:dyno:x/usage/app@h/events/{eid}"
        opened, closed = f"{base}/open/2013-01-01T00:00:00Z", f"{base}/close/2013-01-02T00:00:00Z"
        both = f"{base}/open/2013-01-01T00:00:00Z/close/2013-01-02T00:00:00Z"
        return [[opened, closed], [closed, opened], [closed, opened, opened, closed], [both, closed, opened]][n % 4]

    answers = await asyncio.gather(*(vault.put(p) for n, eid in enumerate(ids) for p in requests(eid, n)))
    assert {r.status_code for r in answers} == {201}
    for eid in ids:
        got = (await vault.get(f"/usage_events/{eid}")).json()
        assert (got["start_time"], got["stop_time"]) == ("2013-01-01T00:00:00Z", "2013-01-02T00:00:00Z")
    assert (await native.get("/v1/rejections", params={"surface": "vault"})).json()["items"] == []


async def test_racing_ownership_opens_and_closes_meet(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    ids = [str(uuid.uuid4()) for _ in range(15)]
    paths = []
    for n, oid in enumerate(ids):
        opened = f"/users/u{n}@h/apps/a{n}@h/open/{oid}/2013-01-01T00:00:00Z"
        closed = f"/users/u{n}@h/apps/a{n}@h/close/{oid}/2013-01-03T00:00:00Z"
        paths += [closed, opened, opened, closed] if n % 2 else [opened, closed, closed]
    answers = await asyncio.gather(*(vault.put(p) for p in paths))
    assert {r.status_code for r in answers} == {201}
    assert sorted(r.json()["outcome"] for r in answers).count("accepted") == 2 * len(ids)
    for n in range(len(ids)):
        event = f"/products/p/usage/a{n}@h/events/{uuid.uuid4()}/open/2012-12-31T00:00:00Z/close/2013-01-05T00:00:00Z"
        assert (await vault.put(event)).status_code == 201
        r = await vault.get(f"/users/u{n}@h/usage/2013-01-01T00:00:00Z/2013-02-01T00:00:00Z")
        [part] = r.json()["events"]
        assert (part["start_time"], part["stop_time"]) == ("2013-01-01T00:00:00Z", "2013-01-03T00:00:00Z")
    assert (await native.get("/v1/rejections", params={"surface": "vault"})).json()["items"] == []
