"""Shared fuzzing helpers: arbitrary JSON and query strings sent to a fresh app; nothing may answer 5xx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import strategies as st

from meterd.server.app import create_app
from meterd.server.settings import Settings
from meterd.storage.factory import create_store

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)


def _field(value: Any) -> st.SearchStrategy[Any]:
    """A field kept, replaced by arbitrary JSON, or (for an object) mutated field by field."""
    options = [st.just(value), json_values, st.integers(-(2**64), 2**64)]
    if isinstance(value, dict):
        options.append(st.fixed_dictionaries({k: _field(v) for k, v in value.items()}))
    return st.one_of(options)


def mutate(template: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A template with fields (nested ones too) replaced by arbitrary JSON, or the whole body arbitrary."""
    one = st.fixed_dictionaries({k: _field(v) for k, v in template.items()})
    return st.one_of(json_values, one, st.lists(one, max_size=3))


async def _send(requests: list[tuple[str, str, dict[str, str], bytes, dict[str, str]]], auth: str) -> list[int]:
    app = create_app(Settings(database_url="memory://"), store=create_store("memory://"))
    async with app.router.lifespan_context(app):
        key = (await app.state.meterd.bootstrap()).secret
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"x-api-key": key} if auth == "x-api-key" else {"authorization": f"Bearer {key}"}
        statuses = []
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
            for method, path, params, body, extra in requests:
                r = await c.request(method, path, params=params, content=body, headers=extra)
                statuses.append(r.status_code)
        return statuses


def send_all(requests: list[tuple[str, str, dict[str, str], Any, dict[str, str]]], auth: str) -> list[int]:
    encoded = [(m, p, q, json.dumps(b).encode() if not isinstance(b, bytes) else b, h) for m, p, q, b, h in requests]
    return asyncio.run(_send(encoded, auth))
