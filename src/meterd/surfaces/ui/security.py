"""Dashboard security: the session cookie, CSRF checks on every form and script call, and response headers.

- The session cookie holds an opaque random token (never the API key): HttpOnly, SameSite=Strict, Path=<ui
  root>, and Secure whenever the request came over https (or always, with ``ui_cookie_secure=always``).
- Every state-changing request carries the session's CSRF token (a form field, or the ``X-CSRF-Token``
  header from the page's script) and must not come from another site (Origin / Sec-Fetch-Site).
- The sign-in form, before any session exists, uses a double-submit token: a random cookie and the same
  value in the form.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from meterd.core.errors import Forbidden, PayloadTooLarge
from meterd.service.ui_sessions import Session, Sessions, csrf_matches

SESSION_COOKIE = "meterd_ui_session"
LOGIN_COOKIE = "meterd_ui_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024
LOGIN_COOKIE_SECONDS = 3600

HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class CsrfRejected(Forbidden):
    """A state-changing request without a valid CSRF token, or from another site."""

    code = "csrf"


def root(request: Request) -> str:
    """Where the dashboard is mounted (``/ui``, behind any outer root path)."""
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def is_secure(request: Request) -> bool:
    """Whether cookies get the Secure flag: over https, or always when configured so."""
    settings = request.app.state.settings
    return bool(settings.ui_cookie_secure == "always" or request.url.scheme == "https")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root(request),
        secure=is_secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=root(request), secure=is_secure(request), httponly=True, samesite="strict")


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.sessions
    return found


async def current_session(request: Request) -> Session:
    """The signed-in session (Unauthenticated otherwise: pages redirect to sign-in)."""
    return await sessions(request).resolve(request.cookies.get(SESSION_COOKIE))


def check_same_site(request: Request) -> None:
    """Refuse state changes sent from another site (browsers say so in Origin and Sec-Fetch-Site)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRejected("cross-site requests are refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        raise CsrfRejected("cross-site requests are refused")


async def read_form(request: Request) -> FormData:
    """The posted form, refusing bodies over a small limit before parsing them."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a dashboard form may carry at most {MAX_FORM_BYTES} bytes")
    return await request.form()


async def checked_form(request: Request, session: Session) -> FormData:
    """The posted form of a signed-in page, after checking its CSRF token and origin."""
    check_same_site(request)
    form = await read_form(request)
    token = form.get(CSRF_FIELD)
    if not csrf_matches(session.csrf, token if isinstance(token, str) else None):
        raise CsrfRejected("the form's security token is missing or stale; reload the page and try again")
    return form


def check_script_call(request: Request, session: Session) -> None:
    """A call from the page's script must carry the session's CSRF token in a header."""
    check_same_site(request)
    if not csrf_matches(session.csrf, request.headers.get(CSRF_HEADER)):
        raise CsrfRejected(f"send the page's CSRF token in the {CSRF_HEADER} header")


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def check_login_token(request: Request, form: FormData) -> None:
    """The sign-in form's token must equal the cookie set when the form was shown."""
    check_same_site(request)
    token = form.get(CSRF_FIELD)
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not csrf_matches(expected, token if isinstance(token, str) else None):
        raise CsrfRejected("the sign-in form expired; reload the page and sign in again")
