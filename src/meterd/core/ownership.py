"""Ownership intervals: who owned a resource when, and which part of a resource's usage belongs to an owner.

An ownership says owner U owned resource A over ``[start, stop)`` (``stop`` None: still owned). One resource
has at most one owner at any instant: where ownerships of a resource overlap (a transfer whose close has not
arrived), the ownership that started last wins from its start on (ties: the larger id). Ownerships whose
open has not arrived yet (only a close is known) own nothing.

Usage of owner U (:func:`owner_parts`): U's own events whole, plus, for each event of a resource, the part of
the event inside each stretch of time U owned that resource. A resource transferred mid-event splits the
event between its owners; no part of it is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meterd.core.intervals import Span


@dataclass(frozen=True, slots=True)
class Ownership:
    """One ownership interval as stored; ``start`` None while only its close is known."""

    id: str
    owner: str
    resource: str
    start: int | None
    stop: int | None


@dataclass(frozen=True, slots=True)
class Stretch:
    """A maximal stretch of time ``span`` during which ``owner`` owned the resource."""

    owner: str
    span: Span


Timelines = Mapping[str, Sequence[Stretch]]


def timeline(ownerships: Iterable[Ownership]) -> list[Stretch]:
    """Disjoint stretches, in time order, of who owned one resource (the latest-started ownership wins)."""
    known = sorted((o for o in ownerships if o.start is not None), key=lambda o: (o.start, o.id))
    if not known:
        return []
    bounds = sorted({o.start for o in known if o.start is not None} | {o.stop for o in known if o.stop is not None})
    stretches: list[Stretch] = []
    for index, low in enumerate(bounds):
        high = bounds[index + 1] if index + 1 < len(bounds) else None
        owner = _winner(known, low)
        if owner is None or (high is not None and high <= low):
            continue
        last = stretches[-1] if stretches else None
        if last is not None and last.owner == owner and last.span.stop == low:
            stretches[-1] = Stretch(owner, Span(last.span.start, high))
        else:
            stretches.append(Stretch(owner, Span(low, high)))
    return stretches


def _winner(ordered: Sequence[Ownership], at: int) -> str | None:
    """The owner at instant ``at``: the last-started ownership (in ``ordered`` order) that contains it."""
    owner = None
    for o in ordered:
        assert o.start is not None
        if Span(o.start, o.stop).contains(at):
            owner = o.owner
    return owner


def timelines(ownerships: Iterable[Ownership]) -> dict[str, list[Stretch]]:
    """The timeline of every resource named in ``ownerships``."""
    by_resource: dict[str, list[Ownership]] = {}
    for o in ownerships:
        by_resource.setdefault(o.resource, []).append(o)
    return {resource: timeline(items) for resource, items in by_resource.items()}


def owner_parts(owner: str, consumer: str, event: Span, lines: Timelines) -> list[Span]:
    """The parts of an event of ``consumer`` that count for ``owner`` (whole when the consumer is the owner)."""
    if consumer == owner:
        return [event]
    parts = []
    for stretch in lines.get(consumer, ()):
        if stretch.owner == owner:
            part = event.intersect(stretch.span)
            if part is not None:
                parts.append(part)
    return parts


def overlaps(part: Span, window: Span) -> bool:
    """Whether a part counts for a window: a span overlapping it, or a point inside it."""
    return part.intersect(window) is not None


def open_at(part: Span, instant: int) -> bool:
    """Whether the part was running at ``instant`` (a snapshot): started at or before it, not stopped by then."""
    return part.start <= instant and (part.stop is None or part.stop > instant)


def pieces(stretches: Sequence[Stretch], window: Span) -> list[tuple[str | None, Span]]:
    """Split a window into consecutive pieces, each with its owner (None: nobody owned the resource then)."""
    assert window.stop is not None
    out: list[tuple[str | None, Span]] = []
    cursor = window.start
    for stretch in stretches:
        part = stretch.span.intersect(window)
        if part is None or part.is_point:
            continue
        if part.start > cursor:
            out.append((None, Span(cursor, part.start)))
        stop = part.stop if part.stop is not None else window.stop
        out.append((stretch.owner, Span(part.start, stop)))
        cursor = stop
    if cursor < window.stop:
        out.append((None, Span(cursor, window.stop)))
    return out


def owners_of(lines: Timelines, owners: Iterable[str]) -> set[str]:
    """The resources that some owner in ``owners`` owned at some time."""
    wanted = set(owners)
    return {resource for resource, stretches in lines.items() if any(s.owner in wanted for s in stretches)}
