"""A short lease on a name, kept as a store object, so read-decide-write steps on one id never interleave.

``put_object(only_if_absent=True)`` is atomic in every store, so whoever creates ``lock/<name>`` holds it
(across processes sharing a database, too) until it deletes it. A holder that died leaves the object behind:
after ``lease_ms`` it counts as abandoned and the next waiter takes it over. Waiters poll; after ``wait_ms``
they give up with :class:`~meterd.core.errors.StorageError` (503, the client retries).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from meterd.core.errors import StorageError
from meterd.storage.base import Store

LOCKS = "lock"


@asynccontextmanager
async def held(
    store: Store,
    tenant: str,
    name: str,
    clock: Callable[[], int],
    *,
    lease_ms: int = 15_000,
    wait_ms: int = 10_000,
) -> AsyncIterator[None]:
    """Hold the lock ``name`` of ``tenant`` for the body of the ``async with``."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + wait_ms / 1000
    pause = 0.002
    while not await store.put_object(tenant, LOCKS, name, {"token": token, "at": clock()}, only_if_absent=True):
        holder = await store.get_object(tenant, LOCKS, name)
        if holder is not None and clock() - int(holder.get("at", 0)) > lease_ms:
            await store.delete_object(tenant, LOCKS, name)  # abandoned by a holder that died
            continue
        if time.monotonic() > deadline:
            raise StorageError(f"{name} is busy; retry")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
    try:
        yield
    finally:
        mine = await store.get_object(tenant, LOCKS, name)
        if mine is not None and mine.get("token") == token:
            await store.delete_object(tenant, LOCKS, name)
