"""Fixtures for the AMIE surface: the real amieclient in .venv-amie, run by subprocess against a live server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
AMIE_PYTHON = ROOT / ".venv-amie" / "bin" / "python"
DRIVER = Path(__file__).with_name("driver.py")
PREFIX = "/amie/api/v1"

Runner = Callable[..., list[Any]]


@pytest.fixture
def amie(live_server: LiveServer) -> Runner:
    """``amie(steps, site=..., key=...)`` runs the real client through ``steps`` and returns one result per step."""
    if not AMIE_PYTHON.exists():
        pytest.skip("amieclient's venv is missing: run `make .venv-amie/.installed` (make test does)")

    def run(steps: list[dict[str, Any]], site: str = "default", key: str | None = None) -> list[Any]:
        program = {"url": live_server.url + PREFIX, "site": site, "key": key or live_server.admin_key, "steps": steps}
        done = subprocess.run(
            [str(AMIE_PYTHON), str(DRIVER)],
            input=json.dumps(program),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results: list[Any] = json.loads(done.stdout)
        return results

    return run


@pytest.fixture
def native(live_server: LiveServer) -> httpx.Client:
    """A native API client on the live server, with the admin key."""
    headers = {"authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as c:
        yield c  # type: ignore[misc]


def compute(local_record_id: str, **changes: Any) -> dict[str, Any]:
    """Keyword arguments of a valid ComputeUsageRecord."""
    record: dict[str, Any] = {
        "username": "alice",
        "local_project_id": "p1",
        "local_record_id": local_record_id,
        "resource": "expanse",
        "submit_time": "2024-01-01T00:00:00Z",
        "start_time": "2024-01-01T00:05:00Z",
        "end_time": "2024-01-01T01:05:00Z",
        "charge": "10.5",
        "node_count": "2",
        "cpu_core_count": "64",
        "queue": "normal",
    }
    record.update(changes)
    return record


def storage(local_record_id: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "charge": "2",
        "collection_time": "2024-01-01T12:00:00Z",
        "local_project_id": "p1",
        "local_record_id": local_record_id,
        "resource": "expanse-disk",
        "username": "alice",
        "bytes_stored": "1000",
        "media_type": "disk",
    }
    record.update(changes)
    return record


def adjustment(local_record_id: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "adjustment_type": "credit",
        "charge": "5",
        "start_time": "2024-01-01T00:00:00Z",
        "local_project_id": "p1",
        "local_record_id": local_record_id,
        "resource": "expanse",
        "username": "alice",
        "comment": "outage",
    }
    record.update(changes)
    return record
