"""The durable spool: written before meter() returns, deleted only on acknowledgement, drained first after a
restart (even after SIGKILL), bounded with a policy and a counter."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import meterd
from tests.conftest import free_port
from tests.sdk.fakeserver import FakeServer

Make = Callable[..., meterd.Client]


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM spool").fetchone()[0]
    return count


def test_events_are_on_disk_when_meter_returns_and_gone_once_acknowledged(
    tmp_path: Path, fake: FakeServer, make_client: Make
) -> None:
    path = tmp_path / "spool.db"
    fake.faults.extend([httpx.ConnectError("down")] * 1000)
    client = make_client(spool_path=str(path))
    for i in range(100):
        client.meter("m", i, "c")
    assert rows(path) == 100  # before anything could be sent
    assert client.flush(0.2) is False
    fake.faults.clear()
    assert client.flush(10)
    assert rows(path) == 0
    assert fake.total() == sum(range(100))
    assert client.stats().pending == 0


def test_a_restart_drains_what_an_earlier_process_left(tmp_path: Path, fake: FakeServer, make_client: Make) -> None:
    path = tmp_path / "spool.db"
    fake.faults.extend([httpx.ConnectError("down")] * 1000)
    first = make_client(spool_path=str(path))
    for i in range(50):
        first.meter("m", i, "c")
    assert first.close(timeout=0.2) is False  # the server is down: nothing is lost, nothing counted dropped
    assert first.stats().dropped == {} and rows(path) == 50
    fake.faults.clear()
    second = make_client(spool_path=str(path))
    assert second.stats().recovered == 50
    deadline = time.monotonic() + 10
    while rows(path) and time.monotonic() < deadline:  # drained without any meter() or flush()
        time.sleep(0.02)
    assert rows(path) == 0 and fake.total() == sum(range(50))
    second.meter("m", 1000, "c")
    assert second.flush(10)
    assert fake.total() == sum(range(50)) + 1000 and rows(path) == 0


SCRIPT = """
import sys, meterd
client = meterd.Client(sys.argv[1], "k", spool_path=sys.argv[2], timeout=0.5)
for i in range(int(sys.argv[3])):
    client.meter("m", i, "c", dimensions={"i": i})
print("metered", flush=True)
import time; time.sleep(60)
"""


@pytest.mark.slow
def test_sigkill_of_the_host_process_loses_nothing(tmp_path: Path, fake: FakeServer, make_client: Make) -> None:
    path, count = tmp_path / "spool.db", 3000
    dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: every send fails
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), dead_url, str(path), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "metered"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    client = make_client(spool_path=str(path))
    assert client.stats().recovered == count
    assert client.flush(20)
    assert len(fake.events) == count and fake.total() == sum(range(count))
    assert sorted(e.dimensions["i"] for e in fake.events.values()) == list(range(count))  # type: ignore[type-var]


def test_drop_new_refuses_when_full_and_counts(tmp_path: Path, fake: FakeServer, make_client: Make) -> None:
    fake.faults.extend([httpx.ConnectError("down")] * 1000)
    client = make_client(spool_path=str(tmp_path / "s.db"), spool_max_bytes=2048)
    for i in range(100):
        client.meter("m", 1, "c", id=f"e{i:03d}")
    kept = rows(tmp_path / "s.db")
    assert 0 < kept < 100
    assert client.stats().dropped == {"spool_full": 100 - kept}
    fake.faults.clear()
    assert client.flush(10)
    assert sorted(fake.events) == [f"e{i:03d}" for i in range(kept)]  # the oldest were kept


def test_drop_oldest_evicts_and_counts(tmp_path: Path, fake: FakeServer, make_client: Make) -> None:
    fake.faults.extend([httpx.ConnectError("down")] * 1000)
    client = make_client(spool_path=str(tmp_path / "s.db"), spool_max_bytes=2048, spool_full="drop_oldest")
    for i in range(100):
        client.meter("m", 1, "c", id=f"e{i:03d}")
    kept = rows(tmp_path / "s.db")
    assert client.stats().dropped == {"spool_evicted": 100 - kept}
    fake.faults.clear()
    assert client.flush(10)
    assert sorted(fake.events)[-1] == "e099"  # the newest survive
    assert len(fake.events) == kept


def test_data_errors_leave_the_spool_and_wrong_keys_do_not(tmp_path: Path, fake: FakeServer, make_client: Make) -> None:
    path = tmp_path / "s.db"
    client = make_client(spool_path=str(path))
    fake.faults.append(422)
    client.meter("m", 1, "c")
    assert client.flush(5)
    assert rows(path) == 0 and client.stats().dropped == {"http_422": 1}
    fake.faults.extend([401, 401, 403])  # a key problem keeps events until it is fixed
    client.meter("m", 2, "c")
    assert client.flush(5)
    assert rows(path) == 0 and fake.total() == 2


def test_a_spool_that_cannot_be_written_counts_the_loss_instead_of_raising(tmp_path: Path, make_client: Make) -> None:
    client = make_client(spool_path=str(tmp_path / "s.db"))
    assert client.spool is not None
    client.spool._db.close()  # as if the disk went away
    client.meter("m", 1, "c")
    assert client.stats().dropped == {"spool_error": 1}


def test_a_spool_path_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(meterd.errors.ConfigurationError, match="cannot be opened"):
        meterd.Client("http://fake", "k", spool_path=str(tmp_path / "missing" / "dir" / "s.db"))
    with pytest.raises(meterd.errors.ConfigurationError, match="at least 1024"):
        meterd.Client("http://fake", "k", spool_path=str(tmp_path / "s.db"), spool_max_bytes=10)
