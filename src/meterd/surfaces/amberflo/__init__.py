"""The Amberflo surface (``amberflo-metering-python`` 2.x and 3.x): /ingest, /usage, /customers under a prefix.

The paths are Amberflo's root paths (``/ingest``, ``/usage``, ``/usage/batch``, ``/usage/all``, ``/customers``),
mounted under ``Settings.amberflo_prefix`` (default: none, as they clash with no other surface).
"""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.settings import Settings
from meterd.surfaces.amberflo.routes import make_router


def install(app: FastAPI, settings: Settings) -> None:
    """Add Amberflo's routes to ``app``."""
    app.include_router(make_router(), prefix=settings.amberflo_prefix.rstrip("/"))
