"""Ownership timelines: one owner at a time, the latest-started ownership wins; pieces partition a window."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from meterd.core.intervals import Span
from meterd.core.ownership import Ownership, Stretch, owner_parts, pieces, timeline, timelines


def own(i: str, owner: str, start: int | None, stop: int | None, resource: str = "a") -> Ownership:
    return Ownership(i, owner, resource, start, stop)


def test_transfer() -> None:
    line = timeline([own("1", "u1", 0, 10), own("2", "u2", 10, None)])
    assert line == [Stretch("u1", Span(0, 10)), Stretch("u2", Span(10, None))]


def test_latest_start_wins_an_overlap_and_the_older_resumes_after() -> None:
    line = timeline([own("1", "u1", 0, None), own("2", "u2", 5, 8)])
    assert line == [Stretch("u1", Span(0, 5)), Stretch("u2", Span(5, 8)), Stretch("u1", Span(8, None))]


def test_gaps_pending_and_adjacent_stretches() -> None:
    line = timeline([own("1", "u1", 0, 5), own("2", "u1", 5, 7), own("3", "u1", 9, 10), own("4", "u2", None, 3)])
    assert line == [Stretch("u1", Span(0, 7)), Stretch("u1", Span(9, 10))]
    assert timeline([own("1", "u1", 4, 4)]) == []


def test_owner_parts_split_an_event() -> None:
    lines = timelines([own("1", "u1", 0, 10), own("2", "u2", 10, None)])
    assert owner_parts("u1", "a", Span(5, None), lines) == [Span(5, 10)]
    assert owner_parts("u2", "a", Span(5, None), lines) == [Span(10, None)]
    assert owner_parts("u1", "u1", Span(5, None), lines) == [Span(5, None)]
    assert owner_parts("u1", "b", Span(5, None), lines) == []


def test_pieces_cover_the_window() -> None:
    line = timeline([own("1", "u1", 5, 10), own("2", "u2", 12, None)])
    assert pieces(line, Span(0, 20)) == [
        (None, Span(0, 5)),
        ("u1", Span(5, 10)),
        (None, Span(10, 12)),
        ("u2", Span(12, 20)),
    ]
    assert pieces([], Span(0, 20)) == [(None, Span(0, 20))]


owns = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.integers(0, 30), st.none() | st.integers(0, 30)),
    max_size=6,
)


@given(owns, st.integers(0, 20), st.integers(1, 20))
def test_timeline_and_pieces_match_a_pointwise_rule(
    raw: list[tuple[str, int, int | None]], lo: int, width: int
) -> None:
    items = [own(f"{i}", o, s, None if n is None else s + n) for i, (o, s, n) in enumerate(raw)]
    line = timeline(items)
    for at in range(70):
        containing = [o for o in items if o.start is not None and Span(o.start, o.stop).contains(at)]
        expected = max(containing, key=lambda o: (o.start, o.id)).owner if containing else None
        found = [s.owner for s in line if s.span.contains(at)]
        assert found == ([expected] if expected else [])
    window = Span(lo, lo + width)
    cut = pieces(line, window)
    assert cut[0][1].start == window.start and cut[-1][1].stop == window.stop
    assert all(a[1].stop == b[1].start for a, b in itertools.pairwise(cut))
    for owner, piece in cut:
        assert piece.stop is not None and piece.stop > piece.start
        for at in range(piece.start, piece.stop):
            assert owner == next((s.owner for s in line if s.span.contains(at)), None)
