"""Influx test helpers: the Go client's captured requests, its reading of answers, and an allowlist setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meterd.server.settings import Settings

CAPTURE = Path(__file__).with_name("influx-go-client-requests.ndjson")  # copied from reference/wire/
REDIRECT_HOST = "app.example:8888"
FIXED_NOW = 1_717_243_200_000  # 2024-06-01T12:00:00Z


def captured() -> list[dict[str, Any]]:
    """The Go client's requests, exactly as captured (protocols.md §2)."""
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


def replay_headers(request: dict[str, Any], token: str | None = "keep") -> dict[str, str]:
    """The captured headers minus those the HTTP library sets itself; ``token`` sets (None: drops) X-Authorization."""
    headers = {k: v for k, v in request["headers"].items() if k not in ("Host", "Content-Length")}
    if token != "keep":
        headers.pop("X-Authorization", None)
        if token is not None:
            headers["X-Authorization"] = token
    return headers


def go_client_error(status: int, body: bytes) -> str | None:
    """What the Go client's ``Save`` returns as its error (v1/client.go), or None when it sees success."""
    if status in (401, 404, 500):
        try:
            return str(json.loads(body)["error"])
        except (ValueError, KeyError, TypeError):
            return "json decode error"
    if status == 422:
        try:
            errors = json.loads(body)["errors"]
        except (ValueError, KeyError, TypeError):
            return "json decode error"
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(errors.items()))
    return None


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, influx_redirect_hosts=(REDIRECT_HOST, "localhost"))
