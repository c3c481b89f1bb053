"""Property: an OpenMeter meter query equals the independent reference over random CloudEvent histories.

Histories resend events (same source + id, same or other content), send events without a usable value, and
define the meter part-way through, so the backfill, dedup and derivation all take part. Queries mix windows,
time zones across the March 2024 DST change, group-by, subject and group-by filters.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store
from tests.surfaces.openmeter.reference import normalise, rows

BASE = datetime(2024, 3, 30, 12, tzinfo=UTC)
SOURCES = ["s1", "s2"]


def make_event(n: int, source: int, subject: str, minute: int, value: Any, model: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if value is not None:
        data["v"] = value
    if model is not None:
        data["m"] = model
    when = BASE + timedelta(minutes=minute, seconds=n + 10 * source)  # distinct per (source, id): LATEST has no ties
    return {
        "id": f"e{n}",
        "source": SOURCES[source],
        "specversion": "1.0",
        "type": "t",
        "subject": subject,
        "time": when.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


event_st = st.builds(
    make_event,
    n=st.integers(0, 9),
    source=st.integers(0, 1),
    subject=st.sampled_from(["acme", "beta"]),
    minute=st.integers(0, 3 * 24 * 60),
    value=st.one_of(st.integers(0, 9), st.integers(0, 9).map(str), st.none()),
    model=st.sampled_from(["a", "b", None]),
)
meter_st = st.builds(
    lambda agg: {"slug": "m", "eventType": "t", "aggregation": agg, "valueProperty": "$.v", "groupBy": {"m": "$.m"}},
    agg=st.sampled_from(["SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"]),
)
query_st = st.builds(
    lambda window, tz, group_by, subject, flt, start_h, len_h: {
        "from": (BASE + timedelta(hours=start_h)).isoformat().replace("+00:00", "Z"),
        "to": (BASE + timedelta(hours=start_h + len_h)).isoformat().replace("+00:00", "Z"),
        **({"windowSize": window} if window else {}),
        **({"windowTimeZone": tz} if tz else {}),
        **({"groupBy": group_by} if group_by else {}),
        **({"subject": subject} if subject else {}),
        **({"filterGroupBy": flt} if flt else {}),
    },
    window=st.sampled_from([None, "MINUTE", "HOUR", "DAY", "MONTH"]),
    tz=st.sampled_from([None, "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    group_by=st.sampled_from([[], ["subject"], ["m"], ["subject", "m"]]),
    subject=st.sampled_from([None, ["acme"], ["acme", "beta"]]),
    flt=st.sampled_from([None, {"m": ["a"]}, {"m": ["a", "b"]}]),
    start_h=st.integers(-12, 48),
    len_h=st.integers(1, 72),
)


async def run(
    batches: list[list[dict[str, Any]]], define_at: int, meter: dict[str, Any], q: dict[str, Any], url: str
) -> Any:
    app = create_app(Settings(database_url=url), store=create_store(url))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
            for index, batch in enumerate(batches):
                if index == define_at:
                    assert (await c.post("/api/v1/meters", json=meter)).status_code == 201
                body = json.dumps(batch)
                r = await c.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
                assert r.status_code == 204, r.text
            if define_at >= len(batches):
                assert (await c.post("/api/v1/meters", json=meter)).status_code == 201
            r = await c.post("/api/v1/meters/m/query", json=q)
            assert r.status_code == 200, r.text
            return normalise(r.json()["data"])


def database_urls(tmp: Path) -> list[str]:
    urls = ["memory://"]
    try:
        import meterd.storage.sqlite  # noqa: F401

        urls.append(str(tmp / "openmeter.db"))
    except ImportError:
        pass
    return urls


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(event_st, min_size=1, max_size=8), min_size=1, max_size=4),
    define_at=st.integers(0, 4),
    meter=meter_st,
    q=query_st,
)
def test_meter_query_equals_reference(
    batches: list[list[dict[str, Any]]], define_at: int, meter: dict[str, Any], q: dict[str, Any]
) -> None:
    expected = rows([e for b in batches for e in b], meter, q)
    with tempfile.TemporaryDirectory() as tmp:
        for url in database_urls(Path(tmp)):
            assert asyncio.run(run(batches, define_at, meter, q, url)) == expected, url
