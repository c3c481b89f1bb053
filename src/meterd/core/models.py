"""Domain records: tenants, keys, customers, meters, usage events, corrections, rejections, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Scalar = str | int | float | bool | None
Dimensions = dict[str, Scalar]


class Scope(StrEnum):
    """What an API key may do; ``admin`` implies the others."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


class Aggregation(StrEnum):
    """How a meter folds event values into one number per window and group."""

    SUM = "sum"
    COUNT = "count"
    MIN = "min"
    MAX = "max"
    AVG = "avg"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    DURATION = "duration"


class Outcome(StrEnum):
    """What ingest did with one record."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class EventStatus(StrEnum):
    """Whether an event counts: corrections void events, they never delete them."""

    LIVE = "live"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: only the hash of its secret is kept."""

    id: str
    tenant: str
    name: str
    scopes: frozenset[Scope]
    secret_hash: str
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str | None = None
    email: str | None = None
    traits: Dimensions = field(default_factory=dict)
    enabled: bool = True
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class Meter:
    """A named quantity; ``unique_dimension`` names what ``unique_count`` counts.

    ``properties`` holds surface-specific settings (an OpenMeter event type and JSONPaths, an AWS product
    code, ...) as a flat JSON object so the core need not know every surface.
    """

    key: str
    aggregation: Aggregation = Aggregation.SUM
    unit: str | None = None
    description: str | None = None
    unique_dimension: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One validated usage record. Times are UTC epoch milliseconds."""

    id: str
    meter: str
    customer: str
    time: int
    value: float
    dimensions: Dimensions = field(default_factory=dict)
    end_time: int | None = None
    surface: str = "native"
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A usage event as the store keeps it, with its bookkeeping."""

    event: UsageEvent
    seq: int
    ingested_at: int
    status: EventStatus = EventStatus.LIVE
    replaces: str | None = None
    replaced_by: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The outcome of one record of a batch, in request order."""

    index: int
    id: str | None
    outcome: Outcome
    errors: tuple[Any, ...] = ()
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not stored, kept with its raw payload so nothing disappears without a trace."""

    id: int
    surface: str
    code: str
    message: str
    raw: str
    created_at: int
    meter: str | None = None
    event_id: str | None = None
    errors: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Correction:
    """An audited void or amendment of an event."""

    id: int
    event_id: str
    surface: str
    action: str
    reason: str
    key_id: str | None
    created_at: int
    replacement_id: str | None = None
