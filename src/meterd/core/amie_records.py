"""AMIE usage records (Compute, Storage, Adjustment): field rules, validation and translation to usage events.

A record is validated field by field against its type's spec; every problem is reported at once. A valid
record becomes one usage event: charge as value, project as customer, the other fields as dimensions, and
an id derived from (type, Resource, LocalRecordID) so that a resend is a duplicate or a conflict.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Dimensions, Scalar, UsageEvent
from meterd.core.timeutil import TimeParseError, parse_time

SURFACE = "amie"
ADJUSTMENT_TYPES = ("credit", "refund", "storage-credit", "debit", "reservation", "storage-debit")
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_ID = 128
MAX_TEXT = 1024


class Kind(Enum):
    """How a field's value is checked and normalised."""

    ID = "id"  # non-empty string (or integer) of at most MAX_ID characters
    TEXT = "text"  # string of at most MAX_TEXT characters
    TIME = "time"  # ISO 8601 time; naive means UTC
    CHARGE = "charge"  # finite number (or numeric string), not negative
    SIGNED = "signed"  # finite number (or numeric string), any sign
    AMOUNT = "amount"  # finite number, not negative
    COUNT = "count"  # whole number, not negative
    POSITIVE = "positive"  # whole number, at least 1
    ADJUSTMENT = "adjustment"  # one of ADJUSTMENT_TYPES, any case
    PARENT = "parent"  # an id, or amieclient's 1-element list ([null] means absent)


@dataclass(frozen=True, slots=True)
class Field:
    """One wire field: its name, the dimension it becomes (None: it is used otherwise), its kind."""

    wire: str
    dimension: str | None
    kind: Kind
    required: bool = False


@dataclass(frozen=True, slots=True)
class RecordType:
    """The spec of one usage type: its fields, its Attributes and which field gives the event time."""

    name: str
    meter: str
    time_field: str
    fields: tuple[Field, ...]
    attributes: tuple[Field, ...]
    end_field: str | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.wire for f in self.fields if f.required)

    def known_fields(self) -> frozenset[str]:
        return _KNOWN[(self.name, "fields")]

    def known_attributes(self) -> frozenset[str]:
        return _KNOWN[(self.name, "attributes")]


_COMMON = (
    Field("Username", "user", Kind.ID, True),
    Field("LocalProjectID", "project", Kind.ID, True),
    Field("LocalRecordID", "local_record_id", Kind.ID, True),
    Field("Resource", "resource", Kind.ID, True),
    Field("LocalReference", "local_reference", Kind.TEXT),
)

COMPUTE = RecordType(
    "Compute",
    "amie.compute",
    "StartTime",
    (
        *_COMMON,
        Field("SubmitTime", "submit_time", Kind.TIME, True),
        Field("StartTime", None, Kind.TIME, True),
        Field("EndTime", None, Kind.TIME, True),
        Field("Charge", None, Kind.CHARGE, True),
        Field("ParentRecordID", "parent_record_id", Kind.PARENT),
    ),
    (
        Field("NodeCount", "node_count", Kind.POSITIVE, True),
        Field("CpuCoreCount", "cpu_core_count", Kind.POSITIVE),
        Field("JobName", "job_name", Kind.TEXT),
        Field("Memory", "memory", Kind.AMOUNT),
        Field("Queue", "queue", Kind.TEXT),
    ),
    end_field="EndTime",
)

STORAGE = RecordType(
    "Storage",
    "amie.storage",
    "CollectionTime",
    (*_COMMON, Field("CollectionTime", None, Kind.TIME, True), Field("Charge", None, Kind.CHARGE, True)),
    (
        Field("BytesRead", "bytes_read", Kind.COUNT),
        Field("BytesStored", "bytes_stored", Kind.COUNT),
        Field("BytesWritten", "bytes_written", Kind.COUNT),
        Field("CollectionInterval", "collection_interval", Kind.POSITIVE),
        Field("FileCount", "file_count", Kind.COUNT),
        Field("FilesRead", "files_read", Kind.COUNT),
        Field("FilesWritten", "files_written", Kind.COUNT),
        Field("MediaType", "media_type", Kind.TEXT),
        Field("SystemCopies", "system_copies", Kind.COUNT),
        Field("UserCopies", "user_copies", Kind.COUNT),
    ),
)

ADJUSTMENT = RecordType(
    "Adjustment",
    "amie.adjustment",
    "StartTime",
    (
        *_COMMON,
        Field("AdjustmentType", "adjustment_type", Kind.ADJUSTMENT, True),
        Field("StartTime", None, Kind.TIME, True),
        Field("Charge", None, Kind.SIGNED, True),
        Field("Comment", "comment", Kind.TEXT),
    ),
    (),
)

TYPES: dict[str, RecordType] = {t.name: t for t in (COMPUTE, STORAGE, ADJUSTMENT)}
_KNOWN: dict[tuple[str, str], frozenset[str]] = {}
for _t in TYPES.values():
    _KNOWN[(_t.name, "fields")] = frozenset({f.wire for f in _t.fields} | {"Attributes", "UsageType"})
    _KNOWN[(_t.name, "attributes")] = frozenset(f.wire for f in _t.attributes)
METERS: tuple[str, ...] = tuple(t.meter for t in TYPES.values())


def record_type(value: object) -> RecordType:
    """The spec named by a message's ``UsageType`` (any case); InvalidInput when there is none."""
    if isinstance(value, str):
        found = TYPES.get(value.strip().capitalize())
        if found is not None:
            return found
    names = ", ".join(TYPES)
    raise InvalidInput(f"UsageType must be one of {names}, not {str(value)[:64]!r}", [FieldError("UsageType", "")])


@dataclass(frozen=True, slots=True)
class AmieRecord:
    """A valid record, normalised: what the usage event is built from."""

    type: RecordType
    resource: str
    local_record_id: str
    project: str
    charge: float
    time: int
    end_time: int | None
    dimensions: Dimensions


def event_id(type_: RecordType, resource: str, local_record_id: str) -> str:
    """The event id of (type, Resource, LocalRecordID): the identity that makes resends idempotent."""
    digest = hashlib.blake2b(f"{resource}\x1f{local_record_id}".encode(), digest_size=12).hexdigest()
    return f"{type_.name.lower()}-{digest}"


def to_event(record: AmieRecord, raw: str) -> UsageEvent:
    """The usage event of a valid record; ``raw`` is the record as sent."""
    return UsageEvent(
        event_id(record.type, record.resource, record.local_record_id),
        record.type.meter,
        record.project,
        record.time,
        record.charge,
        record.dimensions,
        record.end_time,
        SURFACE,
        raw,
    )


def validate(type_: RecordType, data: object) -> AmieRecord:
    """Check one record of ``type_``; InvalidInput lists every field problem."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a record must be a JSON object", [FieldError("", "a record must be a JSON object")])
    errors: list[FieldError] = []
    values: dict[str, Scalar] = {}
    known = type_.known_fields()
    errors += [FieldError(str(k), f"is not a field of a {type_.name} record") for k in data if k not in known]
    usage_type = data.get("UsageType")
    if usage_type is not None and (not isinstance(usage_type, str) or usage_type.capitalize() != type_.name):
        errors.append(FieldError("UsageType", f"must be {type_.name}, the type of the message"))
    for spec in type_.fields:
        _check_field(spec, data.get(spec.wire), spec.wire, errors, values)
    _check_attributes(type_, data.get("Attributes"), errors, values)
    start = values.get(type_.time_field)
    end = values.get(type_.end_field) if type_.end_field else None
    if isinstance(start, int) and isinstance(end, int) and end < start:
        errors.append(FieldError(type_.end_field or "", f"must not be before {type_.time_field}"))
    if errors:
        raise InvalidInput("; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in errors), errors)
    return _build(type_, values)


def _check_attributes(
    type_: RecordType, attributes: object, errors: list[FieldError], values: dict[str, Scalar]
) -> None:
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        errors.append(FieldError("Attributes", "must be an object"))
        return
    known = type_.known_attributes()
    for name in attributes:
        if name not in known:
            errors.append(FieldError(f"Attributes.{name}", f"is not an attribute of a {type_.name} record"))
    for spec in type_.attributes:
        _check_field(spec, attributes.get(spec.wire), f"Attributes.{spec.wire}", errors, values)


def _build(type_: RecordType, values: dict[str, Scalar]) -> AmieRecord:
    dimensions: Dimensions = {}
    for spec in (*type_.fields, *type_.attributes):
        value = values.get(spec.wire)
        if spec.dimension is None or value is None:
            continue
        dimensions[spec.dimension] = _iso(value) if spec.kind is Kind.TIME and isinstance(value, int) else value
    end = values.get(type_.end_field) if type_.end_field else None
    time, charge = values[type_.time_field], values["Charge"]
    assert isinstance(time, int) and isinstance(charge, float)
    return AmieRecord(
        type_,
        str(values["Resource"]),
        str(values["LocalRecordID"]),
        str(values["LocalProjectID"]),
        charge,
        time,
        end if isinstance(end, int) else None,
        dimensions,
    )


def _iso(ms: int) -> str:
    """Epoch ms as RFC 3339 with milliseconds and Z (what ``format_ms`` gives, faster)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _check_field(spec: Field, value: object, path: str, errors: list[FieldError], out: dict[str, Scalar]) -> None:
    if spec.kind is Kind.PARENT:
        value = _unwrap_parent(value, path, errors)
    if value is None or (isinstance(value, str) and not value.strip() and spec.kind is not Kind.TEXT):
        if spec.required:
            errors.append(FieldError(path, "is required"))
        return
    try:
        out[spec.wire] = _normalise(spec.kind, value, path)
    except _Bad as bad:
        errors.append(FieldError(path, str(bad)))


def _unwrap_parent(value: object, path: str, errors: list[FieldError]) -> object:
    """amieclient sends ParentRecordID as a 1-element list (a stray tuple): unwrap it; [null] is absent."""
    if isinstance(value, list):
        if len(value) != 1:
            errors.append(FieldError(path, "must be an id, or a list holding one id"))
            return None
        return value[0]
    return value


class _Bad(ValueError):
    """A value does not fit its kind; the message says why."""


def _normalise(kind: Kind, value: object, path: str) -> Scalar:
    if kind in (Kind.ID, Kind.PARENT):
        return _text(value, MAX_ID)
    if kind is Kind.TEXT:
        return _text(value, MAX_TEXT)
    if kind is Kind.TIME:
        return _time(value, path)
    if kind is Kind.ADJUSTMENT:
        lowered = value.strip().lower() if isinstance(value, str) else None
        if lowered not in ADJUSTMENT_TYPES:
            raise _Bad(f"must be one of {', '.join(ADJUSTMENT_TYPES)}")
        return lowered
    number = _number(value)
    if kind is Kind.SIGNED:
        return number
    if number < 0:
        raise _Bad("must not be negative")
    if kind in (Kind.CHARGE, Kind.AMOUNT):
        return number
    if not number.is_integer():
        raise _Bad("must be a whole number")
    if kind is Kind.POSITIVE and number < 1:
        raise _Bad("must be at least 1")
    return int(number)


def _text(value: object, limit: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad("must be a string")
    text = str(value)
    if len(text) > limit:
        raise _Bad(f"must be at most {limit} characters")
    return text


def _time(value: object, path: str) -> int:
    if not isinstance(value, str):
        raise _Bad("must be an ISO 8601 time such as 2024-01-01T00:00:00Z")
    try:
        return parse_time(value, path, require_zone=False)
    except TimeParseError as exc:
        raise _Bad(exc.error.message) from None


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise _Bad("must be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and NUMBER_RE.match(value.strip()):
        number = float(value.strip())
    else:
        raise _Bad("must be a number")
    if not math.isfinite(number):
        raise _Bad("must be a finite number")
    return number


def as_wire(type_: RecordType, raw: Any) -> dict[str, Any]:
    """A kept record as amieclient can parse it: a flat dict with ``UsageType``, every required field present
    (missing ones as null) and, for Compute, an ``Attributes`` object."""
    body: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {"Record": raw}
    body["UsageType"] = type_.name
    for name in type_.required:
        body.setdefault(name, None)
    if type_.attributes and not isinstance(body.get("Attributes"), Mapping):
        body["Attributes"] = {}
    return body
