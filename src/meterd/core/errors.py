"""The one exception tree of meterd; surfaces map it to their wire formats.

MeterdError
├── InvalidInput            bad request data (422); carries field errors
│   └── PayloadTooLarge     body or batch over a limit (413)
├── UnsupportedMediaType    content type not understood (415)
├── Unauthenticated         no key or a bad key (401)
├── Forbidden               the key lacks the scope (403)
├── NotFound                no such object (404)
├── Conflict                the object exists with other content, or a state clash (409)
└── StorageError            the store failed (503); never a client's fault
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: a dotted path (``dimensions.region``) and a message."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class MeterdError(Exception):
    """Base of every error meterd raises on purpose; ``status`` and ``code`` say how to report it."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[FieldError] = list(errors or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, errors={self.errors!r})"


class InvalidInput(MeterdError):
    """The request's data is invalid; ``errors`` says which fields and why."""

    status, code = 422, "invalid_input"


class PayloadTooLarge(InvalidInput):
    """A body, batch or string is over a configured limit."""

    status, code = 413, "payload_too_large"


class UnsupportedMediaType(MeterdError):
    """The content type or encoding of the body is not accepted."""

    status, code = 415, "unsupported_media_type"


class Unauthenticated(MeterdError):
    """No credential, or one that matches no live key."""

    status, code = 401, "unauthenticated"


class Forbidden(MeterdError):
    """The credential is valid but lacks the needed scope."""

    status, code = 403, "forbidden"


class NotFound(MeterdError):
    """The addressed object does not exist in this tenant."""

    status, code = 404, "not_found"


class Conflict(MeterdError):
    """The object exists with other content, or the change clashes with its state."""

    status, code = 409, "conflict"


class StorageError(MeterdError):
    """The store could not do its work; the client may retry."""

    status, code = 503, "storage_unavailable"
