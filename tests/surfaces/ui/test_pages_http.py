"""Dashboard pages over HTTP: data shown, the query relay equals the API, corrections, panels, no 500s."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import urlencode

import httpx
import pytest

from meterd.service.customer_panels import Panel
from meterd.service.marketplace import Catalog
from meterd.storage.base import Store
from meterd.surfaces.ui import add_customer_panel
from tests.conftest import Served
from tests.surfaces.ui.helpers import form_token, page_csrf, seed_events, sign_in, totals


@pytest.fixture
async def browser(served: Served, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """An admin session on seeded data (meters, customers, events over the last day, two rejections)."""
    now = time.time()
    await client.post("/v1/meters", json={"key": "api_calls", "unit": "calls", "description": "API requests"})
    await client.post("/v1/customers", json={"id": "acme", "name": "Acme Corp", "traits": {"plan": "gold"}})
    r = await client.post(
        "/v1/events",
        json=[
            *seed_events(now),
            {"meter": "api_calls", "value": 1},
            {"meter": "api_calls", "customer": "x", "value": "lots"},
        ],
    )
    assert r.json()["counts"]["rejected"] == 2
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await sign_in(c, served.admin_key)).status_code == 303
        yield c


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each row of a table (header and data cells), tags stripped."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, f"no table {table_id}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in rows
    ]


async def test_overview_shows_totals_top_customers_and_rate(browser: httpx.AsyncClient) -> None:
    events = seed_events(time.time())
    r = await browser.get("/ui/")
    assert r.status_code == 200
    rows = cells(r.text, "meter-totals")
    assert rows[0] == ["Meter", "Aggregation", "Total", "Events"]
    expected = {"api_calls": (totals(events, "api_calls"), "calls"), "storage_gb": (totals(events, "storage_gb"), "")}
    for meter, aggregation, total, count in rows[1:]:
        value, unit = expected[meter]
        assert aggregation == "sum" and total == f"{int(value):,}{' ' + unit if unit else ''}"
        assert int(count.replace(",", "")) == sum(1 for e in events if e["meter"] == meter)
    top = cells(r.text, "top-customers")[1:]
    reference = sorted(
        ((c, totals(events, "api_calls", c)) for c in ("acme", "globex", "initech")), key=lambda kv: -kv[1]
    )
    assert [(name, float(v.replace(",", ""))) for _, name, v in top] == reference
    rate = float(re.search(r'<dd id="rate">([0-9.]+)</dd>', r.text).group(1))  # type: ignore[union-attr]
    assert rate == pytest.approx(len(events) / 300, rel=0.3)  # all accepted within the last ~5 minutes
    config = json.loads(unescape(re.search(r'id="usage-chart-config">(.*?)</script>', r.text).group(1)))  # type: ignore[union-attr]
    assert config["query"]["window"] == "hour" and config["query"]["meters"] == [] and config["query"]["dense"]


async def test_query_relay_answers_exactly_what_the_api_answers(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    csrf = page_csrf((await browser.get("/ui/")).text)
    now = time.time()
    body = {
        "meter": "api_calls",
        "from": now - 86400,
        "to": now + 1,
        "window": "hour",
        "time_zone": "Asia/Kolkata",
        "group_by": ["customer"],
        "filters": {"dimensions": [{"key": "region", "op": "eq", "value": "eu"}]},
        "dense": True,
        "take": {"limit": 2},
    }
    for accept in ("application/json", "text/csv"):
        ui = await browser.post("/ui/api/query", json=body, headers={"x-csrf-token": csrf, "accept": accept})
        api = await client.post("/v1/query", json=body, headers={"accept": accept})
        assert ui.status_code == api.status_code == 200
        assert ui.content == api.content and ui.headers["content-type"] == api.headers["content-type"]
    bad = {**body, "window": "fortnight"}
    ui = await browser.post("/ui/api/query", json=bad, headers={"x-csrf-token": csrf})
    api = await client.post("/v1/query", json=bad)
    assert ui.status_code == api.status_code == 422
    assert ui.json()["errors"][0]["path"] == api.json()["errors"][0]["path"] == "window"


async def test_meter_page_csv_download_matches_the_api(browser: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    params = {
        "range": "24h",
        "window": "hour",
        "tz": "Europe/Berlin",
        "group": "customer",
        "customers": "acme,globex",
        "f1_key": "region",
        "f1_op": "eq",
        "f1_values": "eu",
    }
    r = await browser.get(f"/ui/meters/api_calls?{urlencode(params)}")
    assert r.status_code == 200
    body = json.loads(unescape(re.search(r'<pre id="api-query">(.*?)</pre>', r.text, re.S).group(1)))  # type: ignore[union-attr]
    assert body["group_by"] == ["customer"] and body["time_zone"] == "Europe/Berlin"
    assert body["filters"] == {
        "customers": ["acme", "globex"],
        "dimensions": [{"key": "region", "op": "in", "values": ["eu"]}],
    }
    href = unescape(re.search(r'id="csv-download" href="([^"]+)"', r.text).group(1))  # type: ignore[union-attr]
    download = await browser.get(href)
    assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment;")
    api = await client.post("/v1/query", json=body, headers={"accept": "text/csv"})
    assert download.text == api.text and api.text.startswith("meter,start,end,customer,value\n")
    events = seed_events(time.time())
    reference = sum(
        e["value"]
        for e in events
        if e["meter"] == "api_calls" and e["customer"] in ("acme", "globex") and e["dimensions"]["region"] == "eu"
    )
    assert sum(float(line.rsplit(",", 1)[1]) for line in api.text.splitlines()[1:]) == reference


async def test_customer_page_shows_traits_usage_and_degrades_without_entitlements(
    served: Served, browser: httpx.AsyncClient
) -> None:
    r = await browser.get("/ui/customers/acme")
    assert r.status_code == 200
    assert cells(r.text, "traits") == [["Trait", "Value"], ["plan", "gold"]]
    usage = {row[0]: row[2] for row in cells(r.text, "customer-usage")[1:]}
    events = seed_events(time.time())
    assert usage == {
        "api_calls": f"{int(totals(events, 'api_calls', 'acme')):,} calls",
        "storage_gb": f"{int(totals(events, 'storage_gb', 'acme')):,}",
    }
    assert "No entitlements are recorded for this customer" in r.text
    assert "No registration tokens are recorded for this customer" in r.text
    r = await browser.get("/ui/customers/globex")
    assert "This id is not a registered customer" in r.text and "customer-usage" in r.text


async def test_customer_page_shows_entitlements_and_masked_tokens(served: Served, browser: httpx.AsyncClient) -> None:
    catalog = Catalog(served.store, served.meterd.clock)
    for tenant in ("default", "other"):
        await catalog.put_product(tenant, "prod-1" if tenant == "default" else "prod-2", None, [("users", None, None)])
    await catalog.grant("default", "acme", "prod-1", 1735689600000, 1798761600000, None)
    await catalog.grant("other", "acme", "prod-2", None, None, None)
    token, _ = await catalog.issue_token("default", "acme", "prod-1", 3_600_000)
    r = await browser.get("/ui/customers/acme")
    text = unescape(r.text)
    assert "prod-1" in text and "2027-01-01T00:00:00.000Z" in text and "prod-2" not in text  # other tenant
    assert token not in text and "No registration tokens are recorded" not in text
    assert "No entitlements are recorded" not in text


async def test_a_failing_panel_source_degrades_to_a_note(served: Served, browser: httpx.AsyncClient) -> None:
    class Broken:
        title = "Broken facts"

        async def __call__(self, store: Store, tenant: str, customer: str) -> Panel:
            raise KeyError("boom")

    add_customer_panel(served.app, Broken())
    r = await browser.get("/ui/customers/acme")
    assert r.status_code == 200
    assert "Broken facts" in r.text and "This information could not be loaded right now." in r.text


async def test_void_and_amend_through_forms_are_audited(browser: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    r = await browser.get("/ui/event", params={"surface": "native", "id": "call-1-acme"})
    token = form_token(r.text)
    form = {"csrf_token": token, "surface": "native", "id": "call-1-acme"}
    r = await browser.post("/ui/event/void", data={**form, "reason": " "})
    assert r.status_code == 422 and "Give a reason" in r.text
    r = await browser.post("/ui/event/amend", data={**form, "reason": "typo", "dimensions": "{nope"})
    assert r.status_code == 422 and "Dimensions must be a JSON object" in unescape(r.text)
    r = await browser.post("/ui/event/amend", data={**form, "reason": "typo", "value": "12.5"})
    assert r.status_code == 303
    replacement = (await client.get("/v1/events/call-1-acme")).json()["replaced_by"]
    assert r.headers["location"] == f"/ui/event?surface=native&id={replacement}&done=amend"
    page = await browser.get(r.headers["location"])
    assert "12.5" in page.text and "The event was amended" in page.text
    assert cells(page.text, "audit")[1][1:4] == ["amend", "call-1-acme", "typo"]
    r = await browser.post("/ui/event/void", data={**form, "reason": "again"})
    assert r.status_code == 409 and "already" in r.text
    r = await browser.post("/ui/event/void", data={**form, "id": "no-such-event", "reason": "x"})
    assert r.status_code == 404


async def test_read_only_sessions_cannot_correct_or_clear(
    served: Served, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    reader = (await client.post("/v1/keys", json={"name": "viewer", "scopes": ["read"]})).json()["key"]
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as viewer:
        await sign_in(viewer, reader)
        page = await viewer.get("/ui/event", params={"surface": "native", "id": "call-2-acme"})
        assert "this session's key is read-only" in page.text and "disabled" in page.text
        token = form_token(page.text)
        r = await viewer.post("/ui/event/void", data={"csrf_token": token, "id": "call-2-acme", "reason": "x"})
        assert r.status_code == 403 and "ingest scope" in r.text
        r = await viewer.post("/ui/ingest/clear", data={"csrf_token": token, "action": "selected", "ids": "1"})
        assert r.status_code == 403 and "admin key" in r.text
    assert (await client.get("/v1/events/call-2-acme")).json()["status"] == "live"
    assert len((await client.get("/v1/rejections")).json()["items"]) == 2


async def test_ingest_page_groups_rejections_and_clears_a_group(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    r = await browser.get("/ui/ingest")
    assert r.status_code == 200
    assert cells(r.text, "outcomes")[1] == ["native", f"{len(seed_events(time.time()))}", "0", "0", "2"]
    assert r.text.count('class="group"') == 2 and "customer: is required" in r.text
    config = json.loads(unescape(re.search(r'id="ingest-chart-config">(.*?)</script>', r.text).group(1)))  # type: ignore[union-attr]
    series = {s["label"]: sum(s["values"]) for s in config["points"]["series"]}
    assert series == {"native · accepted": len(seed_events(time.time())), "native · rejected": 2}
    assert len(config["points"]["x"]) == 24
    form = re.search(r'<form method="post" action="/ui/ingest/clear">(.*?)</form>', r.text, re.S).group(1)  # type: ignore[union-attr]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    r = await browser.post("/ui/ingest/clear", data={**{k: unescape(v) for k, v in fields.items()}, "action": "group"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/ingest?range=24h&cleared=1"
    assert len((await client.get("/v1/rejections")).json()["items"]) == 1
    page = await browser.get(r.headers["location"])
    assert "Cleared 1 rejected record." in page.text and page.text.count('class="group"') == 1


async def test_events_explorer_filters_and_pages(browser: httpx.AsyncClient) -> None:
    events = seed_events(time.time())
    acme = [e["id"] for e in events if e["customer"] == "acme"]
    seen: list[str] = []
    url: str | None = "/ui/events?customer=acme"
    while url:
        r = await browser.get(url)
        assert r.status_code == 200
        seen += re.findall(r'<tr class="live" data-id="([^"]+)"', r.text)
        found = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = "/ui/events" + unescape(found.group(1)) if found else None
    assert seen == acme
    r = await browser.get("/ui/events?from=yesterday&status=gone")
    assert r.status_code == 422 and "is not an RFC 3339 time" in unescape(r.text) and "must be live or voided" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/ui/meters/api_calls?range=custom&from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
        "/ui/meters/api_calls?range=forever&window=fortnight&tz=Nowhere/Land&top=0&group=%00",
        "/ui/meters/api_calls?range=custom&from=1970-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&window=minute",
        "/ui/meters/api_calls?customers=" + ",".join(["a b"] * 3) + "&f1_key=customer&f1_op=zz",
        "/ui/meters/nope",
        "/ui/customers/%FF%FE",
        "/ui/event?id=nope",
        "/ui/events?cursor=-1",
        "/ui/export.csv?meter=api_calls&tz=bad",
        "/ui/export.csv",
        "/ui/ingest?range=zz",
        "/ui/?tz=%00",
        "/ui/customers?find=a%2Fb",
        "/ui/customers?cursor=zzz",
    ],
)
async def test_bad_input_never_answers_500(browser: httpx.AsyncClient, path: str) -> None:
    r = await browser.get(path)
    assert r.status_code in (200, 303, 404, 422), r.text[:500]
    if r.status_code == 422:
        assert 'class="alert error"' in r.text or "field-error" in r.text


async def test_large_or_odd_posts_never_answer_500(browser: httpx.AsyncClient) -> None:
    csrf = page_csrf((await browser.get("/ui/")).text)
    r = await browser.post(
        "/ui/event/void", content=b"x" * 70_000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413
    r = await browser.post(
        "/ui/api/query", content=b"{", headers={"x-csrf-token": csrf, "content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await browser.post(
        "/ui/api/query", content=b"[]" * 600_000, headers={"x-csrf-token": csrf, "content-type": "application/json"}
    )
    assert r.status_code == 413
    token = form_token((await browser.get("/ui/ingest")).text)
    r = await browser.post("/ui/ingest/clear", data={"csrf_token": token, "action": "selected", "ids": "x"})
    assert r.status_code == 422
