"""Bearer-key authentication for the native API: FastAPI dependencies that yield the calling key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from meterd.core.errors import Unauthenticated
from meterd.core.models import ApiKey, Scope
from meterd.service import Meterd


def service(request: Request) -> Meterd:
    """The app's Meterd service."""
    meterd: Meterd = request.app.state.meterd
    return meterd


def bearer(request: Request) -> str:
    """The secret of an ``Authorization: Bearer <key>`` header."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    return secret.strip()


def require(scope: Scope) -> object:
    """A dependency that authenticates the bearer key and checks it has ``scope``."""

    async def dependency(request: Request) -> ApiKey:
        return await service(request).authenticate(bearer(request), scope)

    return Depends(dependency)


ServiceDep = Annotated[Meterd, Depends(service)]
IngestKey = Annotated[ApiKey, require(Scope.INGEST)]
ReadKey = Annotated[ApiKey, require(Scope.READ)]
AdminKey = Annotated[ApiKey, require(Scope.ADMIN)]
