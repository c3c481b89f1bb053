"""Usage for a user: own events, owned apps' events clipped to the ownership, transfers, snapshot, exclude."""

from __future__ import annotations

import uuid

import httpx
import pytest

from meterd.core.models import Scope
from tests.conftest import Served
from tests.surfaces.vault.conftest import ID1, ID2, ID3, basic, events_of

DYNO = "platform:dyno:logical"
ADDON = "addon:memcache:100mb"
U1, U2, APP, APP2 = "user1@heroku.com", "user2@heroku.com", "app1@heroku.com", "app2@heroku.com"


def t(day: int, hour: int = 0) -> str:
    return f"2013-01-{day:02d}T{hour:02d}:00:00Z"


def new_id() -> str:
    return str(uuid.uuid4())


async def event(
    vault: httpx.AsyncClient, start: str, stop: str | None, product: str = DYNO, consumer: str = APP, eid: str = ""
) -> str:
    eid = eid or new_id()
    base = f"/products/{product}/usage/{consumer}/events/{eid}/open/{start}"
    r = await vault.put(base if stop is None else f"{base}/close/{stop}")
    assert r.status_code == 201, r.text
    return eid


async def own(vault: httpx.AsyncClient, user: str, app: str, start: str | None, stop: str | None, oid: str = "") -> str:
    oid = oid or new_id()
    if start is not None:
        assert (await vault.put(f"/users/{user}/apps/{app}/open/{oid}/{start}")).status_code == 201
    if stop is not None:
        assert (await vault.put(f"/users/{user}/apps/{app}/close/{oid}/{stop}")).status_code == 201
    return oid


async def usage(vault: httpx.AsyncClient, user: str, start: str, stop: str, **params: str) -> list[tuple[str, ...]]:
    found = events_of(await vault.get(f"/users/{user}/usage/{start}/{stop}", params=params))
    return [(e["id"], e["consumer"], e["start_time"], e["stop_time"] or "-") for e in found]


async def test_own_events_and_owned_apps(vault: httpx.AsyncClient) -> None:
    mine = await event(vault, t(2), t(3), product=ADDON, consumer=U1)
    theirs = await event(vault, t(2), t(4))
    elsewhere = await event(vault, t(2), t(4), consumer=APP2)  # nobody gave APP2 to U1
    await own(vault, U1, APP, t(1), None)
    got = await usage(vault, U1, t(1), t(10))
    assert got == sorted([(mine, U1, t(2), t(3)), (theirs, APP, t(2), t(4))], key=lambda g: (g[2], g[0]))
    assert elsewhere not in {g[0] for g in got}
    assert await usage(vault, U2, t(1), t(10)) == []


async def test_transfer_mid_event_splits_it(vault: httpx.AsyncClient) -> None:
    """U1 owns APP until the 5th, U2 from then: one event from the 3rd to the 8th splits at the 5th."""
    eid = await event(vault, t(3), t(8))
    await own(vault, U1, APP, t(1), t(5))
    await own(vault, U2, APP, t(5), None)
    assert await usage(vault, U1, t(1), t(31)) == [(eid, APP, t(3), t(5))]
    assert await usage(vault, U2, t(1), t(31)) == [(eid, APP, t(5), t(8))]
    # the window selects parts that overlap it; times stay the part's (not cut to the window)
    assert await usage(vault, U1, t(4), t(6)) == [(eid, APP, t(3), t(5))]
    assert await usage(vault, U1, t(5), t(6)) == []
    assert await usage(vault, U2, t(7), t(9)) == [(eid, APP, t(5), t(8))]
    assert await usage(vault, U2, t(1), t(5)) == []


async def test_open_event_and_open_ownership_stay_open(vault: httpx.AsyncClient) -> None:
    eid = await event(vault, t(3), None)
    await own(vault, U1, APP, t(1), None)
    assert await usage(vault, U1, t(2), t(4)) == [(eid, APP, t(3), "-")]
    unrelated = await own(vault, U2, APP2, t(1), None)
    assert (await vault.put(f"/users/{U1}/apps/{APP}/close/{unrelated}/{t(6)}")).status_code == 409
    assert await usage(vault, U1, t(2), t(4)) == [(eid, APP, t(3), "-")]


async def test_ownership_closed_while_event_open_cuts_it(vault: httpx.AsyncClient) -> None:
    eid = await event(vault, t(3), None)
    oid = await own(vault, U1, APP, t(1), None)
    await own(vault, U1, APP, None, t(6), oid=oid)
    assert await usage(vault, U1, t(1), t(31)) == [(eid, APP, t(3), t(6))]


async def test_late_close_of_the_old_owner_does_not_double_count(vault: httpx.AsyncClient) -> None:
    """U2's ownership starts on the 5th while U1's is still open: from the 5th the app is U2's."""
    eid = await event(vault, t(3), t(8))
    old = await own(vault, U1, APP, t(1), None)
    await own(vault, U2, APP, t(5), None)
    assert await usage(vault, U1, t(1), t(31)) == [(eid, APP, t(3), t(5))]
    assert await usage(vault, U2, t(1), t(31)) == [(eid, APP, t(5), t(8))]
    await own(vault, U1, APP, None, t(7), oid=old)  # a close that overlaps U2's stretch changes nothing
    assert await usage(vault, U1, t(1), t(31)) == [(eid, APP, t(3), t(5))]


async def test_ownership_close_before_open(vault: httpx.AsyncClient) -> None:
    eid = await event(vault, t(3), t(8))
    oid = new_id()
    assert (await vault.put(f"/users/{U1}/apps/{APP}/close/{oid}/{t(4)}")).status_code == 201
    assert await usage(vault, U1, t(1), t(31)) == []  # no start known yet: owns nothing
    assert (await vault.put(f"/users/{U1}/apps/{APP}/open/{oid}/{t(2)}")).status_code == 201
    assert await usage(vault, U1, t(1), t(31)) == [(eid, APP, t(3), t(4))]


async def test_ownership_replays_and_conflicts(vault: httpx.AsyncClient, native: httpx.AsyncClient) -> None:
    path = f"/users/{U1}/apps/{APP}/open/{ID1}/{t(1)}"
    assert (await vault.put(path)).json() == {"id": ID1, "outcome": "accepted"}
    assert (await vault.put(path)).json() == {"id": ID1, "outcome": "duplicate"}
    for other in (
        f"/users/{U2}/apps/{APP}/open/{ID1}/{t(1)}",
        f"/users/{U1}/apps/{APP2}/open/{ID1}/{t(1)}",
        f"/users/{U1}/apps/{APP}/open/{ID1}/{t(2)}",
        f"/users/{U2}/apps/{APP}/close/{ID1}/{t(3)}",
    ):
        r = await vault.put(other)
        assert r.status_code == 409, other
    assert (await vault.put(f"/users/{U1}/apps/{APP}/close/{ID1}/{t(3)}")).status_code == 201
    assert (await vault.put(f"/users/{U1}/apps/{APP}/close/{ID1}/{t(3)}")).json()["outcome"] == "duplicate"
    assert (await vault.put(f"/users/{U1}/apps/{APP}/close/{ID1}/{t(4)}")).status_code == 409
    kept = (await native.get("/v1/rejections", params={"surface": "vault"})).json()["items"]
    assert [(k["code"], k["event_id"]) for k in kept] == [("conflict", ID1)] * 5
    bad = f"/users/{U1}/apps/{APP}/open/{ID2}/{t(1)}"
    assert (await vault.put(bad.replace(t(1), "2013-01-01T00:00:00-05:00"))).status_code == 400


async def test_snapshot_keeps_parts_running_at_the_start(vault: httpx.AsyncClient) -> None:
    await own(vault, U1, APP, t(1), None)
    running = await event(vault, t(2), t(9))
    still_open = await event(vault, t(4), None)
    later = await event(vault, t(6), t(7))
    ended = await event(vault, t(2), t(5))  # stops exactly at the start: not running then
    got = await usage(vault, U1, t(5), t(10), snapshot="true")
    assert {g[0] for g in got} == {running, still_open}
    assert {g[0] for g in await usage(vault, U1, t(5), t(10))} == {running, still_open, later}
    assert ended not in {g[0] for g in await usage(vault, U1, t(5), t(10), snapshot="false")}
    r = await vault.get(f"/users/{U1}/usage/{t(5)}/{t(10)}", params={"snapshot": "maybe"})
    assert r.status_code == 400


async def test_exclude_products(vault: httpx.AsyncClient) -> None:
    a = await event(vault, t(2), t(3), product=DYNO, consumer=U1)
    b = await event(vault, t(2), t(3), product=ADDON, consumer=U1)
    c = await event(vault, t(2), t(3), product="addon:x", consumer=U1)
    assert {g[0] for g in await usage(vault, U1, t(1), t(9))} == {a, b, c}
    assert {g[0] for g in await usage(vault, U1, t(1), t(9), exclude=f"{ADDON},addon:x")} == {a}
    r = await vault.get(f"/users/{U1}/usage/{t(1)}/{t(9)}?exclude={DYNO}&exclude=addon:x")
    assert {e["id"] for e in events_of(r)} == {b}
    assert {g[0] for g in await usage(vault, U1, t(1), t(9), exclude="")} == {a, b, c}


async def test_point_events_count_inside_the_window_only(vault: httpx.AsyncClient) -> None:
    credit = "account:credit:lumpsum"
    inside = await event(vault, t(2), t(2), product=credit, consumer=U1)
    at_stop = await event(vault, t(9), t(9), product=credit, consumer=U1)
    assert [g[0] for g in await usage(vault, U1, t(1), t(9))] == [inside]
    assert at_stop in [g[0] for g in await usage(vault, U1, t(9), t(10))]


async def test_usage_by_product_is_over_all_time(vault: httpx.AsyncClient) -> None:
    credit = "account:credit:lumpsum"
    await own(vault, U1, APP, "2012-06-01T00:00:00Z", None)
    old = await event(vault, "2012-07-01T00:00:00Z", "2012-07-01T00:00:00Z", product=credit)
    new = await event(vault, t(5), None, product=credit, consumer=U1)
    await event(vault, t(5), t(6), product=DYNO, consumer=U1)
    found = events_of(await vault.get(f"/users/{U1}/usage/product/{credit}"))
    assert [(e["id"], e["product"]) for e in found] == [(old, credit), (new, credit)]
    assert events_of(await vault.get(f"/users/{U2}/usage/product/{credit}")) == []


async def test_open_dynos_for_app(vault: httpx.AsyncClient) -> None:
    web = await event(vault, t(2), None, product="platform:dyno:logical")
    worker = await event(vault, t(3), None, product="platform:dyno:physical")
    await event(vault, t(2), t(3), product="platform:dyno:logical")  # closed
    await event(vault, t(2), None, product=ADDON)  # not a dyno
    await event(vault, t(2), None, consumer=APP2)  # another app
    found = events_of(await vault.get(f"/apps/{APP}/ps/open"))
    assert [(e["id"], e["stop_time"]) for e in found] == [(web, None), (worker, None)]


@pytest.mark.parametrize(
    "path",
    [
        f"/users/{U1}/usage/{t(5)}/{t(1)}",
        f"/users/{U1}/usage/{t(5)}/{t(5)}",
        f"/users/{U1}/usage/2013-01-01/{t(5)}",
        f"/users/{U1}/usage/{t(1)}/2013-01-05T00:00:00+02:00",
        "/usage_events/not-a-uuid",
    ],
)
async def test_bad_queries_are_400(vault: httpx.AsyncClient, path: str) -> None:
    r = await vault.get(path)
    assert r.status_code == 400 and r.json()["id"] == "invalid_input"


async def test_tenants_are_isolated(served: Served, vault: httpx.AsyncClient) -> None:
    await own(vault, U1, APP, t(1), None)
    await event(vault, t(2), t(3), eid=ID3)
    other = await served.meterd.create_key("acme", "k", frozenset({Scope.ADMIN}))
    headers = {"authorization": basic(other.secret)}
    assert events_of(await vault.get(f"/users/{U1}/usage/{t(1)}/{t(9)}", headers=headers)) == []
    assert (await vault.get(f"/usage_events/{ID3}", headers=headers)).status_code == 404
