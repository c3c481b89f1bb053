"""The Vault::Usage wire format: path times and ids, flat ``detail`` bodies, event JSON, Basic auth, errors."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

import msgspec
from starlette.responses import JSONResponse

from meterd.core.errors import FieldError, InvalidInput, MeterdError, Unauthenticated
from meterd.core.events import DEFAULT_LIMITS, check_dimensions, check_name
from meterd.core.intervals import Span
from meterd.core.models import Dimensions, UsageEvent
from meterd.core.timeutil import MAX_MS, format_seconds, to_ms

SURFACE = "vault"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_DETAIL_BYTES = 64 * 1024
_decoder = msgspec.json.Decoder()


def parse_time(text: str, name: str) -> int:
    """``YYYY-MM-DDTHH:MM:SSZ`` (what the client sends) as epoch ms; anything else is a 400."""
    if TIME_RE.match(text):
        try:
            ms = to_ms(datetime.fromisoformat(text[:-1] + "+00:00"))
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_MS:
            raise InvalidInput(f"{name} is not a valid time", [FieldError(name, f"{text[:40]!r} is no date")])
        return ms
    try:
        zoned = datetime.fromisoformat(text)
    except ValueError:
        zoned = None
    if zoned is not None:
        raise InvalidInput(f"{name} must be in UTC", [FieldError(name, "must be YYYY-MM-DDTHH:MM:SSZ (UTC)")])
    raise InvalidInput(f"{name} is malformed", [FieldError(name, "must be YYYY-MM-DDTHH:MM:SSZ")])


def parse_window(start: str, stop: str) -> Span:
    """The half-open window ``[start, stop)`` of a usage query."""
    window = Span(parse_time(start, "start_time"), parse_time(stop, "stop_time"))
    if window.stop is not None and window.stop <= window.start:
        raise InvalidInput("stop_time must be after start_time", [FieldError("stop_time", "is not after start")])
    return window


ALL_TIME = Span(0, MAX_MS)


def parse_id(text: str, name: str = "event_id") -> str:
    """A UUID, lower-cased so that one event has one id."""
    if not UUID_RE.match(text):
        raise InvalidInput(f"{name} must be a UUID", [FieldError(name, "must be a UUID")])
    return text.lower()


def parse_name(text: str, name: str) -> str:
    """A product or HID: letters, digits and ``_ . : - / @`` (raw in the path, as the client sends them)."""
    errors: list[FieldError] = []
    check_name(text, name, errors, DEFAULT_LIMITS.max_name)
    if errors:
        raise InvalidInput(f"{name} is invalid", errors)
    return text


def parse_detail(body: bytes) -> Dimensions:
    """The optional JSON body of an open: a flat object of scalars; nested values are a 400."""
    if not body.strip():
        return {}
    if len(body) > MAX_DETAIL_BYTES:
        raise InvalidInput("detail is too large", [FieldError("detail", f"over {MAX_DETAIL_BYTES} bytes")])
    try:
        detail = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput("detail is not valid JSON", [FieldError("detail", str(exc))]) from None
    if not isinstance(detail, dict):
        raise InvalidInput("detail must be a JSON object", [FieldError("detail", "must be an object")])
    errors: list[FieldError] = []
    flat = check_dimensions(detail, "detail", errors, DEFAULT_LIMITS)
    if errors:
        raise InvalidInput("detail must be a flat object of scalars", errors)
    return flat


def parse_basic(header: str) -> str:
    """The password of an ``Authorization: Basic`` header (the user name is free): a meterd API key."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthenticated("send a meterd API key as the password of HTTP Basic auth")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are malformed") from None
    _, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthenticated("send a meterd API key as the password of HTTP Basic auth")
    return password


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_seconds(ms)


def event_json(event: UsageEvent, span: Span | None = None) -> dict[str, Any]:
    """An event as the client reads it; ``span`` replaces its times (the part counted for an owner)."""
    start, stop = (span.start, span.stop) if span is not None else (event.time, event.end_time)
    return {
        "id": event.id,
        "product": event.meter,
        "consumer": event.customer,
        "start_time": _time(start),
        "stop_time": _time(stop),
        "detail": dict(event.dimensions),
    }


def error_response(exc: MeterdError) -> JSONResponse:
    """Errors as ``{"id","message"}`` (the client reads only the status); bad input is a 400 here."""
    status = 400 if exc.code == "invalid_input" else exc.status
    body: dict[str, Any] = {"id": exc.code, "message": exc.message}
    if exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    headers = {"www-authenticate": 'Basic realm="meterd"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)
