"""CloudEvents as usage: validation, identity (source + id) and translation into usage events under meter definitions.

A CloudEvent is kept once as an *archive* usage event (meter :data:`ARCHIVE_METER`, value 1, dimensions
``type`` and ``source``) whose id is a hash of (source, id), so a resend is a duplicate. Each meter definition
whose ``event_type`` matches turns it into one more usage event: the value read by JSONPath from ``data``
(1 for ``count``), the group-by values as string dimensions, the subject as the customer. Derived ids carry
the definition's version, so a changed definition derives afresh instead of clashing with the old events.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, Limits, check_name
from meterd.core.jsonpath import MISSING, JsonPath, check_path, parse_path
from meterd.core.models import Aggregation, Dimensions, Meter, UsageEvent
from meterd.core.timeutil import TimeParseError, parse_time

ARCHIVE_METER = "openmeter.events"
UNIQUE_DIMENSION = "$value"
SLUG_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
GROUP_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_GROUP_KEYS = frozenset({"subject", "customer", "customer_id"})
MAX_GROUP_BY = 16
MAX_FIELD = 1024
AGGREGATIONS = {
    "SUM": Aggregation.SUM,
    "COUNT": Aggregation.COUNT,
    "UNIQUE_COUNT": Aggregation.UNIQUE_COUNT,
    "AVG": Aggregation.AVG,
    "MIN": Aggregation.MIN,
    "MAX": Aggregation.MAX,
    "LATEST": Aggregation.LATEST,
}
AGGREGATION_NAMES = {value: name for name, value in AGGREGATIONS.items()}


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A validated CloudEvent; ``time`` is epoch ms (the receipt time when the event carried none)."""

    id: str
    source: str
    type: str
    subject: str
    time: int
    data: Any
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MeterDefinition:
    """How events of one type become usage of one meter."""

    slug: str
    event_type: str
    aggregation: Aggregation
    value_property: JsonPath | None
    group_by: tuple[tuple[str, JsonPath], ...]
    version: str
    event_from: int | None = None


def _text(data: Mapping[str, Any], key: str, errors: list[FieldError], required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        errors.append(FieldError(key, "is required and must be a non-empty string"))
        return ""
    if len(value) > MAX_FIELD:
        errors.append(FieldError(key, f"must be at most {MAX_FIELD} characters"))
    return value


def parse_cloudevent(data: object, *, now: int, limits: Limits = DEFAULT_LIMITS) -> CloudEvent:
    """Validate one CloudEvent 1.0 (JSON format); the subject must be a valid customer id."""
    if not isinstance(data, Mapping):
        raise InvalidInput("an event must be a JSON object", [FieldError("", "must be an object")])
    errors: list[FieldError] = []
    event_id = _text(data, "id", errors)
    source = _text(data, "source", errors)
    if _text(data, "specversion", errors) not in ("", "1.0"):
        errors.append(FieldError("specversion", "must be '1.0'"))
    event_type = _text(data, "type", errors)
    subject = check_name(data.get("subject"), "subject", errors, limits.max_name)
    content_type = data.get("datacontenttype")
    if content_type is not None and content_type != "application/json":
        errors.append(FieldError("datacontenttype", "must be 'application/json' when given"))
    payload = data.get("data")
    if payload is not None and not isinstance(payload, Mapping):
        errors.append(FieldError("data", "must be a JSON object when given"))
    time = now
    raw_time = data.get("time")
    if isinstance(raw_time, str):
        try:
            time = parse_time(raw_time, "time")
        except TimeParseError as exc:
            errors.append(exc.error)
    elif raw_time is not None:
        errors.append(FieldError("time", "must be an RFC 3339 time"))
    if errors:
        raise InvalidInput("the event is invalid", errors)
    return CloudEvent(event_id, source, event_type, subject, time, payload, dict(data))


def archive_id(source: str, event_id: str) -> str:
    """The identity of a CloudEvent: a hash of (source, id), so one source's ids never clash with another's."""
    text = json.dumps([source, event_id], separators=(",", ":"), ensure_ascii=False)
    return "ce-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def derived_id(archive: str, definition: MeterDefinition) -> str:
    return f"{archive}:{definition.slug}:{definition.version}"


def document_json(event: CloudEvent) -> str:
    return json.dumps(event.document, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def archive_event(event: CloudEvent, surface: str) -> UsageEvent:
    """The one usage event that keeps a CloudEvent (and decides duplicate or conflict for it)."""
    dims: Dimensions = {"type": event.type, "source": event.source}
    return UsageEvent(
        archive_id(event.source, event.id),
        ARCHIVE_METER,
        event.subject,
        event.time,
        1.0,
        dims,
        None,
        surface,
        document_json(event),
    )


def number_of(value: object) -> float | None:
    """A meter value: a finite number, or a string holding one (as OpenMeter reads JSON values)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def label_of(value: object) -> str | None:
    """A group-by value as the string it is compared as; objects, arrays and null have none."""
    if value is None or value is MISSING or isinstance(value, Mapping | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def derive(event: CloudEvent, definition: MeterDefinition, surface: str) -> UsageEvent | None:
    """The usage ``event`` means for ``definition``; None when it does not apply; InvalidInput when unusable."""
    if event.type != definition.event_type:
        return None
    if definition.event_from is not None and event.time < definition.event_from:
        return None
    data = event.data if event.data is not None else {}
    dims: Dimensions = {}
    for key, path in definition.group_by:
        label = label_of(path.extract(data))
        if label is not None:
            dims[key] = label[:MAX_FIELD]
    value = 1.0
    if definition.aggregation is not Aggregation.COUNT and definition.value_property is not None:
        found = definition.value_property.extract(data)
        where = f"meter {definition.slug!r}: {definition.value_property.text}"
        if definition.aggregation is Aggregation.UNIQUE_COUNT:
            label = label_of(found)
            if label is None:
                raise InvalidInput("the event has no value", [FieldError(where, "is missing or not a scalar")])
            dims[UNIQUE_DIMENSION] = label[:MAX_FIELD]
        else:
            number = number_of(found)
            if number is None:
                message = "is missing" if found is MISSING else "is not a number"
                raise InvalidInput("the event has no value", [FieldError(where, message)])
            value = number
    archive = archive_id(event.source, event.id)
    return UsageEvent(
        derived_id(archive, definition),
        definition.slug,
        event.subject,
        event.time,
        value,
        dims,
        None,
        surface,
        document_json(event),
    )


def check_definition(body: Mapping[str, Any], errors: list[FieldError]) -> None:
    """Check the OpenMeter meter fields of ``body`` (slug, eventType, aggregation, valueProperty, groupBy)."""
    slug = body.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 64:
        errors.append(FieldError("slug", "must be 1 to 64 lower-case letters and digits, words joined by '_'"))
    event_type = body.get("eventType")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_FIELD:
        errors.append(FieldError("eventType", "is required and must be a non-empty string"))
    aggregation = AGGREGATIONS.get(str(body.get("aggregation", "")).upper())
    if aggregation is None:
        errors.append(FieldError("aggregation", "must be one of " + ", ".join(AGGREGATIONS)))
    value_property = body.get("valueProperty")
    if value_property is not None:
        check_path(value_property, "valueProperty", errors)
    elif aggregation is not None and aggregation is not Aggregation.COUNT:
        errors.append(FieldError("valueProperty", "is required unless the aggregation is COUNT"))
    check_group_by(body.get("groupBy"), errors)


def check_group_by(group_by: object, errors: list[FieldError]) -> dict[str, JsonPath]:
    """A map of group-by key to JSONPath; keys are identifiers and not reserved."""
    if group_by is None:
        return {}
    if not isinstance(group_by, Mapping):
        errors.append(FieldError("groupBy", "must be an object of key to JSONPath"))
        return {}
    if len(group_by) > MAX_GROUP_BY:
        errors.append(FieldError("groupBy", f"may have at most {MAX_GROUP_BY} keys"))
    out: dict[str, JsonPath] = {}
    for key, text in group_by.items():
        where = f"groupBy.{key}"
        if not isinstance(key, str) or not GROUP_KEY_RE.match(key) or len(key) > 64:
            errors.append(FieldError(where, "keys must be identifiers (letters, digits, _)"))
        elif key in RESERVED_GROUP_KEYS:
            errors.append(FieldError(where, f"{key!r} is reserved"))
        path = check_path(text, where, errors)
        if path is not None and isinstance(key, str):
            out[key] = path
    return out


def definition_of(meter: Meter) -> MeterDefinition | None:
    """The CloudEvents definition kept in a meter's ``properties["openmeter"]``, if it has one."""
    spec = meter.properties.get("openmeter")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("eventType"), str):
        return None
    value_property = spec.get("valueProperty")
    group_by = spec.get("groupBy") or {}
    event_from = spec.get("eventFrom")
    return MeterDefinition(
        meter.key,
        spec["eventType"],
        meter.aggregation,
        parse_path(value_property) if isinstance(value_property, str) else None,
        tuple((key, parse_path(path)) for key, path in sorted(group_by.items())),
        str(spec.get("version", "")),
        event_from if isinstance(event_from, int) else None,
    )
