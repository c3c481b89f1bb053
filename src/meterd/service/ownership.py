"""Recording and loading ownership intervals (owner U owned resource A from t1 to t2), kept as store objects.

An ownership is the object ``ownership/<surface>:<id>`` ``{"owner","resource","start","stop","surface","raw"}``;
its open and close may arrive in any order and follow :func:`meterd.core.intervals.merge` (replays are
duplicates, another owner/resource/time is a conflict kept as a rejection), decided holding the id's lock.
Two index objects, ``ownership.owner/<owner> <key>`` and ``ownership.resource/<resource> <key>``, are written
before it, so an owner's resources and a resource's owners are found without scanning; readers re-check
every index hit.
"""

from __future__ import annotations

from typing import Any

from meterd.core.errors import Conflict
from meterd.core.intervals import Claim, Verdict, merge
from meterd.core.models import Outcome
from meterd.core.ownership import Ownership, Stretch, timeline
from meterd.service.locks import held
from meterd.service.meterd import Meterd
from meterd.storage.base import NewRejection, Store

OWNERSHIP = "ownership"
BY_OWNER = "ownership.owner"
BY_RESOURCE = "ownership.resource"


def _as_ownership(key: str, doc: dict[str, Any]) -> Ownership:
    return Ownership(key, str(doc["owner"]), str(doc["resource"]), doc.get("start"), doc.get("stop"))


async def record_ownership(
    meterd: Meterd,
    tenant: str,
    surface: str,
    ownership_id: str,
    claim: Claim,
    raw: str,
) -> Outcome:
    """Apply an open and/or close of ownership ``ownership_id``; ``claim.subject`` is (owner, resource)."""
    claim.check()
    key = f"{surface}:{ownership_id}"
    async with held(meterd.store, tenant, f"ownership:{key}", meterd.clock):
        return await _apply(meterd, tenant, surface, ownership_id, key, claim, raw)


async def _apply(
    meterd: Meterd, tenant: str, surface: str, ownership_id: str, key: str, claim: Claim, raw: str
) -> Outcome:
    owner, resource = claim.subject
    store = meterd.store
    doc = await store.get_object(tenant, OWNERSHIP, key)
    known = Claim((str(doc["owner"]), str(doc["resource"])), doc.get("start"), doc.get("stop")) if doc else None
    result = merge(known, claim)
    if result.verdict is Verdict.CONFLICT:
        message = f"ownership {ownership_id!r}: {result.reason}"
        await meterd.reject(tenant, [NewRejection(surface, "conflict", message, raw, None, ownership_id)])
        raise Conflict(message)
    if result.verdict is Verdict.SAME:
        return Outcome.DUPLICATE
    if doc is None:
        await store.put_object(tenant, BY_OWNER, f"{owner} {key}", {"key": key})
        await store.put_object(tenant, BY_RESOURCE, f"{resource} {key}", {"key": key})
    body = {
        "owner": owner,
        "resource": resource,
        "start": result.merged.start,
        "stop": result.merged.stop,
        "surface": surface,
        "raw": raw if doc is None else doc.get("raw"),
    }
    await store.put_object(tenant, OWNERSHIP, key, body)
    return Outcome.ACCEPTED


async def all_ownerships(store: Store, tenant: str) -> list[Ownership]:
    """Every ownership of the tenant."""
    return [_as_ownership(key, doc) for key, doc in await store.list_objects(tenant, OWNERSHIP)]


async def _indexed(store: Store, tenant: str, index: str, name: str, field: str) -> list[Ownership]:
    found = []
    for _, entry in await store.list_objects(tenant, index, f"{name} "):
        key = str(entry.get("key", ""))
        doc = await store.get_object(tenant, OWNERSHIP, key)
        if doc is not None and doc.get(field) == name:
            found.append(_as_ownership(key, doc))
    return found


async def timelines_for_owner(store: Store, tenant: str, owner: str) -> dict[str, list[Stretch]]:
    """The full ownership timeline (every owner) of each resource ``owner`` ever owned."""
    resources = {o.resource for o in await _indexed(store, tenant, BY_OWNER, owner, "owner")}
    lines: dict[str, list[Stretch]] = {}
    for resource in sorted(resources):
        lines[resource] = timeline(await _indexed(store, tenant, BY_RESOURCE, resource, "resource"))
    return lines
