"""What a usage view asks for (range, window, zone, group, filters), read from a page's query string.

A view turns into the very JSON body ``POST /v1/query`` takes, so a chart, its CSV download and the API
answer the same question. Problems are collected as field errors for the form, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Scalar
from meterd.core.query import CUSTOMER
from meterd.core.ranges import DAY_MS, HOUR_MS, MAX_CHART_WINDOWS, SPANS, aligned_range, window_count
from meterd.core.timeutil import TimeParseError, format_ms, parse_time
from meterd.core.windows import Window, zone

NAME = re.compile(r"^[A-Za-z0-9_.:\-/@]{1,128}$")
OPS = ("eq", "ne", "in", "nin")
FILTER_ROWS = 2
MAX_TOP = 50
DEFAULT_WINDOW = {"1h": Window.MINUTE, "6h": Window.MINUTE, "24h": Window.HOUR, "7d": Window.HOUR,
                  "30d": Window.DAY, "90d": Window.DAY}


@dataclass(frozen=True, slots=True)
class DimFilter:
    key: str
    op: str
    values: str


@dataclass(slots=True)
class UsageView:
    """A resolved view: absolute [start, end) and everything the query needs; ``errors`` for the form."""

    range: str
    start: int
    end: int
    window: Window
    time_zone: str = "UTC"
    group: str = ""
    customers: tuple[str, ...] = ()
    filters: tuple[DimFilter, ...] = ()
    top: int = 10
    errors: list[FieldError] = field(default_factory=list)

    def params(self) -> dict[str, str]:
        """The view as absolute query-string parameters (a link to it shows the same data later)."""
        params = {"range": "custom", "from": format_ms(self.start), "to": format_ms(self.end),
                  "window": self.window.value, "tz": self.time_zone, "group": self.group,
                  "customers": ",".join(self.customers), "top": str(self.top)}
        for index, f in enumerate(self.filters, start=1):
            params.update({f"f{index}_key": f.key, f"f{index}_op": f.op, f"f{index}_values": f.values})
        return params

    def query_body(self, meters: tuple[str, ...], window: Window | None = None, dense: bool = True) -> dict[str, Any]:
        """The ``POST /v1/query`` body of this view for ``meters`` (all when empty)."""
        body: dict[str, Any] = {"meters": list(meters), "from": format_ms(self.start), "to": format_ms(self.end),
                                "window": (window or self.window).value, "time_zone": self.time_zone}
        if self.group:
            body["group_by"] = [self.group]
            body["take"] = {"limit": self.top, "order": "desc"}
        filters: dict[str, Any] = {}
        if self.customers:
            filters["customers"] = list(self.customers)
        dims = [dimension_filter(f) for f in self.filters]
        if dims:
            filters["dimensions"] = dims
        if filters:
            body["filters"] = filters
        body["dense"] = dense
        return body


def candidates(text: str) -> list[Scalar]:
    """The values a form entry may mean: the text itself, and the number or boolean it spells."""
    found: list[Scalar] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        found.append(item)
        if item in ("true", "false"):
            found.append(item == "true")
            continue
        try:
            number = float(item)
        except ValueError:
            continue
        found.append(int(number) if number.is_integer() and "." not in item else number)
    return found


def dimension_filter(f: DimFilter) -> dict[str, Any]:
    """A form filter as a query filter: equality matches the text or the number it spells."""
    op = {"eq": "in", "ne": "nin"}.get(f.op, f.op)
    return {"key": f.key, "op": op, "values": candidates(f.values)}


def _time(params: Mapping[str, str], name: str, errors: list[FieldError]) -> int | None:
    try:
        return parse_time(params.get(name, "").strip(), name)
    except TimeParseError as exc:
        errors.append(exc.error)
        return None


def _window_for(span: int) -> Window:
    return Window.MINUTE if span <= 6 * HOUR_MS else Window.HOUR if span <= 8 * DAY_MS else Window.DAY


def parse_view(params: Mapping[str, str], now: int, default_range: str = "24h") -> UsageView:
    """Read a view from query parameters; anything invalid becomes a field error and a safe default."""
    errors: list[FieldError] = []
    chosen = params.get("range") or default_range
    tz = (params.get("tz") or "UTC").strip()
    try:
        zone(tz)
    except InvalidInput:
        errors.append(FieldError("tz", f"unknown IANA time zone {tz[:64]!r}"))
        tz = "UTC"
    window_text = params.get("window", "")
    window: Window | None = None
    start: int | None = None
    end: int | None = None
    if window_text:
        try:
            window = Window(window_text)
        except ValueError:
            errors.append(FieldError("window", "must be one of none, minute, hour, day, week, month"))
    if chosen == "custom":
        start, end = _time(params, "from", errors), _time(params, "to", errors)
        if start is None or end is None or end <= start:
            if start is not None and end is not None:
                errors.append(FieldError("to", "must be after from"))
            chosen, start, end = default_range, None, None
        else:
            window = window or _window_for(end - start)
    if chosen != "custom" and chosen not in SPANS:
        errors.append(FieldError("range", "pick one of the listed ranges"))
        chosen = default_range
    if start is None or end is None or chosen != "custom":
        window = window or DEFAULT_WINDOW[chosen]
        start, end = aligned_range(now, SPANS[chosen], window, tz)
    assert window is not None
    if window_count(start, end, window, tz) > MAX_CHART_WINDOWS:
        errors.append(FieldError("window", f"the range has more than {MAX_CHART_WINDOWS} windows; pick a coarser one"))
        window = next(w for w in (Window.HOUR, Window.DAY, Window.MONTH, Window.NONE)
                      if window_count(start, end, w, tz) <= MAX_CHART_WINDOWS)
    group = (params.get("group") or "").strip()
    if group and not NAME.match(group):
        errors.append(FieldError("group", "must be 'customer' or a dimension name"))
        group = ""
    customers = tuple(c.strip() for c in (params.get("customers") or "").split(",") if c.strip())
    if len(customers) > 100 or not all(NAME.match(c) for c in customers):
        errors.append(FieldError("customers", "must be up to 100 customer ids, separated by commas"))
        customers = ()
    return UsageView(chosen, start, end, window, tz, group, customers, _filters(params, errors),
                     _top(params, errors), errors)


def _filters(params: Mapping[str, str], errors: list[FieldError]) -> tuple[DimFilter, ...]:
    found: list[DimFilter] = []
    for index in range(1, FILTER_ROWS + 1):
        key = (params.get(f"f{index}_key") or "").strip()
        if not key:
            continue
        op = params.get(f"f{index}_op") or "eq"
        values = (params.get(f"f{index}_values") or "").strip()
        if not NAME.match(key) or key == CUSTOMER or op not in OPS or len(values) > 2000:
            errors.append(FieldError(f"f{index}_key", "needs a dimension name, an operator and values"))
            continue
        found.append(DimFilter(key, op, values))
    return tuple(found)


def _top(params: Mapping[str, str], errors: list[FieldError]) -> int:
    text = params.get("top") or "10"
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        errors.append(FieldError("top", f"must be a whole number from 1 to {MAX_TOP}"))
        return 10
    return int(text)
