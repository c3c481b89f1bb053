"""``attribute_to_owner`` queries: run the store queries :mod:`meterd.core.attribution` plans and fold them.

One query per variant over the whole range (grouped by customer; restricted, when the spec filters
customers, to those customers and the resources they owned), then for every owned resource in its answer
one query per ownership piece of the range, counted for that piece's owner (or the resource itself when
nobody owned it). Every query uses the same ``now``, so open intervals are cut at the same instant.
"""

from __future__ import annotations

import time
from dataclasses import replace

from meterd.core.attribution import Folder, piece_spec, plan
from meterd.core.intervals import Span
from meterd.core.ownership import owners_of, pieces, timelines
from meterd.core.query import CUSTOMER, QuerySpec, Row
from meterd.service.meterd import Meterd
from meterd.service.ownership import all_ownerships


async def attributed_query(meterd: Meterd, tenant: str, spec: QuerySpec) -> list[Row]:
    """Rows of ``spec`` with every resource's usage attributed to whoever owned it at the time."""
    spec.check()
    started = time.perf_counter()
    try:
        return await _run(meterd, tenant, spec)
    finally:
        meterd.observe("query", time.perf_counter() - started)


async def _run(meterd: Meterd, tenant: str, spec: QuerySpec) -> list[Row]:
    store = meterd.store
    now = meterd.clock()
    meters = {m.key: m for m in await store.list_meters(tenant)}
    variants = plan(spec, meters)
    lines = {r: s for r, s in timelines(await all_ownerships(store, tenant)).items() if s}
    scope = None
    if spec.customers is not None:
        scope = tuple(sorted(set(spec.customers) | owners_of(lines, spec.customers)))
    folder = Folder(spec, meters)
    window = Span(spec.start, spec.end)
    for variant in variants:
        rows = await store.query(tenant, replace(variant.spec, customers=scope), now)
        owned = {str(r.group.get(CUSTOMER)) for r in rows} & lines.keys()
        folder.fold(variant, [r for r in rows if r.group.get(CUSTOMER) not in owned])
        for resource in sorted(owned):
            for owner, piece in pieces(lines[resource], window):
                target = owner if owner is not None else resource
                if not folder.wanted(target) or piece.stop is None:
                    continue
                found = await store.query(tenant, piece_spec(variant, resource, piece.start, piece.stop), now)
                folder.fold(variant, found, target)
    return folder.rows()
