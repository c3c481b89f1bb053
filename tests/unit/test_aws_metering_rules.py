"""AWS metering rules in the core: quantities and allocations by value, time bounds, record identity, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterd.core.awsmetering import (
    TimeRules,
    batch_record_id,
    batch_time_in_bounds,
    fingerprint,
    hour_of,
    line_events,
    meter_usage_id,
    meter_usage_in_bounds,
    parse_allocations,
    parse_batch,
    parse_meter_usage,
)
from meterd.core.errors import InvalidInput
from meterd.core.marketplace import MarketplaceError

HOUR = 3_600_000
RULES = TimeRules()
T = 1_795_330_000.25  # epoch seconds with a fraction


def meter(**fields: Any) -> dict[str, Any]:
    return {"ProductCode": "p", "Timestamp": T, "UsageDimension": "users", **fields}


def test_timestamps_keep_milliseconds_exactly() -> None:
    assert parse_meter_usage(meter(Timestamp=1704164645.678)).line.time == 1704164645678
    assert parse_meter_usage(meter(Timestamp="2024-01-02T03:04:05.678Z")).line.time == 1704164645678
    with pytest.raises(InvalidInput):
        parse_meter_usage(meter(Timestamp=-1))
    with pytest.raises(InvalidInput):
        parse_meter_usage(meter(Timestamp=True))


def test_quantities_compare_by_value() -> None:
    forms = [meter(UsageQuantity=17), meter(UsageQuantityAsDecimal="17"), meter(UsageQuantityAsDecimal="17.000")]
    assert len({fingerprint(parse_meter_usage(f).line) for f in forms}) == 1
    assert fingerprint(parse_meter_usage(meter()).line) == fingerprint(parse_meter_usage(meter(UsageQuantity=0)).line)
    assert fingerprint(parse_meter_usage(meter(UsageQuantity=18)).line) != fingerprint(parse_meter_usage(forms[0]).line)


def test_validation_errors_name_the_member() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_meter_usage({"UsageQuantity": -1, "ClientToken": ""})
    paths = {e.path for e in caught.value.errors}
    assert {"ProductCode", "ClientToken"} <= paths
    with pytest.raises(InvalidInput) as many:
        parse_batch({"ProductCode": "p", "UsageRecords": [{}] * 26})
    assert [e.path for e in many.value.errors] == ["UsageRecords"]
    with pytest.raises(InvalidInput) as record:
        parse_batch({"UsageRecords": [{"Timestamp": T, "Dimension": "d", "CustomerAWSAccountId": "x1"}]})
    assert [e.path for e in record.value.errors] == ["UsageRecords[0].CustomerAWSAccountId"]


quantities = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(quantities, min_size=1, max_size=8), delta=quantities, data=st.data())
def test_allocations_must_sum_to_the_quantity(parts: list[Decimal], delta: Decimal, data: st.DataObject) -> None:
    raw = [
        {
            "AllocatedUsageQuantityAsDecimal": format(q.normalize(), "f") if q else "0",
            "Tags": [{"Key": "bucket", "Value": str(i)}],
        }
        for i, q in enumerate(parts)
    ]
    total = sum(parts, Decimal(0))
    parsed = parse_allocations(raw, total, "decimal", "UsageAllocations")
    assert sorted(a.quantity for a in parsed) == sorted(parts)
    shuffled = data.draw(st.permutations(raw))
    assert parse_allocations(shuffled, total, "decimal", "UsageAllocations") == parsed
    if delta:
        with pytest.raises(MarketplaceError) as caught:
            parse_allocations(raw, total + delta, "decimal", "UsageAllocations")
        assert caught.value.kind == "InvalidUsageAllocationsException"


def test_allocation_forms_and_tags() -> None:
    tags = [{"Key": "k", "Value": "v"}]
    with pytest.raises(MarketplaceError, match="same type of quantity"):
        parse_allocations([{"AllocatedUsageQuantityAsDecimal": "1", "Tags": tags}], Decimal(1), "whole", "A")
    with pytest.raises(MarketplaceError, match="same type of quantity"):
        parse_allocations(
            [{"AllocatedUsageQuantity": 1}, {"AllocatedUsageQuantityAsDecimal": "0", "Tags": tags}],
            Decimal(1),
            None,
            "A",
        )
    with pytest.raises(MarketplaceError, match="unique set of tags"):
        parse_allocations([{"AllocatedUsageQuantity": 1}, {"AllocatedUsageQuantity": 0}], Decimal(1), None, "A")
    with pytest.raises(MarketplaceError) as tag:
        parse_allocations([{"AllocatedUsageQuantity": 1, "Tags": tags * 6}], Decimal(1), "whole", "A")
    assert tag.value.kind == "InvalidTagException"
    two = parse_allocations(
        [{"AllocatedUsageQuantity": 1, "Tags": [{"Key": "b", "Value": "1"}, {"Key": "a", "Value": "2"}]}],
        Decimal(1),
        "whole",
        "A",
    )
    assert two[0].tags == (("a", "2"), ("b", "1"))


def test_meter_usage_time_bounds() -> None:
    now = 1_795_330_000_000
    assert meter_usage_in_bounds(now - 6 * HOUR, now, RULES)
    assert not meter_usage_in_bounds(now - 6 * HOUR - 1, now, RULES)
    assert meter_usage_in_bounds(now + 15 * 60_000, now, RULES)
    assert not meter_usage_in_bounds(now + 15 * 60_000 + 1, now, RULES)
    assert meter_usage_in_bounds(now - 9 * HOUR, now, TimeRules(meter_lateness=10 * HOUR))


def reference_batch_ok(t: datetime, now: datetime) -> bool:
    """The documented rule, by calendar: < 24 h old, not ahead, last month only until 06:00 on the 1st."""
    if t > now + timedelta(minutes=15) or now - t >= timedelta(hours=24):
        return False
    if (t.year, t.month) == (now.year, now.month) or t > now:
        return True
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return now < first + timedelta(hours=6)


@settings(max_examples=400, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
    ),
    back=st.integers(min_value=-20 * 60_000, max_value=30 * HOUR),
    month_edge=st.booleans(),
)
def test_batch_time_rule_matches_the_calendar(now: datetime, back: int, month_edge: bool) -> None:
    if month_edge:  # put "now" in the first hours of a month, where the grace period matters
        now = now.replace(day=1, hour=now.hour % 8)
    now_ms = int(now.timestamp() * 1000)
    t = now - timedelta(milliseconds=back)
    assert batch_time_in_bounds(now_ms - back, now_ms, RULES) == reference_batch_ok(t, now)


def test_month_end_examples() -> None:
    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    march_31 = ms("2026-03-31T23:00:00")
    assert batch_time_in_bounds(march_31, ms("2026-04-01T05:59:59"), RULES)
    assert not batch_time_in_bounds(march_31, ms("2026-04-01T06:00:00"), RULES)
    assert not batch_time_in_bounds(ms("2026-04-01T00:00:00"), ms("2026-04-02T00:00:00"), RULES)
    assert batch_time_in_bounds(ms("2026-04-01T00:00:01"), ms("2026-04-02T00:00:00"), RULES)


def test_record_identity() -> None:
    line = parse_meter_usage(meter(UsageQuantity=1)).line
    later = parse_meter_usage(meter(UsageQuantity=1, Timestamp=T + 600)).line
    next_hour = parse_meter_usage(meter(UsageQuantity=1, Timestamp=T + 3600)).line
    assert hour_of(line.time) == hour_of(later.time)
    assert meter_usage_id("p", "AKIA1", line) == meter_usage_id("p", "AKIA1", later)
    assert meter_usage_id("p", "AKIA1", line) != meter_usage_id("p", "AKIA2", line)
    assert meter_usage_id("p", "AKIA1", line) != meter_usage_id("p", "AKIA1", next_hour)
    assert batch_record_id("p", "acme", line) != batch_record_id("p", "acme", later)
    assert batch_record_id("p", "acme", line) != batch_record_id("p", "globex", line)


def test_line_events() -> None:
    plain = parse_meter_usage(meter(UsageQuantityAsDecimal="2.5")).line
    [event] = line_events("rid", "p:users", "acme", 0, plain, "{}")
    assert (event.id, event.meter, event.customer, event.value, event.dimensions, event.surface) == (
        "rid",
        "p:users",
        "acme",
        2.5,
        {},
        "aws",
    )
    split = parse_meter_usage(
        meter(
            UsageQuantity=3,
            UsageAllocations=[
                {"AllocatedUsageQuantity": 1, "Tags": [{"Key": "team", "Value": "a"}]},
                {"AllocatedUsageQuantity": 2},
            ],
        )
    ).line
    events = line_events("rid", "m", "acme", 0, split, "{}")
    assert sorted((e.dimensions.get("team", ""), e.value) for e in events) == [("", 2.0), ("a", 1.0)]
    assert len({e.id for e in events}) == 2 and all(e.id.startswith("rid.") for e in events)
