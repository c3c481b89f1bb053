"""The SDK's errors: the server's answers and transport failures, as branches of :class:`MeterdError`.

MeterdError                       (meterd.core.errors; InvalidInput is raised by meter() for bad input)
├── APIError                      the server answered with an error (status, problem details, field errors)
│   ├── AuthenticationError       401 (also a core Unauthenticated)
│   ├── PermissionDeniedError     403 (also a core Forbidden)
│   ├── NotFoundError             404 (also a core NotFound)
│   ├── ConflictError             409 (also a core Conflict)
│   ├── PayloadTooLargeError      413 (also a core PayloadTooLarge)
│   ├── UnsupportedMediaTypeError 415 (also a core UnsupportedMediaType)
│   ├── UnprocessableError        422 (also a core InvalidInput)
│   ├── RateLimitedError          429
│   ├── ServerError               5xx
│   └── EventRejected             one record of a batch was rejected or conflicted (sync mode)
├── TransportError                no answer: connection refused or reset, DNS, protocol error
│   └── TransportTimeout          the request timed out
└── ConfigurationError            the client cannot be built (no base URL, a bad option)
"""

from __future__ import annotations

from typing import Any

from meterd.core import errors as core
from meterd.core.errors import FieldError, MeterdError


class APIError(MeterdError):
    """The server answered with an error status; ``problem`` holds its RFC 9457 body (may be empty).

    ``code`` is the last part of the problem's ``type`` (``invalid_input``) when the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        problem: dict[str, Any] | None = None,
        errors: list[FieldError] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, errors)
        self.status = status
        self.problem: dict[str, Any] = dict(problem or {})
        self.retry_after = retry_after
        kind = self.problem.get("type")
        if isinstance(kind, str) and kind.strip("/"):
            self.code = kind.rstrip("/").rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r}, errors={self.errors!r})"


class AuthenticationError(APIError, core.Unauthenticated):
    """401: no key, or a key that matches no live key."""


class PermissionDeniedError(APIError, core.Forbidden):
    """403: the key lacks the scope the operation needs."""


class NotFoundError(APIError, core.NotFound):
    """404: the addressed object does not exist."""


class ConflictError(APIError, core.Conflict):
    """409: the object exists with other content, or the change clashes with its state."""


class PayloadTooLargeError(APIError, core.PayloadTooLarge):
    """413: the body or the batch is over the server's limit."""


class UnsupportedMediaTypeError(APIError, core.UnsupportedMediaType):
    """415: the server does not accept the body's content type or encoding."""


class UnprocessableError(APIError, core.InvalidInput):
    """422: the request's data is invalid; ``errors`` says which fields and why."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if any."""


class ServerError(APIError):
    """5xx: the server could not do its work (meterd answers 503 when its store fails)."""


class EventRejected(APIError):
    """A record of a batch came back ``rejected`` or ``conflict`` (raised in sync mode, given to on_error)."""

    def __init__(self, message: str, *, outcome: str, event_id: str | None, errors: list[FieldError]) -> None:
        super().__init__(message, status=409 if outcome == "conflict" else 422, errors=errors)
        self.outcome = outcome
        self.event_id = event_id


class TransportError(MeterdError):
    """No usable answer: the connection failed, broke, or the protocol was violated."""

    code = "transport_error"


class TransportTimeout(TransportError):
    """The request did not complete within its timeout."""

    code = "transport_timeout"


class ConfigurationError(MeterdError):
    """The client was given (or found in the environment) options it cannot work with."""

    code = "configuration_error"


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[APIError]:
    """The most specific :class:`APIError` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "EventRejected",
    "FieldError",
    "MeterdError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "TransportTimeout",
    "UnprocessableError",
    "UnsupportedMediaTypeError",
    "error_class",
]
