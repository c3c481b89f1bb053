"""``meterd usage USER START STOP``: the bin/vault-usage report — a user's events per product with durations.

It asks the server's vault surface (``GET /users/USER/usage/START/STOP``, HTTP Basic with the API key as the
password, exactly as the Ruby client does), then prints each product's events with the seconds each one
counts inside the window (an open event runs up to the window's end or now, whichever is first), the totals
per product and overall, and flags inconsistent events: a stop before the start or a time it cannot read
(``ERROR``, exit status 1), and events still open (``open``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click
import httpx

from meterd.cli.output import emit, err
from meterd.core.timeutil import TimeParseError, format_seconds, now_ms, parse_time, to_ms

WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass
class Line:
    """One event of the report."""

    id: str
    consumer: str
    start_time: str | None
    stop_time: str | None
    seconds: float
    note: str = ""


@dataclass
class ProductUsage:
    product: str
    lines: list[Line] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(line.seconds for line in self.lines)


def _wire_ms(value: object) -> int | None:
    if not isinstance(value, str) or not WIRE_TIME.match(value):
        raise ValueError("not a time")
    return to_ms(datetime.fromisoformat(value[:-1] + "+00:00"))


def line_for(event: dict[str, Any], start: int, stop: int, now: int) -> Line:
    """An event's line: its seconds inside ``[start, stop)`` and what is wrong with it, if anything."""
    first, last = event.get("start_time"), event.get("stop_time")
    line = Line(str(event.get("id")), str(event.get("consumer")), _text(first), _text(last), 0.0)
    try:
        began = _wire_ms(first)
        ended = None if last is None else _wire_ms(last)
    except ValueError:
        line.note = "ERROR: unreadable start_time or stop_time"
        return line
    assert began is not None
    if ended is not None and ended < began:
        line.note = "ERROR: start_time is after stop_time"
        return line
    if ended is None:
        line.note = "open"
    high = min(stop, ended if ended is not None else min(stop, now))
    line.seconds = max(0, high - max(began, start)) / 1000
    return line


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def summarize(events: Sequence[dict[str, Any]], start: int, stop: int, now: int) -> list[ProductUsage]:
    """Events grouped by product (sorted), each with its lines in the order the server sent them."""
    products: dict[str, ProductUsage] = {}
    for event in events:
        name = str(event.get("product"))
        products.setdefault(name, ProductUsage(name)).lines.append(line_for(event, start, stop, now))
    return [products[name] for name in sorted(products)]


def duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def wire_time(text: str, name: str) -> tuple[str, int]:
    """A date or RFC 3339 time (no zone means UTC) as the vault wire text and epoch ms, to the second."""
    try:
        ms = parse_time(text, name, require_zone=False) // 1000 * 1000
    except TimeParseError as exc:
        raise click.BadParameter(exc.error.message, param_hint=name) from None
    return format_seconds(ms), ms


def split_credentials(url: str, api_key: str | None) -> tuple[str, str]:
    """The base URL without userinfo, and the key (``--api-key``, else the password in the URL)."""
    parts = urlsplit(url)
    key = api_key or parts.password
    if not key:
        raise click.UsageError("give the API key with --api-key, METERD_API_KEY or as the password in the URL")
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), key


@click.command()
@click.argument("user")
@click.argument("start")
@click.argument("stop")
@click.option("--exclude", "excludes", multiple=True, help="A product to leave out; repeatable or comma-separated.")
@click.option(
    "--url",
    envvar=["METERD_URL", "VAULT_USAGE_URL"],
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Server URL (or METERD_URL / VAULT_USAGE_URL; http://user:KEY@host:port works too).",
)
@click.option("--api-key", envvar="METERD_API_KEY", default=None, help="Or METERD_API_KEY.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def usage(
    user: str, start: str, stop: str, excludes: tuple[str, ...], url: str, api_key: str | None, as_json: bool
) -> None:
    """USER's usage events between START and STOP (dates or RFC 3339 times, UTC), per product with totals."""
    base, key = split_credentials(url, api_key)
    (start_text, start_ms), (stop_text, stop_ms) = wire_time(start, "START"), wire_time(stop, "STOP")
    if stop_ms <= start_ms:
        raise click.BadParameter("must be after START", param_hint="STOP")
    products = ",".join(p.strip() for item in excludes for p in item.split(",") if p.strip())
    params = {"exclude": products} if products else {}
    try:
        response = httpx.get(
            f"{base}/users/{quote(user, safe=':@.')}/usage/{start_text}/{stop_text}",
            params=params,
            auth=("meterd", key),
            timeout=60,
        )
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if response.status_code != 200:
        raise click.ClickException(f"the server answered {response.status_code}: {response.text[:500]}")
    report = summarize(response.json().get("events", []), start_ms, stop_ms, now_ms())
    errors = sum(1 for p in report for line in p.lines if line.note.startswith("ERROR"))
    if as_json:
        print(json.dumps(_as_json(user, start_text, stop_text, report, errors), indent=2))
    else:
        _print(user, start_text, stop_text, report)
    if errors:
        err(f"{errors} inconsistent event(s)")
        sys.exit(1)


def _as_json(user: str, start: str, stop: str, report: list[ProductUsage], errors: int) -> dict[str, Any]:
    return {
        "user": user,
        "start_time": start,
        "stop_time": stop,
        "products": [
            {"product": p.product, "seconds": p.seconds, "events": [vars(line) for line in p.lines]} for p in report
        ],
        "total_seconds": sum(p.seconds for p in report),
        "errors": errors,
    }


def _print(user: str, start: str, stop: str, report: list[ProductUsage]) -> None:
    columns = ["id", "consumer", "start_time", "stop_time", "duration", "note"]
    for product in report:
        rows = [{**vars(line), "duration": duration(line.seconds)} for line in product.lines]
        emit(rows, columns, title=product.product)
    totals = [
        {
            "product": p.product,
            "events": len(p.lines),
            "duration": duration(p.seconds),
            "hours": f"{p.seconds / 3600:.2f}",
        }
        for p in report
    ]
    grand = sum(p.seconds for p in report)
    totals.append(
        {
            "product": "TOTAL",
            "events": sum(len(p.lines) for p in report),
            "duration": duration(grand),
            "hours": f"{grand / 3600:.2f}",
        }
    )
    emit(totals, ["product", "events", "duration", "hours"], title=f"usage of {user} from {start} to {stop}")
