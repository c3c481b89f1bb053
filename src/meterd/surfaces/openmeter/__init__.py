"""The OpenMeter surface (the ``openmeter`` Python SDK, API v1): CloudEvents, meters, queries, subjects.

Routes live under ``/api/v1/events``, ``/api/v1/meters`` and ``/api/v1/subjects`` only, so the influx surface's
``/api/v1/servers``, ``/api/v1/stats`` and ``/api/v1/usage`` stay its own. Keys are meterd keys sent as Bearer.
"""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.settings import Settings
from meterd.surfaces.openmeter import events, meters, subjects


def install(app: FastAPI, settings: Settings) -> None:
    """Add OpenMeter's routes to ``app``."""
    for module in (events, meters, subjects):
        app.include_router(module.router)
