"""The factory uvicorn calls in each worker process: settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.app import create_app
from meterd.server.settings import Settings


def create() -> FastAPI:
    return create_app(Settings.from_env())
