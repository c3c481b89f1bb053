"""Meter records (Amberflo's ingest shape) as usage events, with whole-record identity.

A meter record is ``{uniqueId?, meterApiName, customerId, meterValue, meterTimeInMillis, dimensions?}``.
Two records are the same only when every field is the same (uniqueId included): the event id is a hash of the
whole normalised record, so a resent batch is a duplicate and any differing attribute makes a new event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, Limits, canonical_content, check_dimensions, check_name, check_value
from meterd.core.models import UsageEvent
from meterd.core.timeutil import MAX_MS

FIELDS = frozenset({"uniqueId", "meterApiName", "customerId", "meterValue", "meterTimeInMillis", "dimensions"})


def record_id(event: UsageEvent, unique_id: str) -> str:
    """The id of a record: a hash of its unique id and its whole content."""
    text = repr((unique_id, canonical_content(event)))
    return "af-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _time(value: object, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(FieldError("meterTimeInMillis", "is required and must be epoch milliseconds"))
        return 0
    if not 0 < value <= MAX_MS or not float(value).is_integer():
        errors.append(FieldError("meterTimeInMillis", "must be a positive whole number of milliseconds"))
        return 0
    return int(value)


def _unique_id(value: object, errors: list[FieldError], limits: Limits) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limits.max_string:
        errors.append(FieldError("uniqueId", f"must be a string of at most {limits.max_string} characters"))
        return ""
    return value


def parse_meter_record(data: object, *, surface: str, raw: str, limits: Limits = DEFAULT_LIMITS) -> UsageEvent:
    """Validate one meter record into a :class:`UsageEvent` whose id is its whole-record hash."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a meter record must be a JSON object", [FieldError("", "must be an object")])
    errors: list[FieldError] = []
    unknown = sorted(str(key) for key in data.keys() - FIELDS)
    errors.extend(FieldError(key, "is not a known field") for key in unknown)
    meter = check_name(data.get("meterApiName"), "meterApiName", errors, limits.max_name)
    customer = check_name(data.get("customerId"), "customerId", errors, limits.max_name)
    value = check_value(data.get("meterValue"), "meterValue", errors)
    time = _time(data.get("meterTimeInMillis"), errors)
    dimensions = check_dimensions(data.get("dimensions"), "dimensions", errors, limits)
    unique_id = _unique_id(data.get("uniqueId"), errors, limits)
    if errors:
        raise InvalidInput("the meter record is invalid", errors)
    event = UsageEvent("", meter, customer, time, value, dimensions, None, surface, raw)
    return replace(event, id=record_id(event, unique_id))
