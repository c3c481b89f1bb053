"""Typed results of the native API (``docs/api.md``), parsed from its JSON answers.

Parsing is tolerant: unknown fields are ignored and optional ones default, so a newer server does not break
an older SDK. Times become aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from meterd.core.errors import FieldError
from meterd.core.models import Dimensions

T = TypeVar("T")
Json = Mapping[str, Any]


def parse_dt(value: object) -> datetime | None:
    """An RFC 3339 answer time as an aware datetime (None stays None)."""
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def _dt(value: object) -> datetime:
    parsed = parse_dt(value)
    if parsed is None:
        raise ValueError(f"expected an RFC 3339 time, got {value!r}")
    return parsed


def field_errors(items: object) -> tuple[FieldError, ...]:
    """A problem's or a result's ``errors`` list as FieldErrors."""
    if not isinstance(items, list):
        return ()
    return tuple(
        FieldError(str(item.get("path", "")), str(item.get("message", "")))
        for item in items
        if isinstance(item, Mapping)
    )


@dataclass(frozen=True, slots=True)
class DimensionFilter:
    """Keep events whose dimension ``key`` is (``eq``/``in``) or is not (``ne``/``nin``) one of ``values``."""

    key: str
    op: str
    values: Sequence[str | int | float | bool | None]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next (None at the end)."""

    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def parse(cls, data: Json, item: Callable[[Json], T]) -> Page[T]:
        cursor = data.get("next_cursor")
        return cls([item(x) for x in data.get("items", [])], cursor if isinstance(cursor, str) else None)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What the server did with one record of a batch: accepted, duplicate, conflict or rejected."""

    index: int
    id: str | None
    outcome: str
    errors: tuple[FieldError, ...] = ()

    @property
    def stored(self) -> bool:
        """True when the record is now on the server (accepted now or already there)."""
        return self.outcome in ("accepted", "duplicate")

    @classmethod
    def parse(cls, data: Json) -> RecordResult:
        event_id = data.get("id")
        return cls(
            int(data["index"]),
            event_id if isinstance(event_id, str) else None,
            str(data["outcome"]),
            field_errors(data.get("errors")),
        )


@dataclass(frozen=True, slots=True)
class IngestResponse:
    """The answer to ``POST /v1/events``: one result per record, in order, and the counts per outcome."""

    results: list[RecordResult]
    counts: dict[str, int]

    @classmethod
    def parse(cls, data: Json) -> IngestResponse:
        counts = {str(k): int(v) for k, v in dict(data.get("counts", {})).items()}
        return cls([RecordResult.parse(x) for x in data.get("results", [])], counts)


@dataclass(frozen=True, slots=True)
class Event:
    """A stored usage event."""

    id: str
    meter: str
    customer: str
    time: datetime
    value: float
    dimensions: Dimensions = field(default_factory=dict)
    end_time: datetime | None = None
    surface: str = "native"
    status: str = "live"
    ingested_at: datetime | None = None
    replaces: str | None = None
    replaced_by: str | None = None

    @classmethod
    def parse(cls, d: Json) -> Event:
        return cls(
            str(d["id"]),
            str(d["meter"]),
            str(d["customer"]),
            _dt(d["time"]),
            float(d.get("value", 0.0)),
            dict(d.get("dimensions") or {}),
            parse_dt(d.get("end_time")),
            str(d.get("surface", "native")),
            str(d.get("status", "live")),
            parse_dt(d.get("ingested_at")),
            d.get("replaces"),
            d.get("replaced_by"),
        )


@dataclass(frozen=True, slots=True)
class Correction:
    """An audited void or amendment of an event."""

    id: int | str
    event_id: str
    surface: str
    action: str
    reason: str
    key_id: str | None
    created_at: datetime | None
    replacement_id: str | None = None

    @classmethod
    def parse(cls, d: Json) -> Correction:
        return cls(
            d["id"],
            str(d["event_id"]),
            str(d.get("surface", "native")),
            str(d["action"]),
            str(d.get("reason", "")),
            d.get("key_id"),
            parse_dt(d.get("created_at")),
            d.get("replacement_id"),
        )


@dataclass(frozen=True, slots=True)
class EventDetail:
    """An event with its audit trail."""

    event: Event
    corrections: list[Correction]

    @classmethod
    def parse(cls, d: Json) -> EventDetail:
        return cls(Event.parse(d), [Correction.parse(c) for c in d.get("corrections", [])])


@dataclass(frozen=True, slots=True)
class CorrectionResult:
    """The answer to void and amend: the event as it is now (the replacement for amend) and the correction."""

    event: Event
    correction: Correction

    @classmethod
    def parse(cls, d: Json) -> CorrectionResult:
        return cls(Event.parse(d["event"]), Correction.parse(d["correction"]))


@dataclass(frozen=True, slots=True)
class QueryRow:
    """One value of a query: a meter, a window and a group."""

    meter: str
    start: datetime
    end: datetime
    group: dict[str, Any]
    value: float | None

    @classmethod
    def parse(cls, d: Json) -> QueryRow:
        value = d.get("value")
        return cls(
            str(d["meter"]),
            _dt(d["start"]),
            _dt(d["end"]),
            dict(d.get("group") or {}),
            None if value is None else float(value),
        )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to a query: its range, window and zone, and the rows."""

    start: datetime
    end: datetime
    window: str
    time_zone: str
    rows: list[QueryRow]

    @classmethod
    def parse(cls, d: Json) -> QueryResult:
        return cls(
            _dt(d["from"]),
            _dt(d["to"]),
            str(d.get("window", "none")),
            str(d.get("time_zone", "UTC")),
            [QueryRow.parse(r) for r in d.get("rows", [])],
        )


@dataclass(frozen=True, slots=True)
class Customer:
    """The one who is billed."""

    id: str
    name: str | None = None
    email: str | None = None
    traits: Dimensions = field(default_factory=dict)
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def parse(cls, d: Json) -> Customer:
        return cls(
            str(d["id"]),
            d.get("name"),
            d.get("email"),
            dict(d.get("traits") or {}),
            bool(d.get("enabled", True)),
            parse_dt(d.get("created_at")),
            parse_dt(d.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class Meter:
    """A named quantity and how it aggregates."""

    key: str
    aggregation: str = "sum"
    unit: str | None = None
    description: str | None = None
    unique_dimension: str | None = None
    created_at: datetime | None = None

    @classmethod
    def parse(cls, d: Json) -> Meter:
        return cls(
            str(d["key"]),
            str(d.get("aggregation", "sum")),
            d.get("unit"),
            d.get("description"),
            d.get("unique_dimension"),
            parse_dt(d.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed (never with its secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def parse(cls, d: Json) -> ApiKey:
        return cls(
            str(d["id"]),
            str(d.get("name", "")),
            tuple(str(s) for s in d.get("scopes", [])),
            parse_dt(d.get("created_at")),
            parse_dt(d.get("last_used_at")),
            parse_dt(d.get("revoked_at")),
        )


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its secret, which the server shows only this once."""

    key: ApiKey
    secret: str

    @classmethod
    def parse(cls, d: Json) -> CreatedKey:
        return cls(ApiKey.parse(d), str(d["key"]))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the server did not store, kept with its raw payload."""

    id: int | str
    surface: str
    code: str
    message: str
    errors: tuple[FieldError, ...]
    raw: str
    meter: str | None
    event_id: str | None
    created_at: datetime | None

    @classmethod
    def parse(cls, d: Json) -> Rejection:
        return cls(
            d["id"],
            str(d.get("surface", "")),
            str(d.get("code", "")),
            str(d.get("message", "")),
            field_errors(d.get("errors")),
            str(d.get("raw", "")),
            d.get("meter"),
            d.get("event_id"),
            parse_dt(d.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class IngestCount:
    """How many records of one meter and surface had one outcome."""

    meter: str
    surface: str
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class RejectionGroup:
    """Rejections grouped by surface and message, with a few samples."""

    surface: str
    message: str
    count: int
    samples: list[Rejection]


@dataclass(frozen=True, slots=True)
class IngestStatus:
    """Ingest outcomes over a range and the rejections grouped by error."""

    start: datetime | None
    end: datetime | None
    counts: list[IngestCount]
    rejections: list[RejectionGroup]

    @classmethod
    def parse(cls, d: Json) -> IngestStatus:
        counts = [
            IngestCount(str(c["meter"]), str(c["surface"]), str(c["outcome"]), int(c["count"]))
            for c in d.get("counts", [])
        ]
        groups = [
            RejectionGroup(
                str(g.get("surface", "")),
                str(g.get("message", "")),
                int(g.get("count", 0)),
                [Rejection.parse(s) for s in g.get("samples", [])],
            )
            for g in d.get("rejections", [])
        ]
        return cls(parse_dt(d.get("from")), parse_dt(d.get("to")), counts, groups)
