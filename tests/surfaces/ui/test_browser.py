"""The dashboard in real headless Chromium: sign in, every page with data, charts, CSV, a void changing totals.

Screenshots of every page at laptop and phone widths go to test-artifacts/ui/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.surfaces.ui.conftest import ARTIFACTS, UiServer
from tests.surfaces.ui.helpers import hourly_by_customer, totals

LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
CUSTOMERS = ("acme", "globex", "initech")


@pytest.fixture
def page(chromium: Any, ui_server: UiServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) whose every request URL is recorded."""
    context = chromium.new_context(viewport=LAPTOP, timezone_id="UTC", accept_downloads=True)
    context.on("request", lambda request: ui_server.requested.append(request.url))
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Any, server: UiServer, key: str, path: str = "/ui/") -> None:
    page.goto(server.url + path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def shoot(page: Any, name: str, chart: str | None = None) -> None:
    """Screenshots at laptop and phone width (re-rendered at each width)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.reload()
        if chart:
            page.wait_for_selector(f"#{chart}[data-state=ready]")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} scrolls sideways at {label} width"
    page.set_viewport_size(LAPTOP)
    page.reload()


def chart(page: Any, chart_id: str) -> dict[str, Any]:
    page.wait_for_selector(f"#{chart_id}[data-state=ready]")
    assert page.locator(f"#{chart_id} canvas").count() >= 1
    data: dict[str, Any] = page.evaluate(
        f"(() => {{ const c = window.meterdCharts['{chart_id}']; "
        "return {labels: c.labels, x: c.x, series: c.series, timeZone: c.timeZone}; })()"
    )
    legend = page.locator(f"#{chart_id} .u-legend").inner_text()
    for label in data["labels"]:
        assert label in legend
    return data


def total_on_overview(page: Any, server: UiServer, meter: str) -> float:
    page.goto(server.url + "/ui/")
    text = page.locator(f'#meter-totals tr[data-meter="{meter}"] td.total').inner_text()
    return float(text.split()[0].replace(",", ""))


def test_sign_in_then_overview_chart_totals_and_top_customers(page: Any, ui_server: UiServer) -> None:
    page.goto(ui_server.url + "/ui/")
    assert page.url.startswith(ui_server.url + "/ui/login")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login-laptop.png"))
    page.get_by_label("API key").fill("mk_nothere_" + "x" * 30)
    page.get_by_role("button", name="Sign in").click()
    assert "That API key is not valid" in page.locator("#login-error").inner_text()
    sign_in(page, ui_server, ui_server.admin_key)
    assert page.url == ui_server.url + "/ui/"
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly

    events = ui_server.events
    data = chart(page, "usage-chart")
    assert data["labels"] == ["api_calls", "storage_gb"] and data["timeZone"] == "UTC"
    assert len(data["x"]) == 25 and data["x"] == sorted(data["x"]) and (data["x"][1] - data["x"][0]) == 3600
    for label, series in zip(data["labels"], data["series"], strict=True):
        assert sum(v or 0 for v in series) == totals(events, label)
    by_hour = {x: v for x, v in zip(data["x"], data["series"][0], strict=True)}
    reference = hourly_by_customer(events, "api_calls", "UTC")
    for hour in by_hour:
        assert by_hour[hour] == sum(per.get(hour, 0) for per in reference.values())

    over = page.locator("#usage-chart .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    hovered = page.evaluate(
        "(() => { const c = window.meterdCharts['usage-chart']; const i = c.plot.cursor.idx; "
        "return {i: i, shown: [...document.querySelectorAll('#usage-chart .u-legend .u-value')]"
        ".map(e => e.textContent)}; })()"
    )
    assert hovered["i"] is not None
    expected = data["series"][0][hovered["i"]]
    assert hovered["shown"][1] == f"{int(expected):,}"  # the legend shows the hovered value of api_calls

    rows = page.locator("#meter-totals tbody tr")
    assert rows.count() == 3  # api_calls, storage_gb and the marketplace product's meter prod-1:seats
    assert total_on_overview(page, ui_server, "api_calls") == totals(events, "api_calls")
    top = page.locator("#top-customers tbody tr th").all_inner_texts()
    assert top == sorted(CUSTOMERS, key=lambda c: -totals(events, "api_calls", c))
    shoot(page, "overview", "usage-chart")


def test_meter_page_chart_by_window_in_a_time_zone_grouped_by_customer_and_csv(page: Any, ui_server: UiServer) -> None:
    sign_in(page, ui_server, ui_server.admin_key, "/ui/meters/api_calls")
    page.get_by_label("Window").select_option("hour")
    page.get_by_label("Time zone (IANA)").fill("Asia/Kolkata")
    page.get_by_label("Group by").fill("customer")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    data = chart(page, "meter-chart")
    events = ui_server.events
    assert data["timeZone"] == "Asia/Kolkata"
    assert data["labels"] == sorted(CUSTOMERS, key=lambda c: -totals(events, "api_calls", c))
    assert all(x % 3600 == 1800 for x in data["x"])  # Kolkata hours start at half past in UTC
    reference = hourly_by_customer(events, "api_calls", "Asia/Kolkata")
    for label, series in zip(data["labels"], data["series"], strict=True):
        drawn = {x: v for x, v in zip(data["x"], series, strict=True) if v}
        assert drawn == reference[label]
    range_totals = page.locator("#range-totals tbody tr").all_inner_texts()
    assert [line.split("\t")[0] for line in range_totals] == data["labels"]

    body = page.locator("#api-query").text_content()
    with page.expect_download() as info:
        page.locator("#csv-download").click()
    downloaded = Path(info.value.path()).read_text(encoding="utf-8")
    with ui_server.api() as api:
        answer = api.post("/v1/query", content=body, headers={"content-type": "application/json", "accept": "text/csv"})
    assert answer.status_code == 200 and downloaded == answer.text
    assert downloaded.splitlines()[0] == "meter,start,end,customer,value"
    assert sum(float(line.rsplit(",", 1)[1]) for line in downloaded.splitlines()[1:]) == totals(events, "api_calls")
    shoot(page, "meter", "meter-chart")

    page.locator("summary", has_text="Filters").click()
    page.get_by_label("Customers (comma-separated)").fill("acme")
    page.locator("#f1_key").fill("region")
    page.locator("#f1_values").fill("eu")
    page.get_by_role("button", name="Show").click()
    filtered = chart(page, "meter-chart")
    assert filtered["labels"] == ["acme"]
    eu = sum(
        e["value"]
        for e in events
        if e["meter"] == "api_calls" and e["customer"] == "acme" and e["dimensions"]["region"] == "eu"
    )
    assert sum(v or 0 for v in filtered["series"][0]) == eu


def test_customer_page_usage_traits_entitlements_and_tokens(page: Any, ui_server: UiServer) -> None:
    sign_in(page, ui_server, ui_server.admin_key, "/ui/customers/acme")
    assert page.locator("h1").inner_text() == "Acme Corp"
    assert page.locator("#traits tbody tr").all_inner_texts() == ["plan\tgold", "seats\t25"]
    data = chart(page, "customer-chart")
    assert data["labels"] == ["api_calls", "storage_gb"]
    for label, series in zip(data["labels"], data["series"], strict=True):
        assert sum(v or 0 for v in series) == totals(ui_server.events, label, "acme")
    entitlements = page.locator('section[data-panel="Entitlements"]').inner_text()
    assert "prod-1" in entitlements and "2027-01-01T00:00:00.000Z" in entitlements
    tokens = page.locator('section[data-panel="Registration tokens"]').inner_text()
    assert "prod-1" in tokens and "…" in tokens
    shoot(page, "customer", "customer-chart")
    page.goto(ui_server.url + "/ui/customers/initech")
    assert "not a registered customer" in page.content()
    assert "No entitlements are recorded for this customer" in page.content()
    chart(page, "customer-chart")
    shoot(page, "customer-unregistered", "customer-chart")
    page.goto(ui_server.url + "/ui/customers")
    assert page.locator("#customers tbody tr").count() == 2
    shoot(page, "customers")


def test_ingest_health_outcomes_chart_rejection_groups_and_clearing(page: Any, ui_server: UiServer) -> None:
    sign_in(page, ui_server, ui_server.admin_key, "/ui/ingest")
    data = chart(page, "ingest-chart")
    assert dict(zip(data["labels"], (sum(s) for s in data["series"]), strict=True)) == {
        "native · accepted": len(ui_server.events),
        "native · rejected": 3,
    }
    groups = page.locator("article.group")
    assert groups.count() == 2  # two bad values share one error; a missing customer is the other
    assert groups.first.get_attribute("data-count") == "2"
    assert "value: must be a number" in groups.first.inner_text() and '"lots"' in groups.first.inner_text()
    assert "customer: is required" in groups.nth(1).inner_text()
    shoot(page, "ingest", "ingest-chart")
    page.locator("article.group").first.get_by_role("button", name="Clear all").click()
    page.wait_for_load_state()
    assert "Cleared 2 rejected records." in page.locator("[role=status]").inner_text()
    assert page.locator("article.group").count() == 1
    page.locator("article.group").first.locator("input[type=checkbox]").first.check()
    page.locator("article.group").first.get_by_role("button", name="Clear selected").click()
    page.wait_for_load_state()
    assert page.locator("article.group").count() == 0 and page.locator("#no-rejections").is_visible()
    with ui_server.api() as api:
        assert api.get("/v1/rejections").json()["items"] == []


def test_events_explorer_void_and_amend_change_the_totals(page: Any, ui_server: UiServer) -> None:
    sign_in(page, ui_server, ui_server.admin_key)
    before = total_on_overview(page, ui_server, "api_calls")
    page.get_by_role("link", name="Events").click()
    page.get_by_label("Meter").fill("api_calls")
    page.get_by_label("Customer").fill("globex")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    ids = page.locator("#events tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    globex = [e for e in ui_server.events if e["customer"] == "globex" and e["meter"] == "api_calls"]
    assert ids == [e["id"] for e in globex]
    shoot(page, "events")
    target = globex[0]
    page.get_by_role("link", name=target["id"]).click()
    page.get_by_label("Reason (required)").first.fill("duplicate sent by a retry bug")
    page.get_by_role("button", name="Void event").click()
    page.wait_for_load_state()
    assert page.locator("#event-status").inner_text() == "voided"
    trail = page.locator("#audit tbody tr").all_inner_texts()
    assert len(trail) == 1 and "void" in trail[0] and "duplicate sent by a retry bug" in trail[0]
    shoot(page, "event-voided")
    after = total_on_overview(page, ui_server, "api_calls")
    assert after == before - target["value"]
    data = chart(page, "usage-chart")
    assert sum(v or 0 for v in data["series"][0]) == after

    second = globex[1]
    page.goto(ui_server.url + f"/ui/event?surface=native&id={second['id']}")
    page.get_by_label("New value").fill("1000")
    page.locator("#amend-reason").fill("meter misread")
    page.get_by_role("button", name="Amend event").click()
    page.wait_for_load_state()
    assert "The event was amended" in page.content()
    assert page.locator("#event-value").inner_text() == "1,000"
    trail = page.locator("#audit tbody tr").all_inner_texts()
    assert len(trail) == 1 and "amend" in trail[0] and "meter misread" in trail[0] and second["id"] in trail[0]
    assert total_on_overview(page, ui_server, "api_calls") == after - second["value"] + 1000
    page.goto(ui_server.url + "/ui/events?customer=globex&status=voided")
    assert sorted(page.locator("#events tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")) == sorted(
        [target["id"], second["id"]]
    )


def test_read_only_key_can_look_but_not_correct(page: Any, ui_server: UiServer) -> None:
    sign_in(page, ui_server, ui_server.read_key, "/ui/event?surface=native&id=call-2-acme")
    assert page.get_by_role("button", name="Void event").is_disabled()
    assert page.get_by_role("button", name="Amend event").is_disabled()
    assert "read-only" in page.content()
    with ui_server.api() as api:
        api.post("/v1/events", json={"meter": "api_calls", "customer": "z", "value": "none"})
    page.goto(ui_server.url + "/ui/ingest")
    assert page.get_by_role("button", name="Clear selected").first.is_disabled()
    assert "Clearing rejected records needs an admin key." in page.content()
    page.goto(ui_server.url + "/ui/meters")
    assert page.locator("#meters tbody tr").count() == 3  # with the marketplace product meter
    shoot(page, "meters")


CONTRAST = """(() => {
  const lum = (rgb) => { const c = rgb.match(/[0-9.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const bg = (el) => { while (el) { const b = getComputedStyle(el).backgroundColor;
    if (b && !b.startsWith('rgba(0, 0, 0, 0)') && b !== 'transparent') return b; el = el.parentElement; }
    return 'rgb(255, 255, 255)'; };
  const bad = [];
  document.querySelectorAll('p, a, th, td, label, button, dt, dd, h1, h2, h3, li, legend, summary').forEach(el => {
    if (!el.offsetParent || !el.textContent.trim() || el.disabled) return;
    const a = lum(getComputedStyle(el).color), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + ' ' + el.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2));
  });
  return bad;
})()"""

UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)"""


@pytest.mark.parametrize(
    "path",
    [
        "/ui/",
        "/ui/meters/api_calls?group=customer",
        "/ui/customers/acme",
        "/ui/ingest",
        "/ui/events",
        "/ui/event?surface=native&id=call-4-acme",
        "/ui/customers",
    ],
)
def test_pages_are_labelled_contrasted_and_keyboard_usable(page: Any, ui_server: UiServer, path: str) -> None:
    sign_in(page, ui_server, ui_server.admin_key, path)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(CONTRAST) == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    inside = page.evaluate("document.getElementById('main').contains(document.activeElement)")
    assert inside, "after skipping, the next Tab lands inside the main content"
    focus = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focus != "none", "the focused element shows a focus outline"


def test_every_request_stayed_on_meterd_and_no_key_reached_a_url_or_log(chromium: Any, ui_server: UiServer) -> None:
    assert ui_server.requested, "the browser tests recorded no request"
    for url in ui_server.requested:
        assert url.startswith(ui_server.url + "/ui"), f"the dashboard fetched {url} (no CDN allowed)"
        assert ui_server.admin_key not in url and ui_server.read_key not in url
    assert any("/ui/static/vendor/uplot/uPlot.iife.min.js" in url for url in ui_server.requested)
    assert any("/ui/api/query" in line for line in ui_server.logs.lines), "the access log was not captured"
    for line in ui_server.logs.lines:
        assert ui_server.admin_key not in line and ui_server.read_key not in line
