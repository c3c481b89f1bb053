"""OpenMeter's error answers: problem+json as everywhere in meterd, but invalid input is 400 as OpenMeter answers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from meterd.core.errors import InvalidInput, MeterdError, PayloadTooLarge
from meterd.server.errors import problem


def error_response(exc: MeterdError) -> Response:
    status = 400 if isinstance(exc, InvalidInput) and not isinstance(exc, PayloadTooLarge) else exc.status
    return problem(status, exc.message, exc.code, [e.as_dict() for e in exc.errors] or None)


def _validation(exc: RequestValidationError) -> Response:
    errors = [
        {"path": ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path")), "message": e["msg"]}
        for e in exc.errors()
    ]
    return problem(400, "the request is invalid", "invalid_input", errors)


class OpenMeterRoute(APIRoute):
    """A route whose meterd errors become OpenMeter's problem answers (400 for invalid input)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except MeterdError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return _validation(exc)

        return answer
