"""Influx payload translation and registration rules: properties against straightforward references."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterd.core.errors import InvalidInput
from meterd.core.influx import check_server, stats_batch, usage_batch
from meterd.core.influx_registration import check_form, check_registration, customer_id, redirect_problem, with_token

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
scalars = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
stat = st.fixed_dictionaries(
    {
        "name": keys,
        "tags": st.dictionaries(keys, st.text(max_size=4), max_size=3),
        "values": st.dictionaries(keys, scalars, max_size=5),
    }
)


def numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@given(st.lists(stat, max_size=6))
def test_each_numeric_value_is_one_event(stats: list[dict[str, Any]]) -> None:
    body = {"cluster_id": "c", "server_id": "s", "stats": stats}
    batch = stats_batch("influxdb", body, customer="acme", now=1, batch_id="b")
    good = [s for s in stats if any(numeric(v) for v in s["values"].values()) and not _clash(s)]
    assert len(batch.failures) == len(stats) - len(good)
    expected = sorted(
        (f"influxdb.{s['name']}.{k}", float(v)) for s in good for k, v in s["values"].items() if numeric(v)
    )
    assert sorted((e.meter, e.value) for e in batch.events) == expected
    assert math.isclose(sum(e.value for e in batch.events), sum(v for _, v in expected), rel_tol=1e-9, abs_tol=1e-6)
    assert len({e.id for e in batch.events}) == len(batch.events)
    for e in batch.events:
        assert e.customer == "acme" and e.dimensions["cluster_id"] == "c" and e.dimensions["server_id"] == "s"


def _clash(s: dict[str, Any]) -> bool:
    labels = {k: v for k, v in s["values"].items() if not numeric(v)}
    context = {"cluster_id": "c", "server_id": "s"}
    merged: dict[str, Any] = {}
    for source in (s["tags"], labels, context):
        for k, v in source.items():
            if k in merged and merged[k] != v:
                return True
            merged[k] = v
    return False


def test_usage_snapshot_strings_are_dimensions() -> None:
    batch = usage_batch(
        "influxdb",
        [{"tags": {"os": "linux"}, "values": {"cluster_id": "23423", "num_series": 87232}}],
        customer="anonymous",
        now=5,
        batch_id="u",
    )
    (event,) = batch.events
    assert (event.meter, event.value, event.time, event.dimensions) == (
        "influxdb.usage.num_series",
        87232.0,
        5,
        {"os": "linux", "cluster_id": "23423"},
    )


def test_server_requires_every_field() -> None:
    with pytest.raises(InvalidInput) as info:
        check_server({"cluster_id": "c"})
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("server_id", "ServerID can not be blank."),
        ("host", "Host can not be blank."),
        ("product", "Product can not be blank."),
        ("version", "Version can not be blank."),
    ]


@given(st.text(max_size=40))
def test_customer_ids_are_stable_slugs(name: str) -> None:
    cid = customer_id(name)
    assert cid == "" or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cid)
    assert customer_id(cid) == cid
    assert customer_id(name.upper()) == customer_id(name.lower()) or not name.isascii()


@given(
    st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), st.text(max_size=5), max_size=3),
    st.text(alphabet="abcXYZ019_-", min_size=1, max_size=20),
)
def test_with_token_keeps_the_query_and_sets_one_token(params: dict[str, str], token: str) -> None:
    from urllib.parse import urlencode

    url = "https://app.example/cb?" + urlencode({**params, "token": "old"}) + "#frag"
    out = urlsplit(with_token(url, token))
    pairs = parse_qsl(out.query, keep_blank_values=True)
    assert [v for k, v in pairs if k == "token"] == [token]
    assert {k: v for k, v in pairs if k != "token"} == params
    assert (out.netloc, out.path, out.fragment) == ("app.example", "/cb", "frag")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://app.example/cb", True),
        ("https://APP.example:443/cb", True),
        ("http://app.example:8080/cb", True),  # a bare host allows any port
        ("http://ops.example:8080/x", True),
        ("http://ops.example/x", False),
        ("http://app.example.evil/cb", False),
        ("http://user@app.example/cb", False),
        ("//app.example/cb", False),
        ("http://[::1/x", False),
    ],
)
def test_redirect_allowlist(url: str, allowed: bool) -> None:
    assert (redirect_problem(url, ("app.example", "ops.example:8080")) is None) is allowed


def test_registration_and_form_checks() -> None:
    with pytest.raises(InvalidInput, match="You must supply both a ClusterID and a Product!"):
        check_registration("c", " ", "", ())
    assert check_registration(" c ", "p", "", ()).redirect_url is None
    assert check_form(" Acme, Inc. ", "a@acme.example") == ("acme-inc", "Acme, Inc.", "a@acme.example")
    with pytest.raises(InvalidInput) as info:
        check_form("!!!", "no-at-sign")
    assert [e.message for e in info.value.errors] == [
        "Organization name needs at least one letter or digit.",
        "Email is not a valid address.",
    ]
