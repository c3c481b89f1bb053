"""AMIE status against an independent reference: random messages with duplicates, conflicts and invalid records."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meterd.core.timeutil import format_ms
from meterd.service import Meterd
from meterd.service.amie import AmieService
from meterd.storage.memory import MemoryStore

JAN = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def record(resource: str, lrid: str, cents: int, minute: int, valid: bool) -> dict[str, Any]:
    start = JAN + minute * 60_000
    return {
        "Username": "u",
        "LocalProjectID": "p",
        "LocalRecordID": lrid,
        "Resource": resource,
        "SubmitTime": format_ms(start),
        "StartTime": format_ms(start),
        "EndTime": format_ms(start + 300_000),
        "Charge": f"{cents / 100:.2f}" if valid else "n/a",
        "Attributes": {"NodeCount": 1},
    }


records = st.builds(
    record,
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([f"j{i}" for i in range(8)]),
    st.integers(min_value=0, max_value=100_000),
    st.integers(min_value=0, max_value=60 * 24 * 3),
    st.booleans(),
)


def reference(sent: list[dict[str, Any]], lo: int, hi: int) -> dict[str, tuple[int, int, float]]:
    """Per resource: (loaded, failed, charge) for usage time in [lo, hi), computed straight from the records."""
    seen: dict[tuple[str, str], str] = {}
    out: dict[str, list[Any]] = {}
    for rec in sent:
        start = datetime.fromisoformat(rec["StartTime"].replace("Z", "+00:00"))
        t = int(start.timestamp() * 1000)
        key = (rec["Resource"], rec["LocalRecordID"])
        content = json.dumps(rec, sort_keys=True)
        if rec["Charge"] == "n/a":
            outcome = "failed"
        elif key not in seen:
            seen[key], outcome = content, "loaded"
        else:
            outcome = "duplicate" if seen[key] == content else "failed"
        if outcome == "duplicate" or not lo <= t < hi:
            continue
        row = out.setdefault(rec["Resource"], [0, 0, 0.0])
        if outcome == "loaded":
            row[0] += 1
            row[2] += float(rec["Charge"])
        else:
            row[1] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


@settings(max_examples=40, deadline=None)
@given(
    messages=st.lists(st.lists(records, min_size=1, max_size=12), min_size=1, max_size=3),
    bounds=st.tuples(st.integers(0, 3 * 86_400_000), st.integers(0, 3 * 86_400_000)),
)
def test_status_equals_reference(messages: list[list[dict[str, Any]]], bounds: tuple[int, int]) -> None:
    lo, hi = JAN + min(bounds), JAN + max(bounds) + 1

    async def run() -> list[dict[str, Any]]:
        service = AmieService(Meterd(MemoryStore()), 10_000)
        for message in messages:
            await service.send("t", {"UsageType": "Compute", "Records": message}, "")
        return await service.status("t", lo, hi)

    got = {r["Resource"]: (r["LoadedRecordCount"], r["FailedJobCount"], r["TotalCharge"]) for r in asyncio.run(run())}
    expected = reference([r for m in messages for r in m], lo, hi)
    assert set(got) == set(expected)
    for resource, (loaded, failed, charge) in expected.items():
        assert got[resource][:2] == (loaded, failed)
        assert abs(got[resource][2] - charge) < 1e-6
