"""``meterd.Client``: every native operation as a typed method, and ``meter()`` with a background thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from meterd.core.errors import MeterdError
from meterd.core.events import DEFAULT_LIMITS, Limits
from meterd.sdk import _ops as ops
from meterd.sdk._base import ClientBase
from meterd.sdk._flow import Delivery, Reply, Retrier, Send, batch_flow, call_flow, drive
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
from meterd.sdk._queue import Batch
from meterd.sdk._record import Record, encode
from meterd.sdk._retry import RetryPolicy
from meterd.sdk._sender import OnError, ThreadSender, register, settle, unregister
from meterd.sdk.errors import EventRejected, TransportError

T = TypeVar("T")
TimeArg = ops.TimeArg


class Client(ClientBase):
    """A synchronous meterd client. ``meter()`` never blocks; every other method is one HTTP call.

    ``base_url``/``api_key`` default to ``METERD_URL``/``METERD_API_KEY``. ``transport`` replaces the
    network (``httpx.MockTransport`` in tests). ``send=False`` validates and counts but never sends;
    ``sync_mode=True`` sends each ``meter()`` inline and raises on failure. ``spool_path`` turns on the
    durable spool. Use it as a context manager, or call :meth:`close`; at exit it flushes for at most
    ``batching.shutdown_timeout`` seconds.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        batching: Batching | None = None,
        spool_path: str | None = None,
        spool_max_bytes: int = 256 << 20,
        spool_full: SpoolPolicy = "drop_new",
        on_error: OnError | None = None,
        send: bool = True,
        sync_mode: bool = False,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._transport = transport
        self.sync_mode = sync_mode
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            batching=batching,
            spool_path=spool_path if not sync_mode else None,
            spool_max_bytes=spool_max_bytes,
            spool_full=spool_full,
            on_error=on_error,
            send=send,
            limits=limits,
        )
        if sync_mode:
            self._items = None
        register(self)
        if self.spool is not None and self.spool.count:
            self._start()  # drain what an earlier process left, even before the first meter()
            self._kick()

    def _setup(self, fork: bool) -> None:
        super()._setup(fork)
        self._http = httpx.Client(
            base_url=self.connection.base_url,
            headers=self.connection.headers(),
            timeout=self.connection.timeout,
            transport=self._transport,
        )
        self._sender = ThreadSender(
            self.spool or self.queue, self._deliver, self.batching, self.counters, self.on_error
        )

    def _after_fork_in_child(self) -> None:
        self._setup(fork=True)
        if self.sync_mode:
            self._items = None

    # the background path ----------------------------------------------------------------------------------
    def _kick(self) -> None:
        self._sender.kick()

    def _running(self) -> bool:
        return self._sender.running

    def _start(self) -> None:
        self._sender.start()

    def _deliver(self, bodies: list[str], sleep: Callable[[float], bool]) -> Delivery:
        persistent = self.spool is not None
        retrier = Retrier(self.retry.unbounded() if persistent else self.retry, self.budget)
        return drive(batch_flow(bodies, retrier, persistent=persistent), self._post_events, sleep)

    def _post_events(self, step: Send) -> Reply:
        request = self._http.build_request(
            "POST", "/v1/events", content=step.body, headers={"Content-Type": "application/json"}
        )
        return self._exchange(request)

    def _exchange(self, request: httpx.Request) -> Reply:
        try:
            with map_transport_errors():
                return self._http.send(request)
        except TransportError as exc:
            return exc

    def _send_now(self, record: Record) -> None:
        """Sync mode: deliver one record now; raise if it was not stored."""
        self.counters.count_enqueued()
        body = encode(record)
        delivery = self._deliver([body], _sleep)
        with self._direct_lock:  # callers' threads share the counters in sync mode
            settle(Batch([(0, body)]), delivery, self.counters, self.queue, _quiet)
        error = delivery.error or next(iter(delivery.failed.values()), None)
        result = delivery.results[0]
        if result is not None and not result.stored:
            raise EventRejected(
                f"the server answered {result.outcome} for event {result.id}",
                outcome=result.outcome,
                event_id=result.id,
                errors=list(result.errors),
            )
        if error is not None:
            raise error

    # lifecycle --------------------------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything metered so far; True when done within ``timeout`` seconds."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush within ``timeout`` (default 5 s), stop the sender and release connections. Idempotent."""
        if self._closed:
            return True
        self._closed = True
        self._items = None
        flushed = self._sender.close(self.shutdown_timeout if timeout is None else timeout)
        self._http.close()
        if self.spool is not None:
            self.spool.close()
        unregister(self)
        return flushed

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # typed operations -------------------------------------------------------------------------------------
    def _run(self, call: ops.Call[T]) -> T:
        headers = {"Accept": call.accept}
        if call.content_type:
            headers["Content-Type"] = call.content_type
        request = self._http.build_request(
            call.method, call.path, params=call.params or None, headers=headers, json=call.body, content=call.content
        )
        retrier = Retrier(self.call_retry, self.budget)
        response = drive(call_flow(retrier, call.idempotent), lambda _: self._exchange(request), _sleep)
        return call.parse(response)

    def ingest(self, events: Iterable[Mapping[str, Any]]) -> IngestResponse:
        """Send native records now and return one result per record (datetimes are converted)."""
        return self._run(ops.ingest(events))

    def list_events(
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
        return self._run(ops.list_events(meter, customer, start, end, status, surface, limit, cursor))

    def iter_events(
        self,
        *,
        meter: str | None = None,
        customer: str | None = None,
        start: TimeArg = None,
        end: TimeArg = None,
        status: str | None = None,
        surface: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[Event]:
        """Every matching event, following cursors."""
        cursor: str | None = None
        while True:
            page = self.list_events(
                meter=meter,
                customer=customer,
                start=start,
                end=end,
                status=status,
                surface=surface,
                limit=page_size,
                cursor=cursor,
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_event(self, event_id: str, *, surface: str = "native") -> EventDetail:
        return self._run(ops.get_event(event_id, surface))

    def void_event(self, event_id: str, reason: str, *, surface: str = "native") -> CorrectionResult:
        return self._run(ops.void_event(event_id, reason, surface))

    def amend_event(
        self, event_id: str, reason: str, changes: Mapping[str, Any], *, surface: str = "native"
    ) -> CorrectionResult:
        return self._run(ops.amend_event(event_id, reason, changes, surface))

    def query(self, meters: Sequence[str] | str, start: TimeArg, end: TimeArg, **options: Any) -> QueryResult:
        """Run a query (options as in ``docs/api.md``: window, time_zone, group_by, customers, filters,
        aggregation, unique_dimension, take, order, dense)."""
        return self._run(ops.query(ops.query_body(meters, start, end, **options)))

    def query_csv(self, meters: Sequence[str] | str, start: TimeArg, end: TimeArg, **options: Any) -> str:
        """The same query answered as CSV text."""
        return self._run(ops.query_csv(ops.query_body(meters, start, end, **options)))

    def create_customer(
        self,
        id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        traits: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Customer:
        return self._run(ops.create_customer(ops.customer_body(id, name, email, traits, enabled)))

    def get_customer(self, id: str) -> Customer:
        return self._run(ops.get_customer(id))

    def list_customers(self, *, limit: int = 100, cursor: str | None = None) -> Page[Customer]:
        return self._run(ops.list_customers(limit, cursor))

    def update_customer(
        self,
        id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        traits: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Customer:
        return self._run(ops.update_customer(id, ops.customer_body(None, name, email, traits, enabled)))

    def delete_customer(self, id: str) -> None:
        self._run(ops.delete_customer(id))

    def create_meter(
        self,
        key: str,
        *,
        aggregation: str | None = None,
        unit: str | None = None,
        description: str | None = None,
        unique_dimension: str | None = None,
    ) -> Meter:
        return self._run(ops.create_meter(ops.meter_body(key, aggregation, unit, description, unique_dimension)))

    def get_meter(self, key: str) -> Meter:
        return self._run(ops.get_meter(key))

    def list_meters(self) -> list[Meter]:
        return self._run(ops.list_meters())

    def update_meter(
        self,
        key: str,
        *,
        aggregation: str | None = None,
        unit: str | None = None,
        description: str | None = None,
        unique_dimension: str | None = None,
    ) -> Meter:
        body = ops.meter_body(None, aggregation, unit, description, unique_dimension)
        return self._run(ops.update_meter(key, body))

    def delete_meter(self, key: str) -> None:
        self._run(ops.delete_meter(key))

    def create_key(self, name: str, scopes: Sequence[str]) -> CreatedKey:
        return self._run(ops.create_key(name, scopes))

    def list_keys(self) -> list[ApiKey]:
        return self._run(ops.list_keys())

    def revoke_key(self, key_id: str) -> ApiKey:
        return self._run(ops.revoke_key(key_id))

    def ingest_status(self, *, start: TimeArg = None, end: TimeArg = None) -> IngestStatus:
        return self._run(ops.ingest_status(start, end))

    def list_rejections(
        self, *, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[Rejection]:
        return self._run(ops.list_rejections(surface, limit, cursor))

    def delete_rejections(self, ids: Sequence[int | str]) -> int:
        return self._run(ops.delete_rejections(ids))

    def ready(self) -> bool:
        """True when the server and its store answer (``GET /readyz``)."""
        return self._run(ops.ready())


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


def _quiet(error: MeterdError, records: list[dict[str, object]]) -> None:
    """Sync mode raises instead of calling on_error."""
