"""Option objects of the SDK that need no I/O library (so ``import meterd`` stays light)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SpoolPolicy = Literal["drop_new", "drop_oldest"]


@dataclass(frozen=True, slots=True)
class Batching:
    """How the background sender batches: by count, by bytes of JSON, and by time.

    ``max_queue_size`` bounds the in-memory queue (newest events are dropped when it is full and counted as
    ``queue_full``); ``shutdown_timeout`` bounds the flush at interpreter exit. ``max_in_flight`` batches are
    sent at once (while the server stores one, the next is on its way); event ids make the order irrelevant.
    """

    max_queue_size: int = 100_000
    max_batch_size: int = 1000
    max_batch_bytes: int = 1 << 20
    flush_interval: float = 1.0
    shutdown_timeout: float = 2.0
    max_in_flight: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= 10_000:
            raise ValueError("max_batch_size must be between 1 and 10000 (the server's limit)")
        if not 1024 <= self.max_batch_bytes <= 10 << 20:
            raise ValueError("max_batch_bytes must be between 1 KiB and 10 MiB (the server's limit)")
        if not 1 <= self.max_in_flight <= 16:
            raise ValueError("max_in_flight must be between 1 and 16")
        if self.flush_interval <= 0 or self.shutdown_timeout < 0 or self.max_queue_size < 1:
            raise ValueError("flush_interval must be positive, shutdown_timeout >= 0, max_queue_size >= 1")
