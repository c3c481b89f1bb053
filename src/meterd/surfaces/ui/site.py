"""The dashboard as a sub-application: its own HTML error pages, security headers, static assets and routes."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from meterd.core.errors import MeterdError, Unauthenticated
from meterd.server.errors import problem
from meterd.server.settings import Settings
from meterd.service import Meterd
from meterd.service.customer_panels import PanelSource
from meterd.service.ui_sessions import Sessions
from meterd.surfaces.ui import routes_api, routes_auth, routes_events, routes_ingest, routes_usage
from meterd.surfaces.ui.render import environment, page
from meterd.surfaces.ui.security import HEADERS, root

log = logging.getLogger("meterd.ui")
STATIC = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(f"{root(request).rstrip('/')}/api/")


def _error_page(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return problem(status, message, None, None, HEADERS)
    return page(request, "error.html", {"status": status, "message": message}, status=status)


async def on_meterd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MeterdError)
    if isinstance(exc, Unauthenticated) and not _wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{root(request).rstrip('/')}/login?next={quote(target, safe='')}", 303, HEADERS)
    if exc.status >= 500:
        log.warning("dashboard: service problem: %s", exc.message)
    if _wants_json(request):
        errors = [e.as_dict() for e in exc.errors] or None
        return problem(exc.status, exc.message, exc.code, errors, HEADERS)
    return _error_page(request, exc.status, exc.message)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
    return _error_page(request, exc.status_code, message)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _error_page(request, 422, "The request is invalid.")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("dashboard: unexpected error", exc_info=exc)
    return _error_page(request, 503, "The dashboard hit an unexpected problem; try again shortly.")


def create_site(meterd: Meterd, settings: Settings, panels: list[PanelSource]) -> FastAPI:
    """The dashboard app, to be mounted (at /ui) on the main app."""
    site = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    site.state.meterd = meterd
    site.state.settings = settings
    site.state.sessions = Sessions(meterd, settings.ui_session_hours)
    site.state.templates = environment()
    site.state.customer_panels = panels
    site.add_exception_handler(MeterdError, on_meterd_error)
    site.add_exception_handler(HTTPException, on_http_error)
    site.add_exception_handler(RequestValidationError, on_validation_error)
    site.add_exception_handler(Exception, on_unexpected)
    site.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (routes_auth, routes_usage, routes_ingest, routes_events, routes_api):
        site.include_router(module.router)
    return site
