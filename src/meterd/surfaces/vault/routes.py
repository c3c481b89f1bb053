"""The ten Vault::Usage routes: decode the path, authenticate the Basic password, call the service, encode.

PUTs answer exactly 201 (a replay too) and GETs exactly 200, as the client insists; errors are
``{"id","message"}`` with 400 for bad input, 401, 403, 404, 409, 413 or 422 (callback refused).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from meterd.core.callbacks import check_callback_url
from meterd.core.errors import FieldError, InvalidInput, MeterdError, NotFound
from meterd.core.intervals import Claim, Span
from meterd.core.models import ApiKey, EventStatus, Scope
from meterd.server.auth import service
from meterd.server.body import read_limited
from meterd.server.settings import Settings
from meterd.service.callbacks import CallbackJobs
from meterd.service.intervals import IntervalRequest, raw_request, record_interval
from meterd.service.ownership import record_ownership
from meterd.service.usage import open_events, usage_for_owner
from meterd.storage.base import NewRejection
from meterd.surfaces.vault.wire import (
    ALL_TIME,
    MAX_DETAIL_BYTES,
    SURFACE,
    error_response,
    event_json,
    parse_basic,
    parse_detail,
    parse_id,
    parse_name,
    parse_time,
    parse_window,
)

DYNO_PREFIX = "platform:dyno:"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class VaultRoute(APIRoute):
    """Routes whose meterd errors answer in the vault format instead of problem+json."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except MeterdError as exc:
                return error_response(exc)

        return answer


async def authenticate(request: Request, scope: Scope) -> ApiKey:
    """The key whose secret is the Basic password."""
    return await service(request).authenticate(parse_basic(request.headers.get("authorization", "")), scope)


async def _keep(request: Request, key: ApiKey, raw: str, exc: InvalidInput, event_id: str) -> None:
    first = exc.errors[0] if exc.errors else None
    message = f"{first.path}: {first.message}" if first else exc.message
    errors = tuple(e.as_dict() for e in exc.errors)
    product = request.path_params.get("product")
    rejection = NewRejection(SURFACE, exc.code, message, raw, product, event_id[:128], errors)
    await service(request).reject(key.tenant, [rejection])


async def _record_body(request: Request, key: ApiKey) -> tuple[bytes, str]:
    """The body (within the detail limit) and the raw text kept for the request."""
    try:
        body = await read_limited(request, MAX_DETAIL_BYTES)
    except InvalidInput as exc:
        await _keep(request, key, raw_request("PUT", request.url.path, b""), exc, "")
        raise
    return body, raw_request("PUT", request.url.path, body)


async def put_event(
    request: Request, product: str, consumer: str, event_id: str, start: str | None, stop: str | None
) -> Response:
    key = await authenticate(request, Scope.INGEST)
    body, raw = await _record_body(request, key)
    try:
        interval = IntervalRequest(
            SURFACE,
            parse_id(event_id),
            parse_name(product, "product"),
            parse_name(consumer, "consumer_hid"),
            parse_time(start, "start_time") if start is not None else None,
            parse_time(stop, "stop_time") if stop is not None else None,
            parse_detail(body) if start is not None else None,
            raw,
        )
        interval.claim().check()
    except InvalidInput as exc:
        await _keep(request, key, raw, exc, event_id)
        raise
    outcome = await record_interval(service(request), key.tenant, interval)
    return JSONResponse({"id": interval.id, "outcome": outcome.value}, status_code=201)


async def put_ownership(
    request: Request, user: str, app: str, event_id: str, start: str | None, stop: str | None
) -> Response:
    key = await authenticate(request, Scope.INGEST)
    _, raw = await _record_body(request, key)
    try:
        ownership_id = parse_id(event_id)
        claim = Claim(
            (parse_name(user, "user_hid"), parse_name(app, "app_hid")),
            parse_time(start, "start_time") if start is not None else None,
            parse_time(stop, "stop_time") if stop is not None else None,
        )
    except InvalidInput as exc:
        await _keep(request, key, raw, exc, event_id)
        raise
    outcome = await record_ownership(service(request), key.tenant, SURFACE, ownership_id, claim, raw)
    return JSONResponse({"id": ownership_id, "outcome": outcome.value}, status_code=201)


def parse_exclude(request: Request) -> frozenset[str]:
    """``exclude=a,b`` (the client's form), repeated parameters allowed."""
    return frozenset(p.strip() for v in request.query_params.getlist("exclude") for p in v.split(",") if p.strip())


def parse_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0", ""):
        raise InvalidInput(f"{name} must be true or false", [FieldError(name, "must be true or false")])
    return value in ("true", "1")


async def _usage(
    request: Request, key: ApiKey, owner: str, window: Span, meter: str | None = None
) -> Callable[[], Coroutine[Any, Any, dict[str, Any]]]:
    """Check the query parameters now; the returned coroutine function computes ``{"events": [...]}``."""
    meterd, exclude, snapshot = service(request), parse_exclude(request), parse_flag(request, "snapshot")

    async def compute() -> dict[str, Any]:
        parts = await usage_for_owner(
            meterd.store, key.tenant, owner, window, surface=SURFACE, meter=meter, exclude=exclude, snapshot=snapshot
        )
        return {"events": [event_json(p.event, p.span) for p in parts]}

    return compute


def build_router(settings: Settings, jobs: CallbackJobs) -> APIRouter:
    """The vault routes; ``jobs`` runs ``callback_url`` requests in the background."""
    router = APIRouter(route_class=VaultRoute, tags=["vault"])

    @router.put("/products/{product}/usage/{consumer}/events/{event_id}/open/{start}", status_code=201)
    async def open_usage_event(request: Request, product: str, consumer: str, event_id: str, start: str) -> Response:
        return await put_event(request, product, consumer, event_id, start, None)

    @router.put("/products/{product}/usage/{consumer}/events/{event_id}/close/{stop}", status_code=201)
    async def close_usage_event(request: Request, product: str, consumer: str, event_id: str, stop: str) -> Response:
        return await put_event(request, product, consumer, event_id, None, stop)

    @router.put("/products/{product}/usage/{consumer}/events/{event_id}/open/{start}/close/{stop}", status_code=201)
    async def open_close_usage_event(
        request: Request, product: str, consumer: str, event_id: str, start: str, stop: str
    ) -> Response:
        return await put_event(request, product, consumer, event_id, start, stop)

    @router.put("/users/{user}/apps/{app}/open/{event_id}/{start}", status_code=201)
    async def open_app_ownership_event(request: Request, user: str, app: str, event_id: str, start: str) -> Response:
        return await put_ownership(request, user, app, event_id, start, None)

    @router.put("/users/{user}/apps/{app}/close/{event_id}/{stop}", status_code=201)
    async def close_app_ownership_event(request: Request, user: str, app: str, event_id: str, stop: str) -> Response:
        return await put_ownership(request, user, app, event_id, None, stop)

    @router.get("/usage_events/{event_id}")
    async def usage_for_event(request: Request, event_id: str) -> Response:
        key = await authenticate(request, Scope.READ)
        stored = await service(request).store.get_event(key.tenant, SURFACE, parse_id(event_id))
        if stored is None or stored.status is not EventStatus.LIVE:
            raise NotFound(f"no usage event {event_id!r}")
        return JSONResponse(event_json(stored.event))

    @router.get("/users/{user}/usage/product/{product}")
    async def usage_for_user_by_product(request: Request, user: str, product: str) -> Response:
        key = await authenticate(request, Scope.READ)
        owner, meter = parse_name(user, "user_hid"), parse_name(product, "product")
        return JSONResponse(await (await _usage(request, key, owner, ALL_TIME, meter))())

    @router.get("/users/{user}/usage/{start}/{stop}")
    async def usage_for_user(request: Request, user: str, start: str, stop: str) -> Response:
        key = await authenticate(request, Scope.READ)
        owner, window = parse_name(user, "user_hid"), parse_window(start, stop)
        compute = await _usage(request, key, owner, window)
        callback = request.query_params.get("callback_url", "")
        if not callback:
            return JSONResponse(await compute())
        url = check_callback_url(callback, settings.vault_callback_hosts)
        asked = {"user": owner, "start_time": start, "stop_time": stop, "query": str(request.query_params)}
        job_id = await jobs.start(service(request), key.tenant, SURFACE, url, asked, compute)
        return JSONResponse({"job_id": job_id})

    @router.get("/apps/{app}/ps/open")
    async def open_dynos_for_app(request: Request, app: str) -> Response:
        key = await authenticate(request, Scope.READ)
        events = await open_events(
            service(request).store, key.tenant, parse_name(app, "app_hid"), surface=SURFACE, meter_prefix=DYNO_PREFIX
        )
        return JSONResponse({"events": [event_json(e) for e in events]})

    return router
