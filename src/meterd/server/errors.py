"""Map every error to RFC 9457 problem+json, in one place; nothing reaches a client as a bare 500."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from meterd.core.errors import MeterdError

log = logging.getLogger("meterd.server")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    detail: str,
    code: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"/problems/{code or title.lower().replace(' ', '_')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


async def on_meterd_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MeterdError)
    if exc.status >= 500:
        log.warning("service problem: %s", exc.message)
    return problem(exc.status, exc.message, exc.code, [e.as_dict() for e in exc.errors] or None)


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"path": _path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    return problem(422, "the request is invalid", "invalid_input", errors)


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), None, None, dict(exc.headers or {}))


async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    """Last resort: log the bug and answer 503 so clients retry instead of losing data."""
    log.exception("unexpected error", exc_info=exc)
    return problem(503, "the server hit an unexpected problem; retry later", "unexpected")


def install(app: FastAPI) -> None:
    app.add_exception_handler(MeterdError, on_meterd_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
