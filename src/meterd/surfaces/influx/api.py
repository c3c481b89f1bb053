"""The usage-client endpoints: POST /api/v1/servers, /api/v1/stats/{product}, /api/v1/usage/{product}.

The Go client only notices 401, 404 and 500 (``{"error": msg}``) and 422 (``{"errors": {field: [msgs]}}``);
anything else, 400 and 403 included, reads as success. So every failure is mapped onto those four.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from meterd.core.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    MeterdError,
    NotFound,
    Unauthenticated,
    UnsupportedMediaType,
)
from meterd.core.influx import Batch
from meterd.server.body import decode_json, read_body
from meterd.service.influx import InfluxService
from meterd.service.influx_tokens import Caller

log = logging.getLogger("meterd.influx")
_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def field_errors(errors: list[FieldError], fallback: str) -> dict[str, list[str]]:
    """FieldErrors as the client's ``{"field": ["message", ...]}``."""
    grouped: dict[str, list[str]] = {}
    for e in errors:
        if e.message:
            grouped.setdefault(e.path or "body", []).append(e.message)
    return grouped or {"body": [fallback]}


def influx_error(exc: MeterdError) -> Response:
    """Map meterd's errors onto the four statuses the client understands."""
    if isinstance(exc, InvalidInput | UnsupportedMediaType):
        return json_response({"errors": field_errors(exc.errors, exc.message)}, 422)
    if isinstance(exc, Unauthenticated | Forbidden):
        return json_response({"error": exc.message}, 401)
    if isinstance(exc, NotFound):
        return json_response({"error": exc.message}, 404)
    if exc.status < 500:
        return json_response({"errors": {"body": [exc.message]}}, 422)
    log.warning("influx: service problem: %s", exc.message)
    return json_response({"error": exc.message}, 500)


class InfluxRoute(APIRoute):
    """A route whose failures are answered in the usage-client's error format, never as problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except MeterdError as exc:
                return influx_error(exc)
            except Exception:
                log.exception("influx: unexpected error")
                return json_response({"error": "the server hit an unexpected problem; retry later"}, 500)

        return route


def batch_response(saved_events: int, batch: Batch) -> Response:
    """200 when every record was stored; 422 naming the bad ones (the good ones are stored) otherwise."""
    if not batch.failures:
        return json_response({"accepted": saved_events}, 200)
    body = {
        "errors": field_errors(batch.errors, "invalid record"),
        "accepted": saved_events,
        "rejected": len(batch.failures),
    }
    return json_response(body, 422)


def build_router(service: InfluxService, max_body: int) -> APIRouter:
    """The client endpoints over ``service``."""
    router = APIRouter(prefix="/api/v1", route_class=InfluxRoute, tags=["influx"])

    async def read(request: Request) -> tuple[Caller, object, str]:
        caller = await service.caller(request.headers.get("x-authorization"))
        data = await read_body(request, max_body)
        raw = data.decode("utf-8", "replace")
        try:
            return caller, decode_json(data), raw
        except InvalidInput as exc:
            await service.reject(caller, raw, exc)
            raise

    @router.post("/servers", summary="Register (upsert) a server by cluster_id and server_id")
    async def servers(request: Request) -> Response:
        caller, data, raw = await read(request)
        server, created = await service.save_server(caller, data, raw)
        return json_response(server, 201 if created else 200)

    @router.post("/stats/{product}", summary="Product stats: each numeric value becomes a usage event")
    async def stats(product: str, request: Request) -> Response:
        caller, data, raw = await read(request)
        saved = await service.save_stats(caller, product, data, raw)
        return batch_response(saved.events, saved.batch)

    @router.post("/usage/{product}", summary="Anonymous usage snapshots (a bare JSON array)")
    async def usage(product: str, request: Request) -> Response:
        caller, data, raw = await read(request)
        saved = await service.save_usage(caller, product, data, raw)
        return batch_response(saved.events, saved.batch)

    return router
