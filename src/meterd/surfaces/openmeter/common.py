"""What every OpenMeter route needs: the router with OpenMeter's errors, the service and Bearer authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.models import ApiKey, Scope
from meterd.server.auth import bearer
from meterd.server.body import decode_json, read_body
from meterd.service.meterd import Meterd
from meterd.surfaces.openmeter.errors import OpenMeterRoute

PREFIX = "/api/v1"


def make_router() -> APIRouter:
    return APIRouter(prefix=PREFIX, route_class=OpenMeterRoute, tags=["openmeter"])


def service(request: Request) -> Meterd:
    meterd: Meterd = request.app.state.meterd
    return meterd


async def authenticate(request: Request, scope: Scope) -> ApiKey:
    """The meterd API key sent as ``Authorization: Bearer <key>`` (the SDK's ``token``)."""
    return await service(request).authenticate(bearer(request), scope)


async def json_body(request: Request) -> Any:
    data = await read_body(request, request.app.state.settings.max_body_bytes)
    if not data.strip():
        raise InvalidInput("the body is empty", [FieldError("", "a JSON body is required")])
    return decode_json(data)
