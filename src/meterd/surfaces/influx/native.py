"""Native (/v1) views of the influx surface: servers per customer, customer tokens (list, revoke)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meterd.server.auth import AdminKey, ReadKey
from meterd.service.influx import InfluxService


def build_router(service: InfluxService) -> APIRouter:
    """GET /v1/influx/servers, GET /v1/influx/tokens, DELETE /v1/influx/tokens/{id} (problem+json errors)."""
    router = APIRouter(prefix="/v1/influx", tags=["influx"])

    @router.get("/servers", summary="Registered servers, optionally of one customer or cluster")
    async def servers(key: ReadKey, customer: str | None = None, cluster_id: str | None = None) -> dict[str, Any]:
        return {"items": await service.servers(key.tenant, customer, cluster_id)}

    @router.get("/tokens", summary="Customer tokens issued by /start (never their secrets)")
    async def tokens(key: AdminKey, customer: str | None = None) -> dict[str, Any]:
        return {"items": await service.tokens.list(key.tenant, customer)}

    @router.delete("/tokens/{token_id}", summary="Revoke a customer token at once")
    async def revoke(token_id: str, key: AdminKey) -> dict[str, Any]:
        return await service.tokens.revoke(key.tenant, token_id)

    return router
