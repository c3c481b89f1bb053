"""Extra facts about a customer kept by surfaces (entitlements, registration tokens), gathered for display.

The core has no tables for these: the surfaces that grant them (AWS RegisterUsage, influx/AWS registration
tokens) keep them as store objects. A *panel source* turns such objects into a small table for one customer.
Two sources are built in and read the documented object kinds ``entitlement`` and ``registration_token``
(tenant-scoped, or GLOBAL with a ``tenant`` field, each naming its ``customer``); a surface that keeps them
differently registers its own source with :func:`register`. A source that fails yields a panel saying so,
never an error page, and a customer with nothing recorded gets an empty panel with a note.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meterd.core.errors import MeterdError
from meterd.core.timeutil import MAX_MS, MIN_MS, format_ms
from meterd.service.marketplace import ENTITLEMENT, TOKEN
from meterd.storage.base import GLOBAL, Store

TIME_FIELDS = frozenset({"start", "end"})

log = logging.getLogger("meterd.ui")
CUSTOMER_FIELDS = ("customer", "customer_id", "customer_identifier", "customer_aws_account_id")
SECONDS_OR_MS = 100_000_000_000  # an epoch "_at" integer below this is in seconds (before 1973 in ms)
SECRET_FIELDS = frozenset({"token_hash", "token", "secret", "registration_token", "signature"})


@dataclass(frozen=True, slots=True)
class Panel:
    """A titled table about one customer; ``note`` explains an empty or failed panel."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    note: str | None = None
    failed: bool = False


class PanelSource(Protocol):
    """Anything with a ``title`` that, awaited with (store, tenant, customer id), gives a :class:`Panel`."""

    @property
    def title(self) -> str: ...

    async def __call__(self, store: Store, tenant: str, customer: str) -> Panel: ...


def register(sources: list[PanelSource], source: PanelSource) -> None:
    """Add a source (surfaces call this from their installer with ``app.state.customer_panels``)."""
    if source not in sources:
        sources.append(source)


def mask(value: str) -> str:
    """Show only the start of a secret-like value: enough to recognise it, not to use it."""
    return value[:4] + "…" if len(value) > 4 else "…"


def cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if (key.endswith("_at") or key in TIME_FIELDS) and isinstance(value, int) and MIN_MS < value <= MAX_MS:
        return format_ms(value if value >= SECONDS_OR_MS else value * 1000)
    text = value if isinstance(value, str) else str(value)
    return mask(text) if key in SECRET_FIELDS else text


def belongs_to(body: dict[str, Any], tenant: str, customer: str, global_scope: bool) -> bool:
    if global_scope and body.get("tenant") != tenant:
        return False
    return any(body.get(name) == customer for name in CUSTOMER_FIELDS)


@dataclass(frozen=True, slots=True)
class ObjectSource:
    """Lists objects of ``kind`` naming the customer: their scalar fields (``columns`` first), secrets masked."""

    title: str
    kind: str
    columns: tuple[str, ...]
    empty_note: str

    async def __call__(self, store: Store, tenant: str, customer: str) -> Panel:
        found: list[dict[str, Any]] = []
        for scope in (tenant, GLOBAL):
            for _, body in await store.list_objects(scope, self.kind):
                if belongs_to(body, tenant, customer, scope == GLOBAL):
                    found.append(body)
        columns = columns_of(found, self.columns)
        rows = [tuple(cell(c, body.get(c)) for c in columns) for body in found]
        return Panel(self.title, columns, rows, None if rows else self.empty_note)


def columns_of(bodies: Sequence[dict[str, Any]], preferred: Sequence[str]) -> tuple[str, ...]:
    """The preferred columns present in any body, then every other scalar field, in order of appearance."""
    seen: dict[str, None] = {}
    skip = {"tenant", *CUSTOMER_FIELDS}
    for body in bodies:
        for name, value in body.items():
            if name not in skip and (value is None or isinstance(value, str | int | float | bool)):
                seen.setdefault(name, None)
    first = [c for c in preferred if c in seen]
    return (*first, *(c for c in seen if c not in first))


ENTITLEMENTS = ObjectSource(
    "Entitlements",
    ENTITLEMENT,
    ("product", "start", "end", "license_arn", "agreement_id"),
    "No entitlements are recorded for this customer. They appear here when a surface that grants them "
    "(the AWS Marketplace surface's RegisterUsage) is in use.",
)
REGISTRATION_TOKENS = ObjectSource(
    "Registration tokens",
    TOKEN,
    ("product", "created_at", "expires_at", "token_hash"),
    "No registration tokens are recorded for this customer. They appear here when a surface that issues them "
    "(AWS ResolveCustomer, the influx /start flow) is in use.",
)
DEFAULT_SOURCES: tuple[PanelSource, ...] = (ENTITLEMENTS, REGISTRATION_TOKENS)


async def gather(sources: Sequence[PanelSource], store: Store, tenant: str, customer: str) -> list[Panel]:
    """Every source's panel for the customer; a failing source becomes a panel that says it failed."""
    panels: list[Panel] = []
    for source in sources:
        try:
            panels.append(await source(store, tenant, customer))
        except (MeterdError, ValueError, KeyError, TypeError) as exc:
            log.warning("customer panel %r failed: %s", source.title, type(exc).__name__)
            panels.append(Panel(source.title, (), [], "This information could not be loaded right now.", True))
    return panels
