"""The meterd Python SDK: ``Client``/``AsyncClient``, the batching sender, retries and the durable spool.

``Client`` and ``AsyncClient`` are imported on first use (they need httpx), so importing the package
itself pulls in nothing but the standard library and ``meterd.core``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from meterd.sdk._async_client import AsyncClient
    from meterd.sdk._client import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from meterd.sdk._client import Client

        return Client
    if name == "AsyncClient":
        from meterd.sdk._async_client import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
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
    "IngestCount",
    "IngestResponse",
    "IngestStatus",
    "Meter",
    "Page",
    "QueryResult",
    "QueryRow",
    "RecordResult",
    "Rejection",
    "RejectionGroup",
    "RetryBudget",
    "RetryPolicy",
    "SenderStats",
    "errors",
]
