"""The /start registration flow end to end on a live server: page, form post, redirect with token, token in use."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import LiveServer

STATS = {"cluster_id": "clus1", "server_id": "serv1", "stats": [{"name": "engine", "values": {"points_write": 5}}]}


class FormParser(HTMLParser):
    """The first form of a page: its method, action and input fields (name → (type, value))."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.inputs: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.method, self.action = found.get("method", ""), found.get("action", "")
        if tag == "input":
            self.inputs[found["name"]] = (found.get("type", ""), found.get("value", ""))


@pytest.fixture
def browser(live_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False) as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def native(live_server: LiveServer) -> httpx.Client:
    headers = {"authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as c:
        yield c  # type: ignore[misc]


def fill_and_submit(browser: httpx.Client, start_url: str, organization: str, email: str) -> httpx.Response:
    """Load the page, read its form, fill the visible fields and post it back as a browser would."""
    page = browser.get(start_url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    form = FormParser()
    form.feed(page.text)
    assert (form.method, form.action) == ("post", "start")
    assert {k: t for k, (t, _) in form.inputs.items()} == {
        "cluster_id": "hidden",
        "product": "hidden",
        "redirect_url": "hidden",
        "organization": "text",
        "email": "email",
    }
    data = {name: value for name, (_, value) in form.inputs.items()}
    data.update(organization=organization, email=email)
    target = str(httpx.URL(str(page.url)).join(form.action))
    return browser.post(target, data=data)


def token_of(response: httpx.Response, redirect_base: str) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_base)
    (token,) = parse_qs(urlsplit(location).query)["token"]
    return token


def test_register_redirect_and_use_the_token(browser: httpx.Client, native: httpx.Client) -> None:
    start = "/start?cluster_id=clus1&product=influxdb&redirect_url=http%3A%2F%2Fapp.example%3A8888%2Fdone%3Fx%3D1"
    r = fill_and_submit(browser, start, "Acme Corp", "ops@acme.example")
    token = token_of(r, "http://app.example:8888/done?")
    assert parse_qs(urlsplit(r.headers["location"]).query)["x"] == ["1"]
    r = browser.post("/api/v1/stats/influxdb", json=STATS, headers={"X-Authorization": token})
    assert (r.status_code, r.json()) == (200, {"accepted": 1})
    customer = native.get("/v1/customers/acme-corp").json()
    assert (customer["name"], customer["email"], customer["traits"]["source"]) == (
        "Acme Corp",
        "ops@acme.example",
        "influx",
    )
    q = {"meter": "influxdb.engine.points_write", "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    rows = native.post("/v1/query", json={**q, "group_by": ["customer"]}).json()["rows"]
    assert [(row["group"], row["value"]) for row in rows] == [({"customer": "acme-corp"}, 5.0)]


def test_same_organization_finds_the_customer_and_tokens_revoke_one_by_one(
    browser: httpx.Client, native: httpx.Client
) -> None:
    start = "/start?cluster_id=c1&product=influxdb&redirect_url=http://localhost:9/cb"
    first = token_of(fill_and_submit(browser, start, "Acme Corp", "a@acme.example"), "http://localhost:9/cb?token=")
    again = "/start?cluster_id=c2&product=influxdb&redirect_url=http://localhost:9/cb"
    second = token_of(fill_and_submit(browser, again, "  ACME corp! ", "b@acme.example"), "http://localhost:9/cb?")
    assert first != second
    assert [c["id"] for c in native.get("/v1/customers").json()["items"]] == ["acme-corp"]
    assert native.get("/v1/customers/acme-corp").json()["email"] == "a@acme.example"  # found, not replaced
    tokens = native.get("/v1/influx/tokens").json()["items"]
    assert [(t["customer"], t["cluster_id"], t["product"], t["revoked_at"]) for t in tokens] == [
        ("acme-corp", "c1", "influxdb", None),
        ("acme-corp", "c2", "influxdb", None),
    ]
    assert all(first not in str(t) and "hash" not in t for t in tokens)
    first_id = next(t["id"] for t in tokens if t["cluster_id"] == "c1")
    r = native.delete(f"/v1/influx/tokens/{first_id}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = browser.post("/api/v1/stats/influxdb", json=STATS, headers={"X-Authorization": first})
    assert (r.status_code, r.json()) == (401, {"error": "the token has been revoked"})
    r = browser.post("/api/v1/stats/influxdb", json=STATS, headers={"X-Authorization": second})
    assert r.status_code == 200
    assert native.delete("/v1/influx/tokens/nope").status_code == 404


def test_no_redirect_url_shows_the_token(browser: httpx.Client) -> None:
    r = fill_and_submit(browser, "/start?cluster_id=c1&product=telegraf", "Solo", "me@solo.example")
    assert r.status_code == 200
    match = re.search(r'<code id="token">(it_[^<]+)</code>', r.text)
    assert match
    ok = browser.post("/api/v1/usage/telegraf", json=[{"values": {"n": 1}}], headers={"X-Authorization": match[1]})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "redirect",
    [
        "http://evil.example/cb",
        "http://app.example:9999/cb",  # allowed host, other port
        "http://app.example:8888@evil.example/cb",  # user-info trick
        "javascript:alert(1)",
        "ftp://app.example:8888/x",
    ],
)
def test_redirects_only_to_allowed_hosts(browser: httpx.Client, native: httpx.Client, redirect: str) -> None:
    params = {"cluster_id": "c1", "product": "influxdb", "redirect_url": redirect}
    r = browser.get("/start", params=params)
    assert r.status_code == 422
    assert "Registration is not possible" in r.text and "<form" not in r.text
    form = {**params, "organization": "Acme", "email": "a@acme.example"}
    r = browser.post("/start", data=form)
    assert r.status_code == 422 and "location" not in r.headers
    assert native.get("/v1/influx/tokens").json() == {"items": []}
    assert native.get("/v1/customers").json()["items"] == []


def test_missing_cluster_or_product(browser: httpx.Client) -> None:
    r = browser.get("/start", params={"product": "influxdb"})
    assert r.status_code == 422
    assert "You must supply both a ClusterID and a Product!" in r.text


def test_form_errors_keep_values_escaped(browser: httpx.Client, native: httpx.Client) -> None:
    form = {"cluster_id": "c1", "product": "influxdb", "organization": '<script>"x"</script>', "email": "nope"}
    r = browser.post("/start", data=form)
    assert r.status_code == 422
    assert "Email is not a valid address." in r.text
    assert "<script>" not in r.text and "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in r.text
    r = browser.post("/start", data={**form, "organization": " ", "email": "a@b.example"})
    assert r.status_code == 422 and "Organization name can not be blank." in r.text
    r = browser.post("/start", data={**form, "organization": "Anonymous", "email": "a@b.example"})
    assert r.status_code == 422 and "That organization name is reserved." in r.text
    r = browser.post("/start", content=b"organization=x", headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert native.get("/v1/customers").json()["items"] == []


def test_disabled_organization_cannot_register_or_send(browser: httpx.Client, native: httpx.Client) -> None:
    start = "/start?cluster_id=c1&product=influxdb&redirect_url=http://localhost/cb"
    token = token_of(fill_and_submit(browser, start, "Acme", "a@acme.example"), "http://localhost/cb?token=")
    assert native.put("/v1/customers/acme", json={"name": "Acme", "enabled": False}).status_code == 200
    r = browser.post("/api/v1/stats/influxdb", json=STATS, headers={"X-Authorization": token})
    assert (r.status_code, r.json()) == (401, {"error": "the token's organization is no longer active"})
    r = fill_and_submit(browser, start, "Acme", "a@acme.example")
    assert r.status_code == 403 and "disabled" in r.text
