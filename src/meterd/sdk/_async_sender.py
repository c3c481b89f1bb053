"""The asyncio twin of the sender threads: ``max_in_flight`` tasks per client, created lazily in the loop.

Same queue, same flows and the same :func:`~meterd.sdk._sender.settle` as the thread; only the waiting
differs. ``kick()`` may be called from another thread (it then hops onto the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable

from meterd.sdk._flow import Delivery
from meterd.sdk._options import Batching
from meterd.sdk._queue import Source, Tickets
from meterd.sdk._sender import OnError, settle
from meterd.sdk._stats import Counters

log = logging.getLogger("meterd.sdk")
AsyncDeliver = Callable[[list[str], Callable[[float], Awaitable[bool]]], Awaitable[Delivery]]


class AsyncSender:
    """The sender task of one :class:`~meterd.AsyncClient`."""

    def __init__(
        self, queue: Source, deliver: AsyncDeliver, batching: Batching, counters: Counters, on_error: OnError | None
    ) -> None:
        self.queue, self.batching, self.counters, self.on_error = queue, batching, counters, on_error
        self._deliver = deliver
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake = asyncio.Event()
        self._abort = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._tickets = Tickets()
        self._stopping = False
        self.running = False

    def start(self) -> None:
        """Start the task in the running loop (no-op outside one: records wait for the next call inside)."""
        if self.running or self._stopping:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._tasks = [
            loop.create_task(self._run(), name=f"meterd-sender-{n}") for n in range(self.batching.max_in_flight)
        ]
        self.running = True

    def kick(self) -> None:
        if self._wake.is_set():
            return
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    async def _run(self) -> None:
        interval = self.batching.flush_interval
        while True:
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval * random.uniform(0.9, 1.1))
                self._wake.clear()
            stopping = self._stopping
            try:
                await self._drain()
            except Exception:
                log.exception("meterd: the sender failed while draining")
            if stopping or self._abort.is_set():
                return

    async def _drain(self) -> None:
        size, nbytes = self.batching.max_batch_size, self.batching.max_batch_bytes
        while not self._abort.is_set():
            batch = self.queue.take(size, nbytes)  # no await until the ticket is issued: atomic in the loop
            ticket = self._tickets.issue() if batch.items else None
            for done in batch.markers:
                self._tickets.after_taken(done)
            if ticket is None:
                if not batch.markers:
                    return
                continue
            try:
                delivery = await self._deliver([body for _, body in batch.items], self._sleep)
                settle(batch, delivery, self.counters, self.queue, self.on_error)
            except asyncio.CancelledError:  # closed past its deadline: in-memory records are lost, and counted
                if not self.queue.durable:
                    self.counters.drop("shutdown", len(batch.items))
                raise
            finally:
                self._tickets.close(ticket)

    async def _sleep(self, seconds: float) -> bool:
        self.queue.maintain()
        try:
            await asyncio.wait_for(self._abort.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def flush(self, timeout: float) -> bool:
        if not self.running:
            if self.queue.pending() == 0:
                return True
            self.start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        self.queue.add_marker(finished)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(done), max(0.0, timeout))
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        flushed = await self.flush(timeout)
        self._stopping = True
        if not flushed:
            self._abort.set()
        self._wake.set()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*tasks)), max(0.0, deadline - loop.time()))
            except TimeoutError:
                self._abort.set()  # senders waiting to retry stop now and settle what they hold
                _, late = await asyncio.wait(tasks, timeout=0.1)
                for task in late:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if not self.queue.durable:
            self.counters.drop("shutdown", self.queue.drop_all())
        self.running = False
        return flushed
