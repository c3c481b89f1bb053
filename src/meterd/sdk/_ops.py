"""Every native operation as an I/O-free :class:`Call`: method, path, parameters, body, and the parser of
its answer. ``Client`` and ``AsyncClient`` run the same calls, so the wire contract is written once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from meterd.sdk._http import json_body
from meterd.sdk._models import (
    ApiKey,
    CorrectionResult,
    CreatedKey,
    Customer,
    DimensionFilter,
    Event,
    EventDetail,
    IngestResponse,
    IngestStatus,
    Meter,
    Page,
    QueryResult,
    Rejection,
)

T = TypeVar("T")
TimeArg = datetime | str | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer. ``idempotent`` calls are retried on temporary failures."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    idempotent: bool = True
    accept: str = "application/json"
    content: bytes | None = None
    content_type: str | None = None


def seg(value: str) -> str:
    """A path segment, percent-encoded (ids may contain ``/``)."""
    return quote(value, safe="")


def wire_time(value: TimeArg) -> str | None:
    """A datetime as RFC 3339 (naive datetimes are refused); text passes through for the server to judge."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes given to meterd must be timezone-aware")
        return value.isoformat()
    return value


def _params(**values: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key.rstrip("_")] = value.isoformat() if value.tzinfo else str(wire_time(value))
        elif value is not None:
            out[key.rstrip("_")] = str(value)
    return out


def _json(parser: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], T]:
    return lambda response: parser(json_body(response))


def _nothing(response: httpx.Response) -> None:
    return None


def _list_of(parser: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], list[T]]:
    return lambda response: [parser(x) for x in json_body(response).get("items", [])]


def _page_of(parser: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], Page[T]]:
    return lambda response: Page.parse(json_body(response), parser)


# events ------------------------------------------------------------------------------------------------
def ingest(events: Iterable[Mapping[str, Any]]) -> Call[IngestResponse]:
    """POST a batch of native records (ids make resending safe, so it is retried)."""
    records = [{k: wire_time(v) if isinstance(v, datetime) else v for k, v in e.items()} for e in events]
    content = json.dumps(records, separators=(",", ":"), allow_nan=False).encode()
    return Call("POST", "/v1/events", _json(IngestResponse.parse), content=content, content_type="application/json")


def list_events(
    meter: str | None,
    customer: str | None,
    start: TimeArg,
    end: TimeArg,
    status: str | None,
    surface: str | None,
    limit: int,
    cursor: str | None,
) -> Call[Page[Event]]:
    params = _params(
        meter=meter, customer=customer, from_=start, to=end, status=status, surface=surface, limit=limit, cursor=cursor
    )
    return Call("GET", "/v1/events", _page_of(Event.parse), params)


def get_event(event_id: str, surface: str) -> Call[EventDetail]:
    return Call("GET", f"/v1/events/{seg(event_id)}", _json(EventDetail.parse), {"surface": surface})


def void_event(event_id: str, reason: str, surface: str) -> Call[CorrectionResult]:
    return Call(
        "POST",
        f"/v1/events/{seg(event_id)}/void",
        _json(CorrectionResult.parse),
        {"surface": surface},
        {"reason": reason},
        idempotent=False,
    )


def amend_event(event_id: str, reason: str, changes: Mapping[str, Any], surface: str) -> Call[CorrectionResult]:
    event = {k: wire_time(v) if isinstance(v, datetime) else v for k, v in changes.items()}
    return Call(
        "POST",
        f"/v1/events/{seg(event_id)}/amend",
        _json(CorrectionResult.parse),
        {"surface": surface},
        {"reason": reason, "event": event},
        idempotent=False,
    )


# query -------------------------------------------------------------------------------------------------
def query_body(
    meters: Sequence[str] | str,
    start: TimeArg,
    end: TimeArg,
    *,
    window: str | None = None,
    time_zone: str | None = None,
    group_by: Sequence[str] = (),
    customers: Sequence[str] | None = None,
    filters: Sequence[DimensionFilter | Mapping[str, Any]] = (),
    aggregation: str | None = None,
    unique_dimension: str | None = None,
    take: int | None = None,
    order: str = "desc",
    dense: bool = False,
) -> dict[str, Any]:
    """The ``POST /v1/query`` body; only what is given is sent, so the server's defaults apply."""
    body: dict[str, Any] = {
        "meters": [meters] if isinstance(meters, str) else list(meters),
        "from": wire_time(start),
        "to": wire_time(end),
    }
    optional = {
        "window": window,
        "time_zone": time_zone,
        "aggregation": aggregation,
        "unique_dimension": unique_dimension,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if group_by:
        body["group_by"] = list(group_by)
    wanted: dict[str, Any] = {}
    if customers is not None:
        wanted["customers"] = list(customers)
    if filters:
        wanted["dimensions"] = [_filter(f) for f in filters]
    if wanted:
        body["filters"] = wanted
    if take is not None:
        body["take"] = {"limit": take, "order": order}
    if dense:
        body["dense"] = True
    return body


def _filter(item: DimensionFilter | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, DimensionFilter):
        return {"key": item.key, "op": item.op, "values": list(item.values)}
    return dict(item)


def query(body: dict[str, Any]) -> Call[QueryResult]:
    return Call("POST", "/v1/query", _json(QueryResult.parse), body=body)


def query_csv(body: dict[str, Any]) -> Call[str]:
    return Call("POST", "/v1/query", lambda response: response.text, body=body, accept="text/csv")


# customers ---------------------------------------------------------------------------------------------
def customer_body(
    customer_id: str | None, name: str | None, email: str | None, traits: Mapping[str, Any] | None, enabled: bool | None
) -> dict[str, Any]:
    body: dict[str, Any] = {} if customer_id is None else {"id": customer_id}
    fields = {"name": name, "email": email, "traits": None if traits is None else dict(traits), "enabled": enabled}
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def create_customer(body: dict[str, Any]) -> Call[Customer]:
    return Call("POST", "/v1/customers", _json(Customer.parse), body=body, idempotent=False)


def get_customer(customer_id: str) -> Call[Customer]:
    return Call("GET", f"/v1/customers/{seg(customer_id)}", _json(Customer.parse))


def list_customers(limit: int, cursor: str | None) -> Call[Page[Customer]]:
    return Call("GET", "/v1/customers", _page_of(Customer.parse), _params(limit=limit, cursor=cursor))


def update_customer(customer_id: str, body: dict[str, Any]) -> Call[Customer]:
    return Call("PUT", f"/v1/customers/{seg(customer_id)}", _json(Customer.parse), body=body)


def delete_customer(customer_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/customers/{seg(customer_id)}", _nothing)


# meters ------------------------------------------------------------------------------------------------
def meter_body(
    key: str | None, aggregation: str | None, unit: str | None, description: str | None, unique_dimension: str | None
) -> dict[str, Any]:
    fields = {
        "key": key,
        "aggregation": aggregation,
        "unit": unit,
        "description": description,
        "unique_dimension": unique_dimension,
    }
    return {k: v for k, v in fields.items() if v is not None}


def create_meter(body: dict[str, Any]) -> Call[Meter]:
    return Call("POST", "/v1/meters", _json(Meter.parse), body=body, idempotent=False)


def get_meter(key: str) -> Call[Meter]:
    return Call("GET", f"/v1/meters/{seg(key)}", _json(Meter.parse))


def list_meters() -> Call[list[Meter]]:
    return Call("GET", "/v1/meters", _list_of(Meter.parse))


def update_meter(key: str, body: dict[str, Any]) -> Call[Meter]:
    return Call("PUT", f"/v1/meters/{seg(key)}", _json(Meter.parse), body=body)


def delete_meter(key: str) -> Call[None]:
    return Call("DELETE", f"/v1/meters/{seg(key)}", _nothing)


# keys, ingest health -----------------------------------------------------------------------------------
def create_key(name: str, scopes: Sequence[str]) -> Call[CreatedKey]:
    return Call(
        "POST", "/v1/keys", _json(CreatedKey.parse), body={"name": name, "scopes": list(scopes)}, idempotent=False
    )


def list_keys() -> Call[list[ApiKey]]:
    return Call("GET", "/v1/keys", _list_of(ApiKey.parse))


def revoke_key(key_id: str) -> Call[ApiKey]:
    return Call("DELETE", f"/v1/keys/{seg(key_id)}", _json(ApiKey.parse))


def ingest_status(start: TimeArg, end: TimeArg) -> Call[IngestStatus]:
    return Call("GET", "/v1/ingest/status", _json(IngestStatus.parse), _params(from_=start, to=end))


def list_rejections(surface: str | None, limit: int, cursor: str | None) -> Call[Page[Rejection]]:
    return Call(
        "GET", "/v1/rejections", _page_of(Rejection.parse), _params(surface=surface, limit=limit, cursor=cursor)
    )


def delete_rejections(ids: Sequence[int | str]) -> Call[int]:
    path = "/v1/rejections/" + quote(",".join(str(i) for i in ids), safe=",")
    return Call("DELETE", path, lambda response: int(json_body(response).get("deleted", 0)))


def ready() -> Call[bool]:
    return Call("GET", "/readyz", lambda response: True)
