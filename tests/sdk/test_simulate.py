"""``meterd simulate`` against a live server: the summary matches what the server stored."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

import meterd
from meterd.cli.main import cli
from tests.conftest import LiveServer


def run(live_server: LiveServer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["simulate", "--url", live_server.url, "--api-key", live_server.admin_key, *args])
    return result.exit_code, result.output


def test_simulate_reports_what_the_server_did(live_server: LiveServer) -> None:
    code, output = run(
        live_server,
        "--meter",
        "api_calls",
        "--meter",
        "storage",
        "--customers",
        "5",
        "--dimension",
        "region=eu|us",
        "--value",
        "1-9",
        "--total",
        "3000",
        "--threads",
        "3",
        "--duplicates",
        "0.1",
        "--seed",
        "7",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["sent"] == 3000 and summary["dropped"] == {} and summary["rejected"] == 0
    assert summary["accepted"] + summary["duplicates"] == 3000
    assert 150 < summary["duplicates"] < 450  # about 10% resent exactly
    with meterd.Client(live_server.url, live_server.admin_key) as client:
        start, end = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
        counts = client.query(["api_calls", "storage"], start, end, aggregation="count").rows
        assert sum(r.value or 0 for r in counts) == summary["accepted"]
        regions = client.query(["api_calls", "storage"], start, end, group_by=["region", "customer"]).rows
        assert {r.group["region"] for r in regions} == {"eu", "us"}
        assert {r.group["customer"] for r in regions} == {f"customer-{i}" for i in range(5)}


def test_simulate_paces_to_the_rate_and_prints_a_summary(live_server: LiveServer) -> None:
    started = time.monotonic()
    code, output = run(live_server, "--total", "300", "--rate", "1000", "--threads", "2")
    assert code == 0, output
    assert time.monotonic() - started >= 0.25
    assert "accepted: 300" in output and "events_per_second" in output


def test_simulate_refuses_bad_input(live_server: LiveServer) -> None:
    code, output = run(live_server, "--meter", "bad name", "--total", "5", "--json")
    assert code == 1 and "invalid events" in output and "meter" in output
    code, output = run(live_server, "--value", "9-1")
    assert code == 2 and "LOW <= HIGH" in output
    code, output = run(live_server, "--dimension", "region")
    assert code == 2 and "KEY=VALUE" in output
