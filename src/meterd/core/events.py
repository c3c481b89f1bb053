"""Validation of incoming usage records and the identity rules: fingerprints, derived ids, dedup outcomes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Dimensions, Outcome, UsageEvent
from meterd.core.timeutil import TimeParseError, parse_time

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/@]*$")
KNOWN_FIELDS = frozenset({"id", "meter", "customer", "time", "value", "dimensions", "end_time"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits applied to every record, on every surface."""

    max_id: int = 128
    max_name: int = 128
    max_dimensions: int = 32
    max_dimension_key: int = 64
    max_string: int = 1024


DEFAULT_LIMITS = Limits()


def check_name(value: object, path: str, errors: list[FieldError], limit: int) -> str:
    """A meter, customer or id: a non-empty string within ``limit`` characters of safe characters."""
    if not isinstance(value, str) or not value:
        errors.append(FieldError(path, "is required and must be a non-empty string"))
        return ""
    if len(value) > limit:
        errors.append(FieldError(path, f"must be at most {limit} characters"))
    elif not NAME_RE.match(value):
        errors.append(FieldError(path, "may use letters, digits and _ . : - / @, starting with a letter or digit"))
    return value


def check_dimensions(value: object, path: str, errors: list[FieldError], limits: Limits) -> Dimensions:
    """A flat object of string keys to scalars (string, number, boolean, null)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(FieldError(path, "must be an object of scalars"))
        return {}
    if len(value) > limits.max_dimensions:
        errors.append(FieldError(path, f"may have at most {limits.max_dimensions} keys"))
        return {}
    out: Dimensions = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not key or len(key) > limits.max_dimension_key:
            errors.append(FieldError(where, f"keys must be 1 to {limits.max_dimension_key} characters"))
        elif isinstance(item, str):
            if len(item) > limits.max_string:
                errors.append(FieldError(where, f"must be at most {limits.max_string} characters"))
            out[key] = item
        elif item is None or isinstance(item, bool | int) or (isinstance(item, float) and math.isfinite(item)):
            out[key] = item
        else:
            errors.append(FieldError(where, "must be a string, a finite number, a boolean or null"))
    return out


def check_value(value: object, path: str, errors: list[FieldError]) -> float:
    """A finite number that fits a double; booleans are not numbers."""
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(FieldError(path, "must be a number"))
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        errors.append(FieldError(path, "must be a finite number within the range of a double"))
        return 0.0
    return number


def check_time(value: object, path: str, errors: list[FieldError]) -> int:
    try:
        return parse_time(value, path)
    except TimeParseError as exc:
        errors.append(exc.error)
        return 0


def parse_event(data: object, *, now: int, surface: str = "native", limits: Limits = DEFAULT_LIMITS) -> UsageEvent:
    """Validate one native record (a JSON object) into a :class:`UsageEvent`.

    A missing ``time`` means ``now``; a missing ``value`` means 1; a missing ``id`` is derived from a hash of
    the whole record, so the same record sent twice is a duplicate.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("an event must be a JSON object", [FieldError("", "must be an object")])
    errors: list[FieldError] = []
    unknown = data.keys() - KNOWN_FIELDS
    if unknown:
        errors.extend(FieldError(str(key), "is not a known field") for key in sorted(map(str, unknown)))
    get = data.get
    meter = check_name(get("meter"), "meter", errors, limits.max_name)
    customer = check_name(get("customer"), "customer", errors, limits.max_name)
    raw_time = get("time")
    time = now if raw_time is None else check_time(raw_time, "time", errors)
    raw_value = get("value", 1)
    value = check_value(raw_value, "value", errors)
    raw_dims = get("dimensions")
    dimensions = {} if raw_dims is None or raw_dims == {} else check_dimensions(raw_dims, "dimensions", errors, limits)
    raw_end = get("end_time")
    end_time = None if raw_end is None else check_time(raw_end, "end_time", errors)
    if end_time is not None and not errors and end_time < time:
        errors.append(FieldError("end_time", "must not be before time"))
    raw_id = get("id")
    if raw_id is not None:
        check_name(raw_id, "id", errors, limits.max_id)
    if errors:
        raise InvalidInput("the event is invalid", errors)
    event_id = raw_id if isinstance(raw_id, str) else ""
    event = UsageEvent(event_id, meter, customer, time, value, dimensions, end_time, surface)
    return event if event_id else replace(event, id=derived_id(event))


def canonical_content(event: UsageEvent) -> str:
    """The content that decides duplicate versus conflict, as stable text (the repr of plain scalars)."""
    dims = sorted(event.dimensions.items()) if event.dimensions else ()
    return repr((event.meter, event.customer, event.time, event.value, dims, event.end_time))


def record_json(event: UsageEvent) -> str:
    """An event as a native JSON record (times in epoch ms), for keeping when no raw payload was given."""
    return json.dumps(
        {
            "id": event.id,
            "meter": event.meter,
            "customer": event.customer,
            "time_ms": event.time,
            "value": event.value,
            "dimensions": event.dimensions,
            "end_time_ms": event.end_time,
        },
        separators=(",", ":"),
    )


def fingerprint(event: UsageEvent) -> str:
    """A short stable hash of an event's content (not its id)."""
    return hashlib.blake2b(canonical_content(event).encode(), digest_size=12).hexdigest()


def derived_id(event: UsageEvent) -> str:
    """The id of a record sent without one: a hash of the whole record (full-record dedup)."""
    return "h-" + fingerprint(event)


def classify(existing_fingerprint: str, incoming: UsageEvent) -> Outcome:
    """Same id: same content is a harmless duplicate, other content a conflict."""
    return Outcome.DUPLICATE if existing_fingerprint == fingerprint(incoming) else Outcome.CONFLICT
