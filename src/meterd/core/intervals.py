"""Interval rules: half-open spans (points included), and merging open/close claims that arrive in any order.

An interval (a usage event with an end, an ownership) is built from *claims*: an open says "subject, start",
a close says "subject, stop", an open+close says both. Claims about one id may arrive in any order and may be
replayed. :func:`merge` decides what a new claim does to what is known: ``new`` (store the merged state),
``same`` (a replay: change nothing) or ``conflict`` (another subject, another time, other detail, or a stop
before the start: keep it as a rejection, change nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import Dimensions


@dataclass(frozen=True, slots=True)
class Span:
    """``[start, stop)`` in epoch ms; ``stop`` None is open-ended; ``start == stop`` is a point (the instant)."""

    start: int
    stop: int | None

    @property
    def is_point(self) -> bool:
        return self.stop == self.start

    def contains(self, at: int) -> bool:
        return self.start <= at and (self.stop is None or at < self.stop)

    def intersect(self, other: Span) -> Span | None:
        """The common part; a point intersects a span that contains it; empty is None."""
        if self.is_point:
            return self if other.contains(self.start) else None
        if other.is_point:
            return other if self.contains(other.start) else None
        low = max(self.start, other.start)
        high = _min_open(self.stop, other.stop)
        if high is not None and high <= low:
            return None
        return Span(low, high)

    def seconds_within(self, window: Span, now: int) -> float:
        """Seconds of this span inside ``window``; an open span runs up to ``now`` (never past the window)."""
        stop = self.stop if self.stop is not None else now
        high = stop if window.stop is None else min(stop, window.stop)
        low = max(self.start, window.start)
        return max(0, high - low) / 1000.0


def _min_open(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Verdict(StrEnum):
    NEW = "new"
    SAME = "same"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Claim:
    """What is said (or known) about one interval id. ``detail`` None means "not stated" (a close)."""

    subject: tuple[str, ...]
    start: int | None = None
    stop: int | None = None
    detail: Dimensions | None = None

    def check(self) -> None:
        """A single request that contradicts itself (stop before start) is invalid input."""
        if self.start is not None and self.stop is not None and self.stop < self.start:
            raise InvalidInput("the stop time is before the start time", [FieldError("stop_time", "is before start")])


@dataclass(frozen=True, slots=True)
class Merge:
    """The verdict on a claim, the state to keep (``merged``) and, for a conflict, why."""

    verdict: Verdict
    merged: Claim
    reason: str = ""


def merge(known: Claim | None, claim: Claim) -> Merge:
    """Combine a claim with what is known about the same id (see the module rules)."""
    if known is None:
        return Merge(Verdict.NEW, claim)
    if known.subject != claim.subject:
        return Merge(Verdict.CONFLICT, known, f"the id is known with {'/'.join(known.subject)}")
    for name in ("start", "stop"):
        mine, theirs = getattr(known, name), getattr(claim, name)
        if mine is not None and theirs is not None and mine != theirs:
            return Merge(Verdict.CONFLICT, known, f"the id is known with another {name} time")
    if known.detail is not None and claim.detail is not None and known.detail != claim.detail:
        return Merge(Verdict.CONFLICT, known, "the id is known with other detail")
    merged = replace(
        known,
        start=known.start if known.start is not None else claim.start,
        stop=known.stop if known.stop is not None else claim.stop,
        detail=known.detail if known.detail is not None else claim.detail,
    )
    if merged.start is not None and merged.stop is not None and merged.stop < merged.start:
        return Merge(Verdict.CONFLICT, known, "the stop time would be before the start time")
    return Merge(Verdict.SAME if merged == known else Verdict.NEW, merged)
