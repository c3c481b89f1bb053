"""The app factory: one FastAPI app per Settings, with the store opened in its lifespan and every surface mounted."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from meterd import __version__
from meterd.server import errors
from meterd.server.metrics import Metrics, MetricsMiddleware
from meterd.server.routes import catalog, events, health, marketplace, query
from meterd.server.settings import Settings
from meterd.service import Meterd
from meterd.storage.base import Store
from meterd.storage.factory import create_store
from meterd.surfaces import INSTALLERS

Installer = Callable[[FastAPI, Settings], None]


def surface_installers() -> list[Installer]:
    """Each compatibility surface adds its routes through one installer (imported lazily)."""
    found: list[Installer] = []
    for target in INSTALLERS:
        module_name, _, attr = target.partition(":")
        found.append(getattr(importlib.import_module(module_name), attr))
    return found


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the server for ``settings`` (defaults from the environment); ``store`` overrides the URL."""
    settings = settings or Settings.from_env()
    the_store = store if store is not None else create_store(settings.database_url)
    metrics = Metrics()
    meterd = Meterd(the_store, observe=metrics.observe_store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await the_store.open()
        try:
            yield
        finally:
            await the_store.close()

    app = FastAPI(
        title="meterd",
        version=__version__,
        description="Self-hosted usage metering: every usage record exactly once, exact queries, fast.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.meterd = meterd
    app.state.metrics = metrics
    errors.install(app)
    for router in (events.router, query.router, catalog.router, health.router, marketplace.router):
        app.include_router(router)
    for install in surface_installers():
        install(app, settings)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
