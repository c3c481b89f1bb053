"""AMIE failed records and usage status: how kept rejections read back as records, and the per-resource report.

A failed record is a kept rejection of the ``amie`` surface whose raw payload is the record as sent plus its
``UsageType``. Status folds loaded totals (per resource) and failed records into amieclient's shape, errors
grouped by (message, usage type) because the client cannot parse a group of mixed types. A status range
selects records by usage time (StartTime, or CollectionTime for Storage); a failed record whose time is
missing or invalid counts at the time it was received.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meterd.core.amie_records import TYPES, RecordType, as_wire
from meterd.core.timeutil import TimeParseError, parse_time

CONFLICT = "conflict"
MESSAGE_LEVEL = "bad_message"
TOTAL_DIGITS = 6


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A failed record as AMIE shows it: id, type, the record as kept (see ``kept_raw``), the error, when received."""

    id: int | None
    type: RecordType
    record: dict[str, Any]
    error: str
    received_at: int

    @property
    def time(self) -> int:
        """The record's usage time (StartTime or CollectionTime) when valid, else the time it was received."""
        try:
            return parse_time(self.record.get(self.type.time_field), self.type.time_field, require_zone=False)
        except TimeParseError:
            return self.received_at

    @property
    def resource(self) -> str:
        value = self.record.get("Resource")
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""

    def as_wire(self) -> dict[str, Any]:
        body = {**as_wire(self.type, self.record), "Error": self.error}
        if self.id is not None:
            body["FailedRecordID"] = self.id
        return body


def kept_raw(type_: RecordType, record: object) -> str:
    """The raw payload kept for a record: the record as sent with its message's ``UsageType`` (a record that
    is not an object is kept under ``Record``)."""
    body = {**record} if isinstance(record, Mapping) else {"Record": record}
    body["UsageType"] = type_.name
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=repr)


def read_failed(rejection_id: int, code: str, message: str, raw: str, received_at: int) -> FailedRecord | None:
    """A kept amie rejection as a failed record; None for whole-message rejections (they are not records)."""
    if code == MESSAGE_LEVEL:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    type_ = TYPES.get(body.get("UsageType", "")) if isinstance(body, dict) else None
    if type_ is None or not isinstance(body, dict):
        return None
    if code == CONFLICT:
        message = conflict_message(type_, body)
    return FailedRecord(rejection_id, type_, body, message, received_at)


def conflict_message(type_: RecordType, record: Mapping[str, Any]) -> str:
    resource, local_id = record.get("Resource"), record.get("LocalRecordID")
    return (
        f"a {type_.name} record with Resource {resource!r} and LocalRecordID {local_id!r} "
        "was already loaded with other content"
    )


@dataclass(slots=True)
class ResourceTotals:
    """Loaded records of one resource in the range: how many and their total charge."""

    count: int = 0
    charge: float = 0.0


def status(loaded: Mapping[str, ResourceTotals], failed: Iterable[FailedRecord]) -> list[dict[str, Any]]:
    """amieclient's status list: one entry per resource, with failed records grouped by error and type."""
    by_resource: dict[str, list[FailedRecord]] = {}
    for record in failed:
        by_resource.setdefault(record.resource, []).append(record)
    out: list[dict[str, Any]] = []
    for resource in sorted(set(loaded) | set(by_resource)):
        totals = loaded.get(resource, ResourceTotals())
        records = by_resource.get(resource, [])
        out.append(
            {
                "Resource": resource,
                "LoadedRecordCount": totals.count,
                "FailedJobCount": len(records),
                "TotalCharge": round(totals.charge, TOTAL_DIGITS),
                "Errors": error_groups(records),
            }
        )
    return out


def error_groups(records: Iterable[FailedRecord]) -> list[dict[str, Any]]:
    """Failed records grouped by (error, usage type), in order of error then type."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r.id or 0):
        groups.setdefault((record.error, record.type.name), []).append(record.as_wire())
    return [{"Error": error, "Records": items} for (error, _), items in sorted(groups.items())]
