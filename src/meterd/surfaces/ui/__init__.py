"""The web dashboard, served at ``/ui``: usage, customers, ingest health and events, behind a key sign-in.

``install`` mounts it on the main app. Surfaces that keep facts about customers (entitlements, registration
tokens) can show them on the customer page with :func:`add_customer_panel`.
"""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.settings import Settings
from meterd.service.customer_panels import DEFAULT_SOURCES, PanelSource, register

PREFIX = "/ui"


def customer_panels(app: FastAPI) -> list[PanelSource]:
    """The app's list of customer panel sources (created with the built-in ones on first use)."""
    sources: list[PanelSource] | None = getattr(app.state, "customer_panels", None)
    if sources is None:
        sources = list(DEFAULT_SOURCES)
        app.state.customer_panels = sources
    return sources


def add_customer_panel(app: FastAPI, source: PanelSource) -> None:
    """Show ``source``'s panel on every customer page (call it from a surface's installer)."""
    register(customer_panels(app), source)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard at /ui (imported lazily so the API does not load templates it never uses)."""
    from meterd.surfaces.ui.site import create_site

    app.mount(PREFIX, create_site(app.state.meterd, settings, customer_panels(app)))
