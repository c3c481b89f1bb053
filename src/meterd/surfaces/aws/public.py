"""Public, unauthenticated AWS surface routes: the JWKS of the RegisterUsage signing keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from meterd.server.routes.marketplace import marketplace_of

router = APIRouter(tags=["aws"])


@router.get("/aws/.well-known/jwks.json", summary="Public keys that verify RegisterUsage signatures (JWKS)")
async def jwks(request: Request) -> dict[str, Any]:
    return await marketplace_of(request.app).signing.jwks()
