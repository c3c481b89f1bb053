"""Sign-in and sign-out: the API key is posted once in a form body, checked, and exchanged for a session."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from meterd.core.errors import Forbidden, Unauthenticated
from meterd.surfaces.ui.render import page
from meterd.surfaces.ui.security import (
    HEADERS,
    LOGIN_COOKIE,
    LOGIN_COOKIE_SECONDS,
    SESSION_COOKIE,
    check_login_token,
    checked_form,
    clear_cookie,
    is_secure,
    new_login_token,
    read_form,
    root,
    sessions,
    set_cookie,
)

router = APIRouter()


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:].split("]")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a path inside the dashboard, never another site."""
    base = root(request).rstrip("/")
    if target and target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = new_login_token()
    insecure = not is_secure(request) and not _loopback(request.headers.get("host", ""))
    context = {"login_token": token, "error": error, "insecure": insecure,
               "next": safe_next(request, request.query_params.get("next"))}
    response = page(request, "login.html", context, status=status)
    set_cookie(request, response, LOGIN_COOKIE, token, LOGIN_COOKIE_SECONDS)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    check_login_token(request, form)
    secret = form.get("api_key")
    target = form.get("next")
    if not isinstance(secret, str) or not secret.strip():
        return _login_page(request, 422, "Enter an API key.")
    try:
        token, _ = await sessions(request).open(secret.strip())
    except Unauthenticated:
        return _login_page(request, 401, "That API key is not valid (unknown, mistyped or revoked).")
    except Forbidden:
        return _login_page(request, 403, "That API key lacks the read scope; use a read or admin key.")
    response = RedirectResponse(safe_next(request, target if isinstance(target, str) else None), 303, HEADERS)
    set_cookie(request, response, SESSION_COOKIE, token, sessions(request).lifetime_ms // 1000)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the form carries its CSRF token); an already-ended session just goes to sign-in."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        session = await sessions(request).resolve(token)
    except Unauthenticated:
        session = None
    if session is not None:
        await checked_form(request, session)
        await sessions(request).end(token)
    response = RedirectResponse(f"{root(request).rstrip('/')}/login", 303, HEADERS)
    clear_cookie(request, response, SESSION_COOKIE)
    return response
