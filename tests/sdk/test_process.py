"""Process-level behaviour: fork safety, the bounded flush at interpreter exit, and light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import meterd
from tests.sdk.fakeserver import FakeServer

Make = Callable[..., meterd.Client]


@pytest.mark.parametrize("spooled", [False, True])
def test_a_forked_child_sends_its_own_events_only(
    tmp_path: Path, fake: FakeServer, make_client: Make, spooled: bool
) -> None:
    options = {"spool_path": str(tmp_path / "s.db")} if spooled else {}
    client = make_client(**options)
    for i in range(10):
        client.meter("m", 1, "parent", id=f"p{i}")  # queued, not yet sent: the parent owns these
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the sender thread did not survive the fork; a fresh one must start
        try:
            os.close(read)
            fake.events.clear()
            for i in range(5):
                client.meter("m", 1, "child", id=f"c{i}")
            flushed = client.flush(10)
            report = {"flushed": flushed, "ids": sorted(fake.events), "stats": client.stats().enqueued}
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert child == {"flushed": True, "ids": [f"c{i}" for i in range(5)], "stats": 5}
    assert client.flush(10)
    assert sorted(fake.events) == [f"p{i}" for i in range(10)]


EXIT_SCRIPT = """
import json, sys, httpx, meterd
seen = []
def handler(request):
    records = json.loads(request.content)
    seen.extend(records)
    results = [{"index": i, "id": r["id"], "outcome": "accepted"} for i, r in enumerate(records)]
    return httpx.Response(200, json={"results": results, "counts": {}})
def report():
    print(len(seen), flush=True)
import atexit; atexit.register(report)  # registered first, so it runs after the client's exit hook (LIFO)
client = meterd.Client("http://fake", "k", transport=httpx.MockTransport(handler),
                       batching=meterd.Batching(flush_interval=60, shutdown_timeout=5))
for i in range(1234):
    client.meter("m", 1, "c")
"""


def test_interpreter_exit_flushes_within_the_shutdown_timeout() -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "1234"


LIGHT = """
import sys
import meterd
heavy = ("fastapi", "starlette", "pydantic", "uvicorn", "msgspec", "psycopg", "click", "rich", "sqlite3",
         "httpx", "meterd.server", "meterd.cli", "meterd.storage", "meterd.surfaces", "meterd.service")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith(heavy)))
client = meterd.Client("http://x", "k", send=False)
client.meter("m", 1, "c")
server_side = ("fastapi", "starlette", "pydantic", "uvicorn", "msgspec", "psycopg", "sqlite3",
               "meterd.server", "meterd.cli", "meterd.storage", "meterd.surfaces", "meterd.service")
print(sorted(m for m in sys.modules if m.split(".")[0] in server_side or m.startswith(server_side)))
"""


def test_import_meterd_is_light() -> None:
    """``import meterd`` loads no server, CLI, store, driver or I/O library; a Client adds only httpx.

    (httpx itself imports click and rich when they are installed, for its own CLI; that is httpx's choice.)
    """
    out = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == ["[]", "[]"]


def test_public_api_is_sorted_and_complete() -> None:
    assert meterd.__all__ == sorted(meterd.__all__)
    modules = {n for n in dir(meterd) if isinstance(getattr(meterd, n), ModuleType)} - {"errors"}
    public = {n for n in dir(meterd) if not n.startswith("_")} - modules - {"annotations", "TYPE_CHECKING", "Any"}
    assert public | {"Client", "AsyncClient"} == set(meterd.__all__) - {"__version__"}
    assert meterd.Client is meterd.sdk.Client and meterd.AsyncClient is meterd.sdk.AsyncClient
    assert issubclass(meterd.APIError, meterd.MeterdError) and issubclass(meterd.TransportError, meterd.MeterdError)
    assert issubclass(meterd.errors.NotFoundError, meterd.APIError)
