"""meterd: self-hosted usage metering. ``import meterd`` gives the SDK only (no server, CLI or drivers).

``Client`` and ``AsyncClient`` load httpx on first use, so ``import meterd`` needs only the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meterd._version import __version__
from meterd.core.errors import FieldError, InvalidInput, MeterdError
from meterd.sdk import errors
from meterd.sdk._models import (
    ApiKey,
    Correction,
    CorrectionResult,
    CreatedKey,
    Customer,
    DimensionFilter,
    Event,
    EventDetail,
    IngestCount,
    IngestResponse,
    IngestStatus,
    Meter,
    Page,
    QueryResult,
    QueryRow,
    RecordResult,
    Rejection,
    RejectionGroup,
)
from meterd.sdk._options import Batching
from meterd.sdk._retry import RetryBudget, RetryPolicy
from meterd.sdk._stats import SenderStats
from meterd.sdk.errors import APIError, TransportError, TransportTimeout

if TYPE_CHECKING:
    from meterd.sdk._async_client import AsyncClient
    from meterd.sdk._client import Client


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from meterd import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APIError",
    "ApiKey",
    "AsyncClient",
    "Batching",
    "Client",
    "Correction",
    "CorrectionResult",
    "CreatedKey",
    "Customer",
    "DimensionFilter",
    "Event",
    "EventDetail",
    "FieldError",
    "IngestCount",
    "IngestResponse",
    "IngestStatus",
    "InvalidInput",
    "Meter",
    "MeterdError",
    "Page",
    "QueryResult",
    "QueryRow",
    "RecordResult",
    "Rejection",
    "RejectionGroup",
    "RetryBudget",
    "RetryPolicy",
    "SenderStats",
    "TransportError",
    "TransportTimeout",
    "__version__",
    "errors",
]
