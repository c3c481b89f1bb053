"""The AMIE usage surface (amieclient's ``UsageClient``), mounted as a sub-app under ``Settings.amie_prefix``."""

from __future__ import annotations

from fastapi import FastAPI

from meterd.core.errors import InvalidInput
from meterd.server.settings import Settings
from meterd.service.amie import AmieService
from meterd.surfaces.amie.routes import build_app


def mount_path(prefix: str) -> str:
    """The prefix as a mount path: a leading slash, no trailing one, never the root."""
    path = "/" + prefix.strip().strip("/")
    if path == "/":
        raise InvalidInput("amie_prefix must not be the root: AMIE's usage/ paths would shadow other surfaces")
    return path


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the AMIE usage API at ``settings.amie_prefix`` (default ``/amie/api/v1``)."""
    service = AmieService(app.state.meterd, settings.max_batch)
    app.mount(mount_path(settings.amie_prefix), build_app(service))
