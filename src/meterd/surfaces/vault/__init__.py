"""The Heroku Vault::Usage surface: interval usage events, app ownership and usage for a user (HTTP Basic)."""

from __future__ import annotations

from fastapi import FastAPI

from meterd.core.callbacks import Retry
from meterd.core.errors import InvalidInput
from meterd.server.settings import Settings
from meterd.service.callbacks import CallbackJobs
from meterd.surfaces.vault.routes import build_router


def callback_retry(settings: Settings) -> Retry:
    """The delivery policy of ``callback_url`` jobs from the ``METERD_VAULT_CALLBACK_*`` settings."""
    if not 1 <= settings.vault_callback_attempts <= 20:
        raise InvalidInput("METERD_VAULT_CALLBACK_ATTEMPTS must be between 1 and 20")
    if settings.vault_callback_timeout_ms < 1 or settings.vault_callback_backoff_ms < 0:
        raise InvalidInput("METERD_VAULT_CALLBACK_TIMEOUT_MS must be positive, the backoff not negative")
    return Retry(
        settings.vault_callback_attempts,
        settings.vault_callback_timeout_ms / 1000,
        settings.vault_callback_backoff_ms / 1000,
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Add the vault routes (``/products``, ``/users``, ``/usage_events``, ``/apps``) to the app."""
    jobs = CallbackJobs(callback_retry(settings))
    app.state.vault_jobs = jobs
    app.include_router(build_router(settings, jobs))
