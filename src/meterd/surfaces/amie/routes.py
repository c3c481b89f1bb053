"""AMIE wire routes: POST usage/, GET usage/failed, DELETE usage/failed/{ids}, GET usage/status; ``{"error"}``.

Status codes follow what amieclient can read: exactly 200 on success (any other 2xx crashes it), 400 with
``{"error"}`` for a message it should report, 401/403 for credentials, 413 for bodies over 1 MiB.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterd.core.errors import FieldError, InvalidInput, MeterdError, PayloadTooLarge, Unauthenticated
from meterd.core.models import Scope
from meterd.core.timeutil import TimeParseError, parse_time
from meterd.server.body import decode_json, read_body
from meterd.service.amie import AmieService

log = logging.getLogger("meterd.amie")
MAX_BODY = 1024 * 1024
_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


Endpoint = Callable[[Request], Awaitable[Response]]


def answers_errors(endpoint: Endpoint) -> Endpoint:
    """Every failure of an endpoint as ``{"error": ...}`` with the status amieclient understands."""

    @wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except MeterdError as exc:
            return meterd_error(exc)
        except Exception:
            log.exception("amie: unexpected error")
            return error(503, "the server hit an unexpected problem; retry later")

    return wrapper


def build_app(service: AmieService) -> Starlette:
    """The AMIE sub-app over ``service``."""

    async def authenticate(request: Request, scope: Scope) -> str:
        """The tenant of the XA-API-KEY, which XA-SITE must name."""
        secret = request.headers.get("xa-api-key", "").strip()
        site = request.headers.get("xa-site", "").strip()
        if not secret or not site:
            raise Unauthenticated("send the XA-API-KEY and XA-SITE headers")
        key = await service.meterd.authenticate(secret, scope)
        if site != key.tenant:
            raise Unauthenticated(f"the API key does not belong to site {site[:64]!r}")
        return key.tenant

    async def send(request: Request) -> Response:
        tenant = await authenticate(request, Scope.INGEST)
        data = await read_body(request, MAX_BODY)
        raw = data.decode("utf-8", "replace")
        try:
            message = decode_json(data)
        except InvalidInput as exc:
            await service.reject_message(tenant, raw, exc)
            raise
        result = await service.send(tenant, message, raw)
        failed = [f.as_wire() for f in result.failed]
        return json_response({"Message": result.message, "ValidationFailedRecords": failed})

    async def failed(request: Request) -> Response:
        tenant = await authenticate(request, Scope.READ)
        records = await service.failed(tenant)
        return json_response({"ValidationFailedRecords": [r.as_wire() for r in records]})

    async def clear(request: Request) -> Response:
        tenant = await authenticate(request, Scope.INGEST)
        ids = parse_ids(request.path_params["ids"])
        deleted, missing = await service.clear(tenant, ids)
        message = f"{len(deleted)} failed records cleared"
        return json_response({"Message": message, "Cleared": deleted, "NotFound": missing})

    async def status(request: Request) -> Response:
        tenant = await authenticate(request, Scope.READ)
        start = parse_iso(request.query_params.get("FromTime"), "FromTime")
        end = parse_iso(request.query_params.get("ToTime"), "ToTime")
        if start is not None and end is not None and end < start:
            raise InvalidInput("ToTime must not be before FromTime")
        return json_response(await service.status(tenant, start, end))

    routes = [
        Route("/usage/", answers_errors(send), methods=["POST"]),
        Route("/usage", answers_errors(send), methods=["POST"]),
        Route("/usage/failed", answers_errors(failed), methods=["GET"]),
        Route("/usage/failed/{ids}", answers_errors(clear), methods=["DELETE"]),
        Route("/usage/status", answers_errors(status), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: on_http_error})


def parse_ids(text: str) -> list[int]:
    """``17,18,19`` as ids; anything else is a 400."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise InvalidInput(f"failed record ids must be comma-separated numbers, not {text[:64]!r}")
    return [int(p) for p in parts]


def parse_iso(value: str | None, name: str) -> int | None:
    """A Python ``isoformat()`` time (naive means UTC; offsets and microseconds welcome) as epoch ms."""
    if value is None or not value.strip():
        return None
    candidates = [value]
    if " " in value.strip():  # a '+' of an offset that arrived unescaped and was decoded as a space
        head, _, tail = value.strip().rpartition(" ")
        candidates.append(f"{head}+{tail}")
    for candidate in candidates:
        try:
            return parse_time(candidate, name, require_zone=False)
        except TimeParseError as exc:
            problem = exc.error
    raise InvalidInput(f"{name} {problem.message}", [FieldError(name, problem.message)])


def meterd_error(exc: MeterdError) -> Response:
    """413 for size limits, 400 for invalid input (amieclient reports it), the error's own status otherwise."""
    if isinstance(exc, PayloadTooLarge):
        return error(413, exc.message)
    if isinstance(exc, InvalidInput):
        return error(400, exc.message)
    if exc.status >= 500:
        log.warning("amie: service problem: %s", exc.message)
    return error(exc.status, exc.message)


async def on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, str(exc.detail))
