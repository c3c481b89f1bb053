"""Influx orchestration: whose data a request carries, server upserts, stats and usage snapshots as events."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from meterd.core.errors import InvalidInput
from meterd.core.influx import ANONYMOUS, SURFACE, Batch, check_product, check_server, stats_batch, usage_batch
from meterd.core.timeutil import format_ms
from meterd.service.influx_tokens import Caller, InfluxTokens
from meterd.service.meterd import Meterd
from meterd.storage.base import NewRejection

SERVER_KIND = "influx.server"


@dataclass(frozen=True, slots=True)
class Saved:
    """What a stats or usage request stored: events accepted, records rejected (with their field errors)."""

    events: int
    batch: Batch


def server_key(cluster_id: str, server_id: str) -> str:
    return f"{quote(cluster_id, safe='')}/{quote(server_id, safe='')}"


def server_json(body: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: body[k] for k in ("cluster_id", "server_id", "host", "product", "version", "customer")},
        "registrations": body["registrations"],
        "first_seen": format_ms(body["first_seen"]),
        "last_seen": format_ms(body["last_seen"]),
    }


class InfluxService:
    """The usage-client API over the Meterd service. Data without a token goes to ``tokens.tenant``."""

    def __init__(self, meterd: Meterd, tokens: InfluxTokens) -> None:
        self.meterd = meterd
        self.tokens = tokens

    async def caller(self, token: str | None) -> Caller:
        """The customer a token names, or the anonymous customer of the influx tenant when there is none."""
        if token is not None and token.strip():
            return await self.tokens.resolve(token)
        await self.tokens.ensure_tenant()
        return Caller(self.tokens.tenant, ANONYMOUS)

    async def reject(self, caller: Caller, raw: str, exc: InvalidInput) -> None:
        """Keep a request that could not be read at all (bad JSON, bad envelope, bad server)."""
        errors = tuple(e.as_dict() for e in exc.errors)
        message = "; ".join(f"{e.path}: {e.message}" for e in exc.errors) or exc.message
        await self.meterd.reject(caller.tenant, [NewRejection(SURFACE, exc.code, message, raw, None, None, errors)])

    async def save_server(self, caller: Caller, data: object, raw: str) -> tuple[dict[str, Any], bool]:
        """Upsert a server by (cluster_id, server_id); True when it is new. A token claims it for its customer."""
        try:
            server = check_server(data)
        except InvalidInput as exc:
            await self.reject(caller, raw, exc)
            raise
        store, now = self.meterd.store, self.meterd.clock()
        key = server_key(server.cluster_id, server.server_id)
        old = await store.get_object(caller.tenant, SERVER_KIND, key)
        customer = caller.customer if caller.customer != ANONYMOUS or old is None else old["customer"]
        body = {
            "cluster_id": server.cluster_id,
            "server_id": server.server_id,
            "host": server.host,
            "product": server.product,
            "version": server.version,
            "customer": customer,
            "registrations": (old["registrations"] if old else 0) + 1,
            "first_seen": old["first_seen"] if old else now,
            "last_seen": now,
        }
        await store.put_object(caller.tenant, SERVER_KIND, key, body)
        return server_json(body), old is None

    async def save_stats(self, caller: Caller, product: str, data: object, raw: str) -> Saved:
        """Each numeric stat value as an event of ``<product>.<name>.<value>``; bad stats are kept and reported."""
        return await self._save(caller, product, data, raw, "st")

    async def save_usage(self, caller: Caller, product: str, data: object, raw: str) -> Saved:
        """Each numeric snapshot value as an event of ``<product>.usage.<value>``."""
        return await self._save(caller, product, data, raw, "us")

    async def _save(self, caller: Caller, product: str, data: object, raw: str, kind: str) -> Saved:
        now = self.meterd.clock()
        batch_id = f"{kind}-{now:011x}{secrets.token_hex(4)}"
        translate = stats_batch if kind == "st" else usage_batch
        try:
            check_product(product)
            batch = translate(product, data, customer=caller.customer, now=now, batch_id=batch_id)
        except InvalidInput as exc:
            await self.reject(caller, raw, exc)
            raise
        rejections = [
            NewRejection(SURFACE, "invalid_input", f.message, f.raw, None, None, tuple(e.as_dict() for e in f.errors))
            for f in batch.failures
        ]
        if batch.events or rejections:
            await self.meterd.ingest_events(caller.tenant, batch.events, rejections)
        return Saved(len(batch.events), batch)

    async def servers(self, tenant: str, customer: str | None, cluster_id: str | None) -> list[dict[str, Any]]:
        """The tenant's registered servers, optionally of one customer and/or one cluster."""
        prefix = f"{quote(cluster_id, safe='')}/" if cluster_id else ""
        found = await self.meterd.store.list_objects(tenant, SERVER_KIND, prefix)
        return [server_json(body) for _, body in found if customer is None or body.get("customer") == customer]
