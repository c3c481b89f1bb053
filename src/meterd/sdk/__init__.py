"""The meterd Python SDK: ``Client``/``AsyncClient``, the batching sender, retries and the durable spool."""

from __future__ import annotations

from meterd.sdk import errors
from meterd.sdk._client import Client
from meterd.sdk._models import (
    ApiKey,
    Correction,
    CorrectionResult,
    CreatedKey,
    Customer,
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
from meterd.sdk._ops import DimensionFilter
from meterd.sdk._retry import RetryBudget, RetryPolicy
from meterd.sdk._sender import Batching
from meterd.sdk._stats import SenderStats

__all__ = [
    "ApiKey",
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
