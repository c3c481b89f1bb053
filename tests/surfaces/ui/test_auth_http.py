"""Dashboard sign-in over plain HTTP: cookie flags, CSRF on every form, no key in URLs or logs, sessions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.conftest import Served
from tests.surfaces.ui.helpers import form_token, page_csrf, sign_in

E1 = {"id": "e1", "meter": "calls", "customer": "acme", "time": "2024-01-01T00:00:00Z", "value": 2}


@pytest.fixture
async def browser(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client with no Authorization header, like a browser."""
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def new_key(client: httpx.AsyncClient, *scopes: str) -> str:
    r = await client.post("/v1/keys", json={"name": "-".join(scopes), "scopes": list(scopes)})
    assert r.status_code == 201
    return str(r.json()["key"])


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/ui/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2F"
    r = await browser.get("/ui/events?meter=calls")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2Fevents%3Fmeter%3Dcalls"
    r = await browser.post("/ui/api/query", json={"meter": "calls", "from": 0, "to": 1})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "sign in to use the dashboard"
    r = await browser.get("/ui/login")
    assert r.status_code == 200 and 'type="password"' in r.text and 'method="post"' in r.text


async def test_sign_in_sets_a_strict_httponly_cookie_that_is_not_the_key(
    served: Served, browser: httpx.AsyncClient
) -> None:
    shown = await browser.get("/ui/login")
    login_cookie = shown.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie and "Path=/ui" in login_cookie
    r = await browser.post(
        "/ui/login", data={"csrf_token": form_token(shown.text), "api_key": served.admin_key, "next": "/ui/events"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/events"
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("meterd_ui_session="))
    attributes = [a.strip() for a in session_cookie.split(";")]
    value = attributes[0].split("=", 1)[1]
    assert set(attributes[1:]) == {"HttpOnly", "Max-Age=43200", "Path=/ui", "SameSite=strict"}  # no Secure: http
    assert len(value) >= 40 and served.admin_key not in r.headers.get("set-cookie", "")
    assert served.admin_key not in str(r.headers)
    home = await browser.get("/ui/")
    assert home.status_code == 200 and "Sign out" in home.text
    assert served.admin_key not in home.text


@pytest.mark.parametrize(
    ("base", "secure_setting", "secure"),
    [
        ("https://testserver", "auto", True),
        ("http://testserver", "always", True),
        ("http://testserver", "auto", False),
    ],
)
async def test_secure_flag_over_https_or_when_required(
    tmp_path: Path, database_url: str, base: str, secure_setting: str, secure: bool
) -> None:
    settings = Settings(database_url=database_url, ui_cookie_secure=secure_setting)
    app = create_app(settings, store=create_store(settings.database_url))
    async with app.router.lifespan_context(app):
        minted = await app.state.meterd.bootstrap()
        assert minted is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
            shown = await c.get("/ui/login")
            token = form_token(shown.text)
            c.cookies.set("meterd_ui_login", token)  # a Secure cookie is not sent back over plain http
            r = await c.post("/ui/login", data={"csrf_token": token, "api_key": minted.secret})
            assert r.status_code == 303
            cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("meterd_ui_session="))
            assert ("; Secure" in cookie) is secure


async def test_plain_http_to_another_host_warns(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meterd.internal:8080") as c:
        assert "This connection is not encrypted" in (await c.get("/ui/login")).text
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        assert "This connection is not encrypted" not in (await c.get("/ui/login")).text
    async with httpx.AsyncClient(transport=transport, base_url="https://meterd.internal") as c:
        assert "This connection is not encrypted" not in (await c.get("/ui/login")).text


async def test_bad_keys_are_refused_and_never_echoed(
    served: Served, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    ingest_only = await new_key(client, "ingest")
    cases = [
        ("mk_abc_" + "x" * 32, 401, "That API key is not valid"),
        ("not-a-key", 401, "not valid"),
        (ingest_only, 403, "lacks the read scope"),
        ("   ", 422, "Enter an API key"),
    ]
    for secret, status, message in cases:
        r = await sign_in(browser, secret)
        assert r.status_code == status, secret
        assert message in r.text
        assert secret.strip() not in r.text or not secret.strip()
        assert not any(c.startswith("meterd_ui_session=") for c in r.headers.get_list("set-cookie"))
    assert (await browser.get("/ui/")).status_code == 303


async def test_sign_in_form_needs_its_own_token(served: Served, browser: httpx.AsyncClient) -> None:
    shown = await browser.get("/ui/login")
    token = form_token(shown.text)
    r = await browser.post("/ui/login", data={"api_key": served.admin_key})
    assert r.status_code == 403 and "sign-in form expired" in r.text
    r = await browser.post("/ui/login", data={"api_key": served.admin_key, "csrf_token": "forged"})
    assert r.status_code == 403
    r = await browser.post(
        "/ui/login", data={"api_key": served.admin_key, "csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 403
    browser.cookies.clear()
    r = await browser.post("/ui/login", data={"api_key": served.admin_key, "csrf_token": token})
    assert r.status_code == 403
    assert (await browser.get("/ui/")).status_code == 303


async def test_every_form_needs_the_session_csrf_token(
    served: Served, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await client.post("/v1/events", json=E1)
    await sign_in(browser, served.admin_key)
    detail = await browser.get("/ui/event", params={"surface": "native", "id": "e1"})
    token = form_token(detail.text)
    form = {"surface": "native", "id": "e1", "reason": "test traffic"}
    forged: list[tuple[dict[str, str], dict[str, str]]] = [
        (form, {}),
        ({**form, "csrf_token": "x" * 43}, {}),
        ({**form, "csrf_token": token}, {"origin": "https://evil.example"}),
        ({**form, "csrf_token": token}, {"sec-fetch-site": "cross-site"}),
        ({**form, "csrf_token": token}, {"origin": "null"}),
    ]
    for data, headers in forged:
        for path in ("/ui/event/void", "/ui/event/amend", "/ui/ingest/clear", "/ui/logout"):
            r = await browser.post(path, data={**data, "value": "5"}, headers=headers)
            assert r.status_code == 403, (path, data, headers)
    assert (await client.get("/v1/events/e1")).json()["status"] == "live"
    assert (await browser.get("/ui/")).status_code == 200  # still signed in
    r = await browser.post(
        "/ui/event/void",
        data={**form, "csrf_token": token},
        headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/event?surface=native&id=e1&done=void"
    assert (await client.get("/v1/events/e1")).json()["status"] == "voided"


async def test_script_calls_need_the_csrf_header(served: Served, browser: httpx.AsyncClient) -> None:
    await sign_in(browser, served.admin_key)
    csrf = page_csrf((await browser.get("/ui/")).text)
    body = {"meter": "calls", "from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z"}
    r = await browser.post("/ui/api/query", json=body)
    assert r.status_code == 403 and r.json()["type"] == "/problems/csrf"
    r = await browser.post("/ui/api/query", json=body, headers={"x-csrf-token": "wrong"})
    assert r.status_code == 403
    r = await browser.post(
        "/ui/api/query",
        content=b"meter=calls",
        headers={"x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    r = await browser.post("/ui/api/query", json=body, headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json()["rows"] == []


async def test_sign_out_ends_the_session(served: Served, browser: httpx.AsyncClient) -> None:
    await sign_in(browser, served.admin_key)
    old = browser.cookies.get("meterd_ui_session", path="/ui")
    assert old
    token = form_token((await browser.get("/ui/")).text)
    r = await browser.post("/ui/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert 'meterd_ui_session=""' in r.headers["set-cookie"]
    browser.cookies.set("meterd_ui_session", old, path="/ui")
    r = await browser.get("/ui/")
    assert r.status_code == 303  # the old token is gone from the store, not just from the browser


async def test_revoking_the_key_ends_its_sessions(
    served: Served, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    created = (await client.post("/v1/keys", json={"name": "viewer", "scopes": ["read"]})).json()
    assert (await sign_in(browser, created["key"])).status_code == 303
    assert (await browser.get("/ui/meters")).status_code == 200
    await client.delete(f"/v1/keys/{created['id']}")
    r = await browser.get("/ui/meters")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


async def test_sessions_expire(served: Served, browser: httpx.AsyncClient) -> None:
    await sign_in(browser, served.admin_key)
    assert (await browser.get("/ui/")).status_code == 200
    real = served.meterd.clock
    served.meterd.clock = lambda: real() + 12 * 3_600_000 + 1
    try:
        assert (await browser.get("/ui/")).status_code == 303
    finally:
        served.meterd.clock = real


async def test_key_never_in_urls_or_logs(
    served: Served, client: httpx.AsyncClient, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/v1/events", json=E1)
    reader = await new_key(client, "read")
    r = await browser.get("/ui/login", params={"api_key": reader, "key": reader})
    assert r.status_code == 200 and reader not in r.text
    assert (await browser.get("/ui/")).status_code == 303  # a key in a URL never signs anyone in
    responses = [await sign_in(browser, "mk_zzz_" + reader[7:]), await sign_in(browser, reader)]
    for path in ("/ui/", "/ui/meters/calls", "/ui/events", "/ui/customers/acme", "/ui/ingest", "/ui/nowhere"):
        responses.append(await browser.get(path))
    for response in responses:
        assert reader not in str(response.url) and reader not in response.headers.get("location", "")
        assert reader not in response.text
    server_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert reader not in server_logs and reader[7:] not in server_logs
    assert [c.name for c in browser.cookies.jar] == ["meterd_ui_session"]
    assert reader not in str(browser.cookies.get("meterd_ui_session"))


async def test_security_headers_on_pages(served: Served, browser: httpx.AsyncClient) -> None:
    for r in (await browser.get("/ui/login"), await browser.get("/ui/nowhere")):
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "same-origin" and r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text  # no inline script: CSP forbids it
