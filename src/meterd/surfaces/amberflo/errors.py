"""Amberflo's error answers: JSON ``{"code", "message", "errors"}``; invalid input is 400 as Amberflo answers it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from meterd.core.errors import FieldError, InvalidInput, MeterdError, PayloadTooLarge


def error_response(exc: MeterdError) -> JSONResponse:
    """The JSON error of ``exc``; the Amberflo clients treat any status but 200 as an error."""
    status = 400 if isinstance(exc, InvalidInput) and not isinstance(exc, PayloadTooLarge) else exc.status
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    return JSONResponse(body, status_code=status)


def _from_validation(exc: RequestValidationError) -> InvalidInput:
    errors = [
        FieldError(".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body")), str(e.get("msg")))
        for e in exc.errors()
    ]
    return InvalidInput("the request is invalid", errors)


class AmberfloRoute(APIRoute):
    """A route whose meterd errors are answered in Amberflo's format instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except MeterdError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return error_response(_from_validation(exc))

        return answer
