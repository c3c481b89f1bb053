"""Helpers for dashboard tests: signing in over HTTP, seeding data, and reference computations."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

HOUR = 3600
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def form_token(html: str) -> str:
    found = TOKEN.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def page_csrf(html: str) -> str:
    found = META.search(html)
    assert found is not None, "the page has no CSRF meta tag"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    """Sign in through the form as a browser would; returns the POST's answer (a 303 when it worked)."""
    shown = await client.get("/ui/login")
    return await client.post(
        "/ui/login", data={"csrf_token": form_token(shown.text), "api_key": secret, "next": "/ui/"}
    )


def seed_events(now_s: float) -> list[dict[str, Any]]:
    """Events spread over the last 23 hours: api_calls for three customers, storage_gb with a region."""
    customers = ("acme", "globex", "initech")
    events: list[dict[str, Any]] = []
    for hour in range(23):
        t = now_s - hour * HOUR - 90
        for index, customer in enumerate(customers):
            if (hour + index) % 4 == 3:
                continue
            events.append(
                {
                    "id": f"call-{hour}-{customer}",
                    "meter": "api_calls",
                    "customer": customer,
                    "time": t,
                    "value": (hour % 5 + 1) * (3 - index),
                    "dimensions": {"region": "eu" if hour % 2 else "us"},
                }
            )
        if hour % 3 == 0:
            events.append(
                {
                    "id": f"disk-{hour}",
                    "meter": "storage_gb",
                    "customer": "acme",
                    "time": t - 30,
                    "value": 10 + hour,
                    "dimensions": {"region": "eu"},
                }
            )
    return events


def hour_start(seconds: float, tz: str) -> int:
    """Start (epoch seconds) of the hour holding ``seconds`` in zone ``tz``."""
    local = datetime.fromtimestamp(seconds, UTC).astimezone(ZoneInfo(tz))
    return int(local.replace(minute=0, second=0, microsecond=0).timestamp())


def hourly_by_customer(events: list[dict[str, Any]], meter: str, tz: str) -> dict[str, dict[int, float]]:
    """Reference: sum of values per customer per local hour."""
    table: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        if e["meter"] == meter:
            table[e["customer"]][hour_start(e["time"], tz)] += e["value"]
    return {c: dict(v) for c, v in table.items()}


def totals(events: list[dict[str, Any]], meter: str, customer: str | None = None) -> float:
    return float(sum(e["value"] for e in events if e["meter"] == meter and customer in (None, e["customer"])))
