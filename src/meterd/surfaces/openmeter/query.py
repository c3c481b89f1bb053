"""OpenMeter meter queries: parameters (query string or JSON body) into core query specs, rows into JSON or CSV."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from meterd.core.cloudevents import MeterDefinition
from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import check_time
from meterd.core.models import Customer, Scalar
from meterd.core.query import CUSTOMER, MAX_RANGE_WINDOWS, DimensionFilter, FilterOp, QuerySpec, Row
from meterd.core.timeutil import MAX_MS
from meterd.core.windows import Window
from meterd.surfaces.openmeter.wire import rfc3339

SUBJECT = "subject"
WINDOWS = {"MINUTE": Window.MINUTE, "HOUR": Window.HOUR, "DAY": Window.DAY, "WEEK": Window.WEEK, "MONTH": Window.MONTH}
OPERATORS = {"$eq": FilterOp.EQ, "$ne": FilterOp.NE, "$in": FilterOp.IN, "$nin": FilterOp.NIN}
MAX_LIST = 100
MAX_FILTER_TEXT = 8192
_DEEP = re.compile(r"^filterGroupBy\[([^\]]+)\]$")


@dataclass(slots=True)
class MeterQuery:
    """What an OpenMeter query asks, before it meets its meter."""

    start: int | None = None
    end: int | None = None
    window: Window = Window.NONE
    window_name: str | None = None
    time_zone: str = "UTC"
    subjects: tuple[str, ...] | None = None
    customers: tuple[str, ...] | None = None
    filter_group_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    advanced: dict[str, Any] = field(default_factory=dict)
    group_by: tuple[str, ...] = ()


def _strings(value: object, path: str, errors: list[FieldError]) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or len(values) > MAX_LIST:
        errors.append(FieldError(path, f"must be a list of at most {MAX_LIST} strings"))
        return ()
    return tuple(values)


def _filter_map(text: str, errors: list[FieldError]) -> dict[str, Any]:
    """``filterGroupBy`` or ``advancedMeterGroupByFilters`` sent as one value: JSON, or the Python dict literal
    that openmeter 1.0.0b236 actually puts on the wire (``{'region': 'eu'}``)."""
    if len(text) > MAX_FILTER_TEXT:
        errors.append(FieldError("filterGroupBy", "is too long"))
        return {}
    try:
        parsed: object = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            parsed = None
    if not isinstance(parsed, dict):
        errors.append(FieldError("filterGroupBy", "must be an object of group-by key to value"))
        return {}
    return parsed


def _common(query: MeterQuery, raw: Mapping[str, Any], errors: list[FieldError]) -> MeterQuery:
    """Fields read the same way from a query string and a body."""
    if raw.get("from") is not None:
        query.start = check_time(raw["from"], "from", errors)
    if raw.get("to") is not None:
        query.end = check_time(raw["to"], "to", errors)
    if query.start is not None and query.end is not None and query.end <= query.start:
        errors.append(FieldError("to", "must be after from"))
    size = raw.get("windowSize")
    if size is not None:
        window = WINDOWS.get(str(size).upper())
        if window is None:
            errors.append(FieldError("windowSize", "must be one of " + ", ".join(WINDOWS)))
        else:
            query.window, query.window_name = window, str(size).upper()
    zone = raw.get("windowTimeZone")
    if zone is not None:
        if not isinstance(zone, str) or not zone:
            errors.append(FieldError("windowTimeZone", "must be an IANA time zone name"))
        else:
            query.time_zone = zone
    return query


def from_params(items: Sequence[tuple[str, str]]) -> MeterQuery:
    """A query string (repeated ``subject``/``groupBy``/``filterCustomerId``; ``filterGroupBy[key]=value``)."""
    errors: list[FieldError] = []
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    deep: dict[str, list[str]] = {}
    for name, value in items:
        match = _DEEP.match(name)
        if match:
            deep.setdefault(match.group(1), []).append(value)
        elif name in ("subject", "groupBy", "filterCustomerId"):
            lists.setdefault(name, []).append(value)
        else:
            single[name] = value
    query = _common(MeterQuery(), single, errors)
    if "filterGroupBy" in single:
        for key, value in _filter_map(single["filterGroupBy"], errors).items():
            deep.setdefault(str(key), []).extend(_strings(value, f"filterGroupBy.{key}", errors))
    query.filter_group_by = {k: tuple(v) for k, v in deep.items()}
    if "advancedMeterGroupByFilters" in single:
        query.advanced = _filter_map(single["advancedMeterGroupByFilters"], errors)
    query.subjects = _list(lists, "subject", errors)
    query.customers = _list(lists, "filterCustomerId", errors)
    query.group_by = _list(lists, "groupBy", errors) or ()
    if errors:
        raise InvalidInput("the query is invalid", errors)
    return query


def _list(lists: Mapping[str, list[str]], name: str, errors: list[FieldError]) -> tuple[str, ...] | None:
    if name not in lists:
        return None
    return _strings(lists[name], name, errors)


def from_body(body: object) -> MeterQuery:
    """``MeterQueryRequest`` (the POST form): the same fields as JSON, ``filterGroupBy`` mapping to lists."""
    if not isinstance(body, Mapping):
        raise InvalidInput("a query must be a JSON object", [FieldError("", "must be an object")])
    errors: list[FieldError] = []
    query = _common(MeterQuery(), body, errors)
    for name in ("subject", "filterCustomerId", "groupBy"):
        if body.get(name) is not None:
            values = _strings(body[name], name, errors)
            if name == "subject":
                query.subjects = values
            elif name == "filterCustomerId":
                query.customers = values
            else:
                query.group_by = values
    raw_filters = body.get("filterGroupBy") or {}
    if not isinstance(raw_filters, Mapping):
        errors.append(FieldError("filterGroupBy", "must be an object of key to values"))
    else:
        query.filter_group_by = {str(k): _strings(v, f"filterGroupBy.{k}", errors) for k, v in raw_filters.items()}
    advanced = body.get("advancedMeterGroupByFilters") or {}
    if not isinstance(advanced, Mapping):
        errors.append(FieldError("advancedMeterGroupByFilters", "must be an object"))
    else:
        query.advanced = dict(advanced)
    if errors:
        raise InvalidInput("the query is invalid", errors)
    return query


def _advanced(key: str, condition: object, errors: list[FieldError]) -> list[DimensionFilter]:
    where = f"advancedMeterGroupByFilters.{key}"
    if not isinstance(condition, Mapping) or not condition:
        errors.append(FieldError(where, "must be an object of operators"))
        return []
    out: list[DimensionFilter] = []
    for op, operand in condition.items():
        if op not in OPERATORS:
            errors.append(FieldError(f"{where}.{op}", "is not supported; use $eq, $ne, $in or $nin"))
            continue
        many = OPERATORS[op] in (FilterOp.IN, FilterOp.NIN)
        values = _strings(operand, f"{where}.{op}", errors) if many else _strings([operand], f"{where}.{op}", errors)
        out.append(DimensionFilter(key, OPERATORS[op], values))
    return out


def spec_of(query: MeterQuery, definition: MeterDefinition) -> QuerySpec:
    """The core query: ``subject`` is the customer; group-by and filter keys must be the meter's group-by keys."""
    errors: list[FieldError] = []
    keys = {key for key, _ in definition.group_by}
    group_by: list[str] = []
    for name in query.group_by:
        if name != SUBJECT and name not in keys:
            errors.append(FieldError("groupBy", f"invalid group by: {name}"))
        elif (CUSTOMER if name == SUBJECT else name) not in group_by:
            group_by.append(CUSTOMER if name == SUBJECT else name)
    customers = query.subjects
    if query.customers is not None:
        customers = query.customers if customers is None else tuple(c for c in customers if c in query.customers)
    if customers is not None and CUSTOMER not in group_by:
        group_by.append(CUSTOMER)  # filtering by subject also groups by it, as OpenMeter does
    filters: list[DimensionFilter] = []
    for key, values in query.filter_group_by.items():
        if key not in keys:
            errors.append(FieldError("filterGroupBy", f"invalid group by filter: {key}"))
        filters.append(DimensionFilter(key, FilterOp.IN, values))
    for key, condition in query.advanced.items():
        if key not in keys:
            errors.append(FieldError("advancedMeterGroupByFilters", f"invalid group by filter: {key}"))
        filters.extend(_advanced(str(key), condition, errors))
    if errors:
        raise InvalidInput("the query is invalid", errors)
    start = query.start if query.start is not None else 0
    end = query.end if query.end is not None else MAX_MS + 1
    spec = QuerySpec(
        (definition.slug,), start, end, query.window, query.time_zone, tuple(group_by), customers, tuple(filters)
    )
    spec.check()
    return spec


Extents = dict[tuple[Scalar, ...], tuple[int, int]]
EXTENT_WINDOWS = ((Window.MINUTE, 60_000), (Window.HOUR, 3_600_000), (Window.DAY, 86_400_000))


def probe_spec(spec: QuerySpec) -> QuerySpec:
    """Month windows over the spec's range — few enough even unbounded — to find where its usage lies."""
    return replace(spec, window=Window.MONTH, dense=False, take=None)


def extents(rows: Sequence[Row], group_by: Sequence[str]) -> Extents:
    """Per group, the start of its first window and the end of its last."""
    out: Extents = {}
    for row in rows:
        key = tuple(row.group.get(k) for k in group_by)
        low, high = out.get(key, (row.start, row.end))
        out[key] = (min(low, row.start), max(high, row.end))
    return out


def span(found: Extents) -> tuple[int, int] | None:
    """The range every group's usage lies in, if there is any usage."""
    if not found:
        return None
    return min(low for low, _ in found.values()), max(high for _, high in found.values())


def extent_spec(spec: QuerySpec, low: int, high: int) -> QuerySpec | None:
    """The finest windows (minute, hour, day) over [low, high) the engine allows, for per-group extents."""
    for window, width in EXTENT_WINDOWS:
        if (high - low) // width + 2 <= MAX_RANGE_WINDOWS:
            return replace(spec, start=low, end=high, window=window, dense=False, take=None)
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    """Rows as OpenMeter shows them: window bounds, subject and group-by labels."""

    start: int
    end: int
    subject: str | None
    group_by: dict[str, str | None]
    value: float


def answers(query: MeterQuery, spec: QuerySpec, rows: Sequence[Row], spans: Extents) -> list[Answer]:
    """Rows in OpenMeter's order (window, then subject, then group-by values); unbounded ranges use the extents."""
    labels = [k for k in spec.group_by if k != CUSTOMER]
    out: list[Answer] = []
    for row in rows:
        start, end = row.start, row.end
        if spec.window is Window.NONE:
            span = spans.get(tuple(row.group.get(k) for k in spec.group_by), (row.start, row.end))
            start = query.start if query.start is not None else span[0]
            end = query.end if query.end is not None else span[1]
        subject = row.group.get(CUSTOMER) if CUSTOMER in spec.group_by else None
        group = {k: None if row.group.get(k) is None else str(row.group[k]) for k in labels}
        out.append(Answer(start, end, None if subject is None else str(subject), group, row.value or 0.0))
    out.sort(key=lambda a: (a.start, a.subject or "", tuple((v is None, v or "") for v in a.group_by.values())))
    return out


def result_json(query: MeterQuery, items: Sequence[Answer]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": rfc3339(query.start) if query.start is not None else None,
        "to": rfc3339(query.end) if query.end is not None else None,
        "windowSize": query.window_name,
        "data": [
            {
                "value": a.value,
                "windowStart": rfc3339(a.start),
                "windowEnd": rfc3339(a.end),
                "subject": a.subject,
                "customerId": a.subject,
                "groupBy": a.group_by,
            }
            for a in items
        ],
    }
    return {k: v for k, v in body.items() if v is not None}


def result_csv(spec: QuerySpec, items: Sequence[Answer], customers: Mapping[str, Customer]) -> str:
    """OpenMeter's CSV: window_start, window_end, subject, customer_name, customer_email, group-by keys, value."""
    labels = [k for k in spec.group_by if k != CUSTOMER]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["window_start", "window_end", "subject", "customer_name", "customer_email", *labels, "value"])
    for a in items:
        customer = customers.get(a.subject) if a.subject is not None else None
        name = customer.name or "" if customer is not None else ""
        email = customer.email or "" if customer is not None else ""
        groups = [a.group_by.get(k) or "" for k in labels]
        row = [rfc3339(a.start), rfc3339(a.end), a.subject or "", name, email, *groups, f"{a.value:f}"]
        writer.writerow(row)
    return out.getvalue()
