"""The InfluxData usage-client surface: registration (/start), servers, stats and usage, plus native views."""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.settings import Settings
from meterd.service.influx import InfluxService
from meterd.service.influx_tokens import InfluxTokens
from meterd.surfaces.influx import api, native, pages


def install(app: FastAPI, settings: Settings) -> None:
    """Add /start, /api/v1/{servers,stats,usage} and /v1/influx/* to the app."""
    tokens = InfluxTokens(app.state.meterd, settings.influx_tenant)
    service = InfluxService(app.state.meterd, tokens)
    app.include_router(api.build_router(service, settings.max_body_bytes))
    app.include_router(pages.build_router(tokens, settings.influx_redirect_hosts))
    app.include_router(native.build_router(service))
