"""Meter records: validation and whole-record identity (any differing attribute is another record)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.meter_records import parse_meter_record

R = {
    "uniqueId": "u",
    "meterApiName": "m",
    "meterValue": 1,
    "customerId": "c",
    "meterTimeInMillis": 1,
    "dimensions": {"d": "x"},
}


def ident(record: object) -> str:
    return parse_meter_record(record, surface="amberflo", raw="{}").id


def test_same_record_same_id_and_key_order_does_not_matter() -> None:
    assert ident(R) == ident(dict(reversed(list(R.items()))))
    assert ident({**R, "meterValue": 1.0}) == ident(R)  # 1 and 1.0 are one value


@given(
    st.sampled_from(["uniqueId", "meterApiName", "meterValue", "customerId", "meterTimeInMillis", "dimensions"]),
    st.integers(2, 10**6),
)
def test_any_differing_attribute_is_another_record(field: str, n: int) -> None:
    changed = {
        "uniqueId": str(n),
        "meterApiName": f"m{n}",
        "meterValue": n,
        "customerId": f"c{n}",
        "meterTimeInMillis": n,
        "dimensions": {"d": str(n)},
    }[field]
    assert ident({**R, field: changed}) != ident(R)


def test_without_unique_id_the_content_decides() -> None:
    bare = {k: v for k, v in R.items() if k != "uniqueId"}
    assert ident(bare) == ident(dict(bare)) != ident(R)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"meterTimeInMillis": 0}, "meterTimeInMillis"),
        ({"meterTimeInMillis": 1.5}, "meterTimeInMillis"),
        ({"meterTimeInMillis": "1"}, "meterTimeInMillis"),
        ({"meterValue": float("inf")}, "meterValue"),
        ({"uniqueId": 7}, "uniqueId"),
        ({"values": {}}, "values"),
    ],
)
def test_invalid_records(change: dict[str, object], path: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_meter_record({**R, **change}, surface="amberflo", raw="{}")
    assert [e.path for e in raised.value.errors] == [path]
