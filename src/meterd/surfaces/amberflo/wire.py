"""Amberflo's JSON shapes: usage queries into core query specs, series into usage reports, customers both ways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, Limits, check_dimensions, check_name
from meterd.core.models import Aggregation, Customer
from meterd.core.query import CUSTOMER, DimensionFilter, FilterOp, QuerySpec, Take
from meterd.core.series import Series, frames
from meterd.core.timeutil import MAX_MS
from meterd.core.windows import Window

CUSTOMER_ID = "customerId"
AGGREGATIONS = {"SUM": Aggregation.SUM, "COUNT": Aggregation.COUNT, "MIN": Aggregation.MIN, "MAX": Aggregation.MAX}
INTERVALS = {"HOUR": Window.HOUR, "DAY": Window.DAY, "WEEK": Window.WEEK, "MONTH": Window.MONTH}
QUERY_FIELDS = frozenset(
    {"meterApiName", "aggregation", "timeGroupingInterval", "timeRange", "groupBy", "filter", "take"}
)
CUSTOMER_FIELDS = frozenset({"customerId", "customerName", "customerEmail", "enabled", "traits"})
MAX_GROUP_BY = 8
MAX_SECONDS = MAX_MS // 1000
MAX_FILTER_VALUES = 1000


def _whole(value: object) -> int | None:
    """An integer that is not a boolean, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _choice(value: object, table: Mapping[str, Any], path: str, errors: list[FieldError]) -> Any:
    """A case-insensitive enum value (``SUM``, ``Sum`` and ``sum`` are one)."""
    found = table.get(value.upper()) if isinstance(value, str) else None
    if found is None:
        errors.append(FieldError(path, "must be one of " + ", ".join(table)))
    return found


def time_range(value: object, now: int, errors: list[FieldError]) -> tuple[int, int]:
    """``{startTimeInSeconds, endTimeInSeconds?}`` as epoch ms [start, end); no end means now."""
    if not isinstance(value, Mapping):
        errors.append(FieldError("timeRange", "is required and must be an object"))
        return 0, 1
    return seconds_range(value.get("startTimeInSeconds"), value.get("endTimeInSeconds"), now, errors, "timeRange.")


def seconds_range(start: object, end: object, now: int, errors: list[FieldError], where: str = "") -> tuple[int, int]:
    """Whole epoch seconds [start, end) as epoch ms; no end means now."""
    first = _whole(start)
    if first is None or not 0 <= first <= MAX_SECONDS:
        errors.append(FieldError(f"{where}startTimeInSeconds", "is required and must be whole epoch seconds"))
        return 0, 1
    if end is None:
        return first * 1000, max(now, first * 1000 + 1)
    last = _whole(end)
    if last is None or not first < last <= MAX_SECONDS + 1:
        errors.append(FieldError(f"{where}endTimeInSeconds", "must be whole epoch seconds after the start"))
        return first * 1000, first * 1000 + 1
    return first * 1000, last * 1000


def group_by(value: object, errors: list[FieldError]) -> tuple[str, ...]:
    """Group-by names: ``customerId`` is the customer, any other name a dimension."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > MAX_GROUP_BY:
        errors.append(FieldError("groupBy", f"must be a list of at most {MAX_GROUP_BY} names"))
        return ()
    if CUSTOMER in value:
        errors.append(FieldError("groupBy", f"{CUSTOMER!r} is reserved; group by {CUSTOMER_ID!r}"))
    return tuple(CUSTOMER if v == CUSTOMER_ID else v for v in value)


def _filter_values(key: str, value: object, errors: list[FieldError]) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        errors.append(FieldError(f"filter.{key}", "must be a string or a non-empty list of strings"))
        return ()
    if len(values) > MAX_FILTER_VALUES:
        errors.append(FieldError(f"filter.{key}", f"may list at most {MAX_FILTER_VALUES} values"))
    return tuple(values)


def filters(value: object, errors: list[FieldError]) -> tuple[tuple[str, ...] | None, tuple[DimensionFilter, ...]]:
    """``{customerId: ..., <dimension>: ...}`` (strings or lists of strings) as customers and dimension filters."""
    if value is None:
        return None, ()
    if not isinstance(value, Mapping):
        errors.append(FieldError("filter", "must be an object of name to values"))
        return None, ()
    customers: tuple[str, ...] | None = None
    dims: list[DimensionFilter] = []
    for key, raw in value.items():
        values = _filter_values(str(key), raw, errors)
        if key == CUSTOMER_ID:
            customers = values
        else:
            dims.append(DimensionFilter(str(key), FilterOp.IN, values))
    return customers, tuple(dims)


def take(value: object, errors: list[FieldError]) -> Take | None:
    """``{limit, isAscending?}``: the top ``limit`` groups by total, largest first unless ascending."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors.append(FieldError("take", "must be an object with limit and isAscending"))
        return None
    limit, ascending = _whole(value.get("limit")), value.get("isAscending", False)
    if limit is None or not 1 <= limit <= 10_000:
        errors.append(FieldError("take.limit", "must be a whole number from 1 to 10000"))
        return None
    if not isinstance(ascending, bool):
        errors.append(FieldError("take.isAscending", "must be true or false"))
        return None
    return Take(limit, descending=not ascending)


def usage_spec(body: object, now: int) -> QuerySpec:
    """The core query of one Amberflo usage query (always UTC, always a dense series)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a usage query must be a JSON object", [FieldError("", "must be an object")])
    errors: list[FieldError] = [FieldError(str(k), "is not a known field") for k in sorted(body.keys() - QUERY_FIELDS)]
    meter = body.get("meterApiName")
    if not isinstance(meter, str) or not meter:
        errors.append(FieldError("meterApiName", "is required and must be a non-empty string"))
    aggregation = _choice(body.get("aggregation"), AGGREGATIONS, "aggregation", errors)
    window = _choice(body.get("timeGroupingInterval"), INTERVALS, "timeGroupingInterval", errors)
    start, end = time_range(body.get("timeRange"), now, errors)
    groups = group_by(body.get("groupBy"), errors)
    customers, dims = filters(body.get("filter"), errors)
    top = take(body.get("take"), errors)
    if errors:
        raise InvalidInput("the usage query is invalid", errors)
    spec = QuerySpec((str(meter),), start, end, window, "UTC", groups, customers, dims, aggregation, None, top, True)
    spec.check()
    return spec


def _label(key: str) -> str:
    return CUSTOMER_ID if key == CUSTOMER else key


def _number(value: float | None) -> float:
    """Reports carry numbers only: a window with nothing measured shows 0."""
    return 0.0 if value is None else value


def client_meter(series: Series, spec: QuerySpec) -> dict[str, Any]:
    group = {"groupInfo": {_label(k): series.group.get(k) for k in spec.group_by}} if spec.group_by else None
    return {
        "group": group,
        "groupValue": _number(series.total),
        "percentageFromPrevious": series.change,
        "values": [
            {"value": _number(p.value), "secondsSinceEpochUtc": p.start // 1000, "percentageFromPrevious": p.change}
            for p in series.points
        ],
    }


def report_json(metadata: Mapping[str, Any], spec: QuerySpec, series: Sequence[Series]) -> dict[str, Any]:
    """An Amberflo usage report: the query echoed, the window starts and one client meter per group."""
    return {
        "metadata": dict(metadata),
        "secondsSinceEpochIntervals": [start // 1000 for start, _ in frames(spec)],
        "clientMeters": [client_meter(s, spec) for s in series],
    }


def customer_in(body: object, now: int, limits: Limits = DEFAULT_LIMITS) -> Customer:
    """An Amberflo customer payload as a core customer (PUT semantics: what is not given is dropped)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a customer must be a JSON object", [FieldError("", "must be an object")])
    errors = [FieldError(str(k), "is not a known field") for k in sorted(body.keys() - CUSTOMER_FIELDS)]
    customer_id = check_name(body.get("customerId"), "customerId", errors, limits.max_name)
    name, email, enabled = body.get("customerName"), body.get("customerEmail"), body.get("enabled", True)
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        errors.append(FieldError("customerName", "is required and must be a string of at most 256 characters"))
    if email is not None and (not isinstance(email, str) or len(email) > 256):
        errors.append(FieldError("customerEmail", "must be a string of at most 256 characters"))
    if not isinstance(enabled, bool):
        errors.append(FieldError("enabled", "must be true or false"))
    traits = check_dimensions(body.get("traits"), "traits", errors, limits)
    if errors:
        raise InvalidInput("the customer is invalid", errors)
    return Customer(customer_id, str(name), email, traits, bool(enabled), now, now)


def customer_json(customer: Customer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": customer.id,
        "customerId": customer.id,
        "customerName": customer.name,
        "enabled": customer.enabled,
        "traits": dict(customer.traits),
        "createTime": customer.created_at,
        "updateTime": customer.updated_at,
    }
    if customer.email is not None:
        body["customerEmail"] = customer.email
    return body
