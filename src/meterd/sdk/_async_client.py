"""``meterd.AsyncClient``: the asyncio twin of ``Client`` (same methods, awaited; ``aflush``/``aclose``)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from meterd.core.events import DEFAULT_LIMITS, Limits
from meterd.sdk import _ops as ops
from meterd.sdk._async_sender import AsyncSender
from meterd.sdk._base import ClientBase
from meterd.sdk._flow import Delivery, Reply, Retrier, Send, Sleep, Step, batch_flow, call_flow
from meterd.sdk._http import map_transport_errors
from meterd.sdk._models import (
    ApiKey,
    CorrectionResult,
    CreatedKey,
    Customer,
    Event,
    EventDetail,
    IngestResponse,
    IngestStatus,
    Meter,
    Page,
    QueryResult,
    Rejection,
)
from meterd.sdk._options import Batching, SpoolPolicy
from meterd.sdk._record import Record
from meterd.sdk._retry import RetryPolicy
from meterd.sdk._sender import OnError
from meterd.sdk.errors import ConfigurationError, TransportError

T = TypeVar("T")
TimeArg = ops.TimeArg


async def adrive(
    flow: Generator[Step, Reply, T], send: Callable[[Send], Awaitable[Reply]], sleep: Callable[[float], Awaitable[bool]]
) -> T:
    """Run a flow (see ``_flow``) with awaited I/O."""
    try:
        step = next(flow)
        while True:
            reply = await (sleep(step.seconds) if isinstance(step, Sleep) else send(step))
            step = flow.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


class AsyncClient(ClientBase):
    """An asyncio meterd client. ``meter()`` is a plain (non-blocking) method; the rest are awaited.

    Options as :class:`~meterd.Client` (``transport`` is an ``httpx.AsyncBaseTransport``, e.g.
    ``httpx.ASGITransport(app)``). There is no exit hook (a loop cannot be awaited at exit): use
    ``async with`` or ``await client.aclose()``. There is no sync mode (``await client.ingest([...])`` sends
    and answers at once), and no fork hook: create async clients in the process that uses them.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        batching: Batching | None = None,
        spool_path: str | None = None,
        spool_max_bytes: int = 256 << 20,
        spool_full: SpoolPolicy = "drop_new",
        on_error: OnError | None = None,
        send: bool = True,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._transport = transport
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            batching=batching,
            spool_path=spool_path,
            spool_max_bytes=spool_max_bytes,
            spool_full=spool_full,
            on_error=on_error,
            send=send,
            limits=limits,
        )

    def _setup(self, fork: bool) -> None:
        super()._setup(fork)
        self._http = httpx.AsyncClient(
            base_url=self.connection.base_url,
            headers=self.connection.headers(),
            timeout=self.connection.timeout,
            transport=self._transport,
        )
        self._sender = AsyncSender(self.spool or self.queue, self._deliver, self.batching, self.counters, self.on_error)

    def _kick(self) -> None:
        self._sender.kick()

    def _running(self) -> bool:
        return self._sender.running

    def _start(self) -> None:
        self._sender.start()

    def _send_now(self, record: Record) -> None:  # pragma: no cover - AsyncClient has no sync mode
        raise ConfigurationError("AsyncClient has no sync mode; await client.ingest([...]) instead")

    async def _deliver(self, bodies: list[str], sleep: Callable[[float], Awaitable[bool]]) -> Delivery:
        persistent = self.spool is not None
        retrier = Retrier(self.retry.unbounded() if persistent else self.retry, self.budget)
        return await adrive(batch_flow(bodies, retrier, persistent=persistent), self._post_events, sleep)

    async def _post_events(self, step: Send) -> Reply:
        request = self._http.build_request(
            "POST", "/v1/events", content=step.body, headers={"Content-Type": "application/json"}
        )
        return await self._exchange(request)

    async def _exchange(self, request: httpx.Request) -> Reply:
        try:
            with map_transport_errors():
                return await self._http.send(request)
        except TransportError as exc:
            return exc

    # lifecycle --------------------------------------------------------------------------------------------
    async def aflush(self, timeout: float = 5.0) -> bool:
        """Send everything metered so far; True when done within ``timeout`` seconds."""
        return await self._sender.flush(timeout)

    async def aclose(self, timeout: float | None = 5.0) -> bool:
        """Flush within ``timeout``, stop the sender task and release connections. Idempotent."""
        if self._closed:
            return True
        self._closed = True
        self._items = None
        flushed = await self._sender.close(self.shutdown_timeout if timeout is None else timeout)
        await self._http.aclose()
        if self.spool is not None:
            self.spool.close()
        return flushed

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        try:
            unsent = not self._closed and self.stats().pending > 0
        except Exception:  # a half-built client or interpreter teardown: nothing useful to say
            return
        if unsent:
            warnings.warn(
                "meterd.AsyncClient was never closed: use `async with` or `await client.aclose()`",
                ResourceWarning,
                stacklevel=1,
            )

    # typed operations -------------------------------------------------------------------------------------
    async def _run(self, call: ops.Call[T]) -> T:
        headers = {"Accept": call.accept}
        if call.content_type:
            headers["Content-Type"] = call.content_type
        request = self._http.build_request(
            call.method, call.path, params=call.params or None, headers=headers, json=call.body, content=call.content
        )
        retrier = Retrier(self.call_retry, self.budget)

        async def send(_: Send) -> Reply:
            return await self._exchange(request)

        response = await adrive(call_flow(retrier, call.idempotent), send, _asleep)
        return call.parse(response)

    async def ingest(self, events: Iterable[Mapping[str, Any]]) -> IngestResponse:
        """Send native records now and return one result per record (datetimes are converted)."""
        return await self._run(ops.ingest(events))

    async def list_events(
        self,
        *,
        meter: str | None = None,
        customer: str | None = None,
        start: TimeArg = None,
        end: TimeArg = None,
        status: str | None = None,
        surface: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Event]:
        return await self._run(ops.list_events(meter, customer, start, end, status, surface, limit, cursor))

    async def iter_events(
        self,
        *,
        meter: str | None = None,
        customer: str | None = None,
        start: TimeArg = None,
        end: TimeArg = None,
        status: str | None = None,
        surface: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Event]:
        """Every matching event, following cursors."""
        cursor: str | None = None
        while True:
            page = await self.list_events(
                meter=meter,
                customer=customer,
                start=start,
                end=end,
                status=status,
                surface=surface,
                limit=page_size,
                cursor=cursor,
            )
            for event in page.items:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_event(self, event_id: str, *, surface: str = "native") -> EventDetail:
        return await self._run(ops.get_event(event_id, surface))

    async def void_event(self, event_id: str, reason: str, *, surface: str = "native") -> CorrectionResult:
        return await self._run(ops.void_event(event_id, reason, surface))

    async def amend_event(
        self, event_id: str, reason: str, changes: Mapping[str, Any], *, surface: str = "native"
    ) -> CorrectionResult:
        return await self._run(ops.amend_event(event_id, reason, changes, surface))

    async def query(self, meters: Sequence[str] | str, start: TimeArg, end: TimeArg, **options: Any) -> QueryResult:
        """Run a query (options as :meth:`meterd.Client.query`)."""
        return await self._run(ops.query(ops.query_body(meters, start, end, **options)))

    async def query_csv(self, meters: Sequence[str] | str, start: TimeArg, end: TimeArg, **options: Any) -> str:
        return await self._run(ops.query_csv(ops.query_body(meters, start, end, **options)))

    async def create_customer(
        self,
        id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        traits: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Customer:
        return await self._run(ops.create_customer(ops.customer_body(id, name, email, traits, enabled)))

    async def get_customer(self, id: str) -> Customer:
        return await self._run(ops.get_customer(id))

    async def list_customers(self, *, limit: int = 100, cursor: str | None = None) -> Page[Customer]:
        return await self._run(ops.list_customers(limit, cursor))

    async def update_customer(
        self,
        id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        traits: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Customer:
        return await self._run(ops.update_customer(id, ops.customer_body(None, name, email, traits, enabled)))

    async def delete_customer(self, id: str) -> None:
        await self._run(ops.delete_customer(id))

    async def create_meter(
        self,
        key: str,
        *,
        aggregation: str | None = None,
        unit: str | None = None,
        description: str | None = None,
        unique_dimension: str | None = None,
    ) -> Meter:
        body = ops.meter_body(key, aggregation, unit, description, unique_dimension)
        return await self._run(ops.create_meter(body))

    async def get_meter(self, key: str) -> Meter:
        return await self._run(ops.get_meter(key))

    async def list_meters(self) -> list[Meter]:
        return await self._run(ops.list_meters())

    async def update_meter(
        self,
        key: str,
        *,
        aggregation: str | None = None,
        unit: str | None = None,
        description: str | None = None,
        unique_dimension: str | None = None,
    ) -> Meter:
        body = ops.meter_body(None, aggregation, unit, description, unique_dimension)
        return await self._run(ops.update_meter(key, body))

    async def delete_meter(self, key: str) -> None:
        await self._run(ops.delete_meter(key))

    async def create_key(self, name: str, scopes: Sequence[str]) -> CreatedKey:
        return await self._run(ops.create_key(name, scopes))

    async def list_keys(self) -> list[ApiKey]:
        return await self._run(ops.list_keys())

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await self._run(ops.revoke_key(key_id))

    async def ingest_status(self, *, start: TimeArg = None, end: TimeArg = None) -> IngestStatus:
        return await self._run(ops.ingest_status(start, end))

    async def list_rejections(
        self, *, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[Rejection]:
        return await self._run(ops.list_rejections(surface, limit, cursor))

    async def delete_rejections(self, ids: Sequence[int | str]) -> int:
        return await self._run(ops.delete_rejections(ids))

    async def ready(self) -> bool:
        return await self._run(ops.ready())


async def _asleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True
