"""The ``Store`` interface: every durable operation meterd needs, documented once, implemented per backend.

Rules every implementation keeps (the contract suite in ``tests/contract`` checks them):

- Every method is scoped to one tenant; nothing reads or writes across tenants.
- ``ingest`` decides each event's outcome and writes it in ONE transaction, committed before it returns:
  identity is (tenant, surface, id); same content again is ``duplicate`` (no write), other content is
  ``conflict`` (stored as a rejection, never overwriting), a new id is ``accepted``. Duplicates inside one
  batch follow the same rules in order. Unknown meters are created with aggregation ``sum``.
- ``query`` answers exactly what :func:`meterd.core.query.evaluate` would over the live events.
- Objects (``put_object`` ...) are small JSON documents surfaces keep beside the core records. The tenant
  ``GLOBAL`` ("*") holds lookups that must work before the tenant is known (tokens, access key ids).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meterd.core.models import (
    ApiKey,
    Correction,
    Customer,
    EventStatus,
    Meter,
    Outcome,
    Rejection,
    StoredEvent,
    Tenant,
    UsageEvent,
)
from meterd.core.query import QuerySpec, Row

GLOBAL = "*"


@dataclass(frozen=True, slots=True)
class NewRejection:
    """A record that failed validation (or conflicted), to be kept with its raw payload."""

    surface: str
    code: str
    message: str
    raw: str
    meter: str | None = None
    event_id: str | None = None
    errors: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events ``list_events`` returns; ``None`` means any."""

    surface: str | None = None
    meter: str | None = None
    customer: str | None = None
    start: int | None = None
    end: int | None = None
    status: EventStatus | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of results and the cursor of the next page (``None`` at the end)."""

    items: list[Any]
    next_cursor: str | None = None


@dataclass(slots=True)
class IngestStats:
    """Ingest outcomes over a range: counts per (meter, surface, outcome), rejections grouped by error."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    rejection_groups: list[tuple[str, str, int, list[Rejection]]] = field(default_factory=list)


class Store(ABC):
    """Async persistence for one meterd deployment (all tenants)."""

    # lifecycle -----------------------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store may be opened again."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`~meterd.core.errors.StorageError` unless the store answers."""

    # tenants and keys ----------------------------------------------------------------------------------
    @abstractmethod
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Create a tenant; an existing id is returned unchanged."""

    @abstractmethod
    async def list_tenants(self) -> list[Tenant]: ...

    @abstractmethod
    async def add_key(self, key: ApiKey) -> None: ...

    @abstractmethod
    async def get_key(self, key_id: str) -> ApiKey | None:
        """A key by id, in any tenant (authentication looks keys up before it knows the tenant)."""

    @abstractmethod
    async def list_keys(self, tenant: str) -> list[ApiKey]: ...

    @abstractmethod
    async def revoke_key(self, tenant: str, key_id: str, at: int) -> ApiKey:
        """Mark a key revoked; raise NotFound when the tenant has no such key."""

    @abstractmethod
    async def touch_key(self, key_id: str, at: int) -> None:
        """Record that the key was used at ``at`` (best effort)."""

    # customers and meters ------------------------------------------------------------------------------
    @abstractmethod
    async def put_customer(self, tenant: str, customer: Customer) -> Customer:
        """Create or replace a customer (``created_at`` of an existing one is kept)."""

    @abstractmethod
    async def get_customer(self, tenant: str, customer_id: str) -> Customer | None: ...

    @abstractmethod
    async def list_customers(self, tenant: str, limit: int = 100, cursor: str | None = None) -> Page: ...

    @abstractmethod
    async def delete_customer(self, tenant: str, customer_id: str) -> bool: ...

    @abstractmethod
    async def put_meter(self, tenant: str, meter: Meter) -> Meter:
        """Create or replace a meter (``created_at`` of an existing one is kept)."""

    @abstractmethod
    async def get_meter(self, tenant: str, key: str) -> Meter | None: ...

    @abstractmethod
    async def list_meters(self, tenant: str) -> list[Meter]: ...

    @abstractmethod
    async def delete_meter(self, tenant: str, key: str) -> bool: ...

    # events --------------------------------------------------------------------------------------------
    @abstractmethod
    async def ingest(
        self,
        tenant: str,
        events: Sequence[UsageEvent],
        rejections: Sequence[NewRejection] = (),
        now: int = 0,
    ) -> list[Outcome]:
        """Store a batch in one transaction; one outcome per event, in order (see the module rules)."""

    @abstractmethod
    async def close_interval(self, tenant: str, surface: str, event_id: str, end_time: int, now: int) -> Outcome:
        """Give an open interval event its end, in one transaction.

        The stored live event with no end gets ``end_time`` (``accepted``); one already ending at ``end_time``
        is a ``duplicate``; one ending elsewhere, or an end before its start, is a ``conflict`` (kept as a
        rejection). NotFound when there is no such event: the caller keeps the close until the open arrives.
        """

    @abstractmethod
    async def get_event(self, tenant: str, surface: str, event_id: str) -> StoredEvent | None: ...

    @abstractmethod
    async def list_events(self, tenant: str, where: EventFilter, limit: int = 100, cursor: str | None = None) -> Page:
        """Events in ingest order (``seq``), a page at a time."""

    @abstractmethod
    async def void_event(
        self, tenant: str, surface: str, event_id: str, reason: str, key_id: str | None, now: int
    ) -> Correction:
        """Void a live event (NotFound if absent, Conflict if already voided); audited."""

    @abstractmethod
    async def amend_event(
        self,
        tenant: str,
        surface: str,
        event_id: str,
        replacement: UsageEvent,
        reason: str,
        key_id: str | None,
        now: int,
    ) -> Correction:
        """Void a live event and store ``replacement`` linked to it, in one transaction; audited."""

    @abstractmethod
    async def list_corrections(self, tenant: str, surface: str, event_id: str) -> list[Correction]:
        """The audit trail of an event: corrections of it and of what replaced it."""

    @abstractmethod
    async def query(self, tenant: str, spec: QuerySpec, now: int) -> list[Row]:
        """Exactly :func:`meterd.core.query.evaluate` over the tenant's live events."""

    # rejections and ingest health ----------------------------------------------------------------------
    @abstractmethod
    async def add_rejections(self, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]: ...

    @abstractmethod
    async def list_rejections(
        self, tenant: str, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page: ...

    @abstractmethod
    async def delete_rejections(self, tenant: str, ids: Sequence[int]) -> int:
        """Delete the tenant's rejections with these ids; the number deleted."""

    @abstractmethod
    async def ingest_stats(self, tenant: str, start: int, end: int, samples: int = 3) -> IngestStats: ...

    # surface objects -----------------------------------------------------------------------------------
    @abstractmethod
    async def put_object(
        self, tenant: str, kind: str, key: str, body: dict[str, Any], *, only_if_absent: bool = False
    ) -> bool:
        """Store a JSON document; with ``only_if_absent`` nothing changes when it exists (returns False)."""

    @abstractmethod
    async def get_object(self, tenant: str, kind: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def list_objects(self, tenant: str, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """Documents of one kind whose key starts with ``prefix``, by key."""

    @abstractmethod
    async def delete_object(self, tenant: str, kind: str, key: str) -> bool: ...
