"""Interval claims merge the same way whatever order they arrive in; spans intersect with points included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.intervals import Claim, Span, Verdict, merge

SUBJECT = ("p", "c")


def test_open_then_close_and_close_then_open_meet() -> None:
    opened, closed = Claim(SUBJECT, 10, None, {"a": 1}), Claim(SUBJECT, None, 20, None)
    for first, second in ((opened, closed), (closed, opened)):
        one = merge(None, first)
        two = merge(one.merged, second)
        assert (one.verdict, two.verdict) == (Verdict.NEW, Verdict.NEW)
        assert two.merged == Claim(SUBJECT, 10, 20, {"a": 1})
        assert merge(two.merged, first).verdict is Verdict.SAME
        assert merge(two.merged, second).verdict is Verdict.SAME


@pytest.mark.parametrize(
    "claim",
    [
        Claim(("q", "c"), 10, None, {}),
        Claim(("p", "d"), None, 20, None),
        Claim(SUBJECT, 11, None, {}),
        Claim(SUBJECT, None, 21, None),
        Claim(SUBJECT, 10, None, {"b": 1}),
    ],
)
def test_other_content_conflicts_and_keeps_what_is_known(claim: Claim) -> None:
    known = Claim(SUBJECT, 10, 20, {})
    result = merge(known, claim)
    assert result.verdict is Verdict.CONFLICT and result.merged == known and result.reason


def test_a_stop_before_the_start_conflicts_across_claims_and_is_invalid_in_one() -> None:
    assert merge(Claim(SUBJECT, 10), Claim(SUBJECT, None, 5)).verdict is Verdict.CONFLICT
    assert merge(Claim(SUBJECT, None, 5), Claim(SUBJECT, 10, None, {})).verdict is Verdict.CONFLICT
    with pytest.raises(InvalidInput):
        Claim(SUBJECT, 10, 5).check()
    Claim(SUBJECT, 10, 10).check()  # a point is fine


@given(st.integers(0, 100), st.integers(0, 100), st.permutations([0, 1, 2, 0, 2, 1]))
def test_any_order_of_any_replays_ends_in_the_same_state(start: int, length: int, order: list[int]) -> None:
    claims = [
        Claim(SUBJECT, start, None, {}),
        Claim(SUBJECT, None, start + length),
        Claim(SUBJECT, start, start + length, {}),
    ]
    known = None
    verdicts = []
    for index in order:
        result = merge(known, claims[index])
        verdicts.append(result.verdict)
        known = result.merged
    assert known == Claim(SUBJECT, start, start + length, {})
    assert Verdict.CONFLICT not in verdicts


def test_span_intersections() -> None:
    assert Span(0, 10).intersect(Span(5, None)) == Span(5, 10)
    assert Span(0, None).intersect(Span(5, None)) == Span(5, None)
    assert Span(0, 5).intersect(Span(5, 10)) is None
    assert Span(5, 5).intersect(Span(5, 10)) == Span(5, 5)  # a point inside
    assert Span(10, 10).intersect(Span(5, 10)) is None  # the end is excluded
    assert Span(0, 10).intersect(Span(3, 3)) == Span(3, 3)


@given(*(st.integers(0, 50) for _ in range(4)))
def test_intersection_is_commutative_and_inside_both(a: int, b: int, c: int, d: int) -> None:
    x, y = Span(min(a, b), max(a, b)), Span(min(c, d), max(c, d))
    assert x.intersect(y) == y.intersect(x)
    both = x.intersect(y)
    for at in range(51):
        if not x.is_point and not y.is_point:
            assert (both is not None and both.contains(at)) == (x.contains(at) and y.contains(at))


def test_seconds_within() -> None:
    assert Span(0, 10_000).seconds_within(Span(5_000, 20_000), now=0) == 5.0
    assert Span(0, None).seconds_within(Span(5_000, 20_000), now=8_000) == 3.0
    assert Span(0, None).seconds_within(Span(5_000, 20_000), now=90_000) == 15.0
