"""Definite JSONPath expressions (``$.a.b``, ``$['a b']``, ``$.items[0]``): parsing and value extraction.

Only paths that name one place in a document are supported, which is what a meter's value or group-by
property needs: member names (dot or bracket notation) and array indexes (negative counts from the end).
Wildcards, slices, filters and recursive descent are refused with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from meterd.core.errors import FieldError, InvalidInput

MAX_PATH = 256
_DOT_NAME = re.compile(r"[A-Za-z0-9_\-$@]+")
_INDEX = re.compile(r"-?[0-9]+")
_UNSUPPORTED = "only definite paths are supported: $.a.b, $['a b'], $.a[0]"

Step = str | int


class Missing:
    """The marker for "the path names nothing in this document"."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path: its text and the member names (str) and indexes (int) it walks."""

    text: str
    steps: tuple[Step, ...]

    def extract(self, document: object) -> Any:
        """The value at this path in ``document``, or :data:`MISSING`."""
        current: object = document
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(current, Mapping) or step not in current:
                    return MISSING
                current = current[step]
            else:
                if isinstance(current, str | bytes) or not isinstance(current, Sequence):
                    return MISSING
                if not -len(current) <= step < len(current):
                    return MISSING
                current = current[step]
        return current


def _fail(text: str, field: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid JSONPath {text[:64]!r}", [FieldError(field, message)])


def _quoted(text: str, pos: int, field: str) -> tuple[str, int]:
    """Read a quoted member name starting at the quote ``text[pos]``; returns (name, position after it)."""
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise _fail(text, field, "has an unterminated quoted name")


def _bracket(text: str, pos: int, field: str) -> tuple[Step, int]:
    """Read ``[...]`` starting at ``text[pos] == '['``; returns (step, position after ``]``)."""
    i = pos + 1
    if i < len(text) and text[i] in "'\"":
        name, i = _quoted(text, i, field)
        step: Step = name
    else:
        match = _INDEX.match(text, i)
        if match is None:
            raise _fail(text, field, _UNSUPPORTED)
        step, i = int(match.group()), match.end()
    if i >= len(text) or text[i] != "]":
        raise _fail(text, field, _UNSUPPORTED)
    return step, i + 1


@lru_cache(maxsize=1024)
def parse_path(text: str, field: str = "path") -> JsonPath:
    """Parse ``text``; invalid or indefinite paths raise :class:`InvalidInput` naming ``field``."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise _fail(str(text), field, "must start with '$'")
    if len(text) > MAX_PATH:
        raise _fail(text, field, f"must be at most {MAX_PATH} characters")
    steps: list[Step] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == ".":
            if text.startswith("..", i):
                raise _fail(text, field, _UNSUPPORTED)
            match = _DOT_NAME.match(text, i + 1)
            if match is None:
                raise _fail(text, field, _UNSUPPORTED)
            steps.append(match.group())
            i = match.end()
        elif char == "[":
            step, i = _bracket(text, i, field)
            steps.append(step)
        else:
            raise _fail(text, field, f"unexpected {char!r} at position {i}")
    return JsonPath(text, tuple(steps))


def check_path(text: object, field: str, errors: list[FieldError]) -> JsonPath | None:
    """Parse ``text`` into ``errors`` instead of raising; None when invalid."""
    if not isinstance(text, str):
        errors.append(FieldError(field, "must be a JSONPath string such as $.tokens"))
        return None
    try:
        return parse_path(text, field)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return None


def format_path(steps: Sequence[Step]) -> str:
    """The canonical text of a path (bracket notation where a name needs it); ``parse_path`` reads it back."""
    parts = ["$"]
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _DOT_NAME.fullmatch(step):
            parts.append(f".{step}")
        else:
            escaped = step.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)
