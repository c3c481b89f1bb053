"""Building one usage record in the caller's thread: the server's validation rules, fast, plus its wire JSON.

The fast path accepts a record only when the same checks the server runs (``meterd.core.events``) pass;
anything unusual (a name not seen before, a bad value) goes through :func:`meterd.core.events.parse_event`
itself, so the SDK raises exactly the :class:`~meterd.core.errors.InvalidInput` the server would answer.
"""

from __future__ import annotations

import json
import random
import sys
import time as _time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, Limits, check_dimensions, check_name, parse_event
from meterd.core.models import Dimensions
from meterd.core.timeutil import TimeParseError, parse_time, to_ms

# id, meter, customer, time (epoch ms), value, dimensions or None, end time (epoch ms) or None
Record = tuple[str, str, str, int, float, Dimensions | None, int | None]
TimeInput = datetime | str | int | float | None
NAME_CACHE_SIZE = 10_000

_MAX_FLOAT = sys.float_info.max
_getrandbits = random.getrandbits
_time_ns = _time.time_ns


def new_id() -> str:
    """A random 128-bit event id as 32 hex digits (cheap: no uuid object is built)."""
    return "%032x" % _getrandbits(128)  # noqa: UP031 (measured: faster than format/f-string)


class RecordBuilder:
    """Validates and builds records; remembers names that passed so repeated meters/customers cost a lookup."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._names: dict[str, None] = {}

    def build(
        self,
        meter: str,
        value: float,
        customer: str,
        time: TimeInput = None,
        dimensions: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        end_time: TimeInput = None,
    ) -> Record:
        """A validated record; raises :class:`InvalidInput` with the server's field errors."""
        names = self._names
        if (
            type(meter) is str
            and meter in names
            and type(customer) is str
            and customer in names
            and (
                (type(value) is float and value - value == 0.0)
                or (type(value) is int and -_MAX_FLOAT <= value <= _MAX_FLOAT)
            )
            and (dimensions is None or type(dimensions) is dict)
        ):
            ms = _time_ns() // 1_000_000 if time is None else _ms_or_none(time)
            dims = None if not dimensions else _dims_or_none(dimensions, self.limits)
            end = None if end_time is None else _ms_or_none(end_time)
            ok_id = event_id is None or _name_ok(event_id, self.limits.max_id)
            if (
                ms is not None
                and (dims is not None or not dimensions)
                and (end_time is None or (end is not None and end >= ms))
                and ok_id
            ):
                return (event_id or new_id(), meter, customer, ms, value, dims, end)
        return self._checked(meter, value, customer, time, dimensions, event_id, end_time)

    def _checked(
        self,
        meter: object,
        value: object,
        customer: object,
        time: object,
        dimensions: object,
        event_id: object,
        end_time: object,
    ) -> Record:
        """The full server validation (``parse_event``); remembers the names when the record is valid."""
        now = _time_ns() // 1_000_000
        data: dict[str, object] = {"id": new_id() if event_id is None else event_id, "meter": meter}
        data.update(customer=customer, time=_as_wire_time(time), value=value, dimensions=dimensions)
        data["end_time"] = _as_wire_time(end_time)
        if type(value) is int and not _fits_float(value):
            raise InvalidInput("the event is invalid", [FieldError("value", "must be finite")])
        event = parse_event(data, now=now, limits=self.limits)
        if len(self._names) < NAME_CACHE_SIZE:
            self._names[event.meter] = None
            self._names[event.customer] = None
        raw = data["value"]
        number = raw if type(raw) is int else event.value
        return (event.id, event.meter, event.customer, event.time, number, event.dimensions or None, event.end_time)


def _fits_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _name_ok(name: object, limit: int) -> bool:
    errors: list[FieldError] = []
    check_name(name, "id", errors, limit)
    return not errors


def _dims_or_none(dimensions: Mapping[str, Any], limits: Limits) -> Dimensions | None:
    errors: list[FieldError] = []
    out = check_dimensions(dimensions, "dimensions", errors, limits)
    return None if errors else out


def _ms_or_none(value: object) -> int | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None
        value = to_ms(value)
        if value < 0:
            return None
        return value
    try:
        return parse_time(value)
    except TimeParseError:
        return None


def _as_wire_time(value: object) -> object:
    """A datetime as the RFC 3339 text the server would receive; anything else unchanged."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_prefixes: dict[int, str] = {}


def format_ms(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC with milliseconds (``2024-05-01T12:00:00.000Z``), cached per second."""
    seconds, millis = divmod(ms, 1000)
    prefix = _prefixes.get(seconds)
    if prefix is None:
        if len(_prefixes) > 4096:
            _prefixes.clear()
        prefix = _prefixes[seconds] = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
    return f"{prefix}.{millis:03d}Z"


def encode(record: Record) -> str:
    """The record's wire JSON. Names are restricted to JSON-safe characters, so only dimensions need dumps."""
    event_id, meter, customer, ms, value, dims, end = record
    text = f'{{"id":"{event_id}","meter":"{meter}","customer":"{customer}","time":"{format_ms(ms)}","value":{value!r}'
    if dims:
        text += ',"dimensions":' + encode_dimensions(dims)
    if end is not None:
        text += f',"end_time":"{format_ms(end)}"'
    return text + "}"


_escape = json.encoder.encode_basestring_ascii
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_dimensions(dims: Dimensions) -> str:
    """Validated dimensions as JSON, without building an encoder per call (the common scalar types inline)."""
    parts = []
    for key, value in dims.items():
        if type(value) is str:
            text = _escape(value)
        elif value is None:
            text = "null"
        elif type(value) is bool:
            text = "true" if value else "false"
        elif type(value) is int or type(value) is float:
            text = repr(value)
        else:  # an int or str subclass (an enum member...): let json decide
            return str(_dumps(dims))
        parts.append(f"{_escape(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def decode(text: str) -> dict[str, Any]:
    """A wire record back as a dict (for ``on_error`` and the spool's drain)."""
    data: dict[str, Any] = json.loads(text)
    return data
