"""JSONPath: definite paths parse, print back and extract exactly what direct indexing reaches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.jsonpath import MISSING, format_path, parse_path

DOC = {"a": {"b": [10, {"c": "x"}], "key with space": 1, "it's": 2}, "n": None, "s": "text"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOC),
        ("$.a.b[0]", 10),
        ("$.a.b[-1].c", "x"),
        ("$['a']['key with space']", 1),
        ('$["a"]["it\'s"]', 2),
        ("$['a']['it\\'s']", 2),
        ("$.n", None),
        ("$.a.b[2]", MISSING),
        ("$.s[0]", MISSING),  # strings are not arrays
        ("$.s.x", MISSING),
        ("$.missing", MISSING),
        ("$.a.b.c", MISSING),
    ],
)
def test_extract(path: str, value: Any) -> None:
    assert parse_path(path).extract(DOC) == value


@pytest.mark.parametrize(
    "path", ["a.b", "$..a", "$.a[*]", "$.a[1:2]", "$[?(@.a)]", "$.", "$['a'", "$.a b", "$" + "x" * 300]
)
def test_indefinite_or_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_path(path, "valueProperty")
    assert raised.value.errors[0].path == "valueProperty"


names = st.text(min_size=1, max_size=8)
steps = st.lists(st.one_of(names, st.integers(-3, 3)), max_size=5)


@given(steps)
def test_format_then_parse_round_trips(path_steps: list[str | int]) -> None:
    assert parse_path(format_path(path_steps)).steps == tuple(path_steps)


def nest(path_steps: list[str | int], leaf: Any) -> Any:
    """A document where ``path_steps`` leads to ``leaf`` (arrays padded so negative indexes land too)."""
    doc = leaf
    for step in reversed(path_steps):
        if isinstance(step, str):
            doc = {step: doc, "": 0}  # a sibling no generated name can equal
        else:
            size = 4
            items: list[Any] = [None] * size
            items[step % size if step < 0 else step] = doc
            doc = items
    return doc


@given(st.lists(st.one_of(names, st.integers(0, 3)), max_size=5), st.integers())
def test_extract_finds_the_leaf(path_steps: list[str | int], leaf: int) -> None:
    assert parse_path(format_path(path_steps)).extract(nest(path_steps, leaf)) == leaf
