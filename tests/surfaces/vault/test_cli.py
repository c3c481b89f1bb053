"""``meterd usage USER START STOP``: the bin/vault-usage report against a real server."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from click.testing import CliRunner

from meterd.cli.main import cli
from meterd.cli.usage import line_for, summarize
from meterd.core.timeutil import parse_time
from tests.conftest import LiveServer

U, APP = "user1@heroku.com", "app1@heroku.com"
DYNO, ADDON = "platform:dyno:logical", "addon:memcache:100mb"


def seed(server: LiveServer) -> dict[str, str]:
    ids = {name: str(uuid.uuid4()) for name in ("web", "worker", "addon", "own", "open")}
    puts = [
        f"/users/{U}/apps/{APP}/open/{ids['own']}/2013-01-01T00:00:00Z",
        f"/products/{DYNO}/usage/{APP}/events/{ids['web']}/open/2012-12-31T22:00:00Z/close/2013-01-01T02:00:00Z",
        f"/products/{DYNO}/usage/{APP}/events/{ids['worker']}/open/2013-01-01T03:00:00Z/close/2013-01-01T03:30:00Z",
        f"/products/{DYNO}/usage/{APP}/events/{ids['open']}/open/2013-01-01T23:00:00Z",
        f"/products/{ADDON}/usage/{U}/events/{ids['addon']}/open/2013-01-01T00:00:00Z/close/2013-01-01T12:00:00Z",
    ]
    with httpx.Client(base_url=server.url, auth=("user", server.admin_key)) as client:
        for path in puts:
            assert client.put(path).status_code == 201
    return ids


def test_report_as_json(live_server: LiveServer) -> None:
    ids = seed(live_server)
    env = {"METERD_URL": live_server.url, "METERD_API_KEY": live_server.admin_key}
    result = CliRunner().invoke(cli, ["usage", U, "2013-01-01", "2013-01-02", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["start_time"], report["stop_time"], report["errors"]) == (
        "2013-01-01T00:00:00Z",
        "2013-01-02T00:00:00Z",
        0,
    )
    by_product = {p["product"]: p for p in report["products"]}
    assert list(by_product) == [ADDON, DYNO]
    assert by_product[ADDON]["seconds"] == 12 * 3600
    dyno = {e["id"]: e for e in by_product[DYNO]["events"]}
    # web is clipped to the ownership (from 00:00); the open one runs to the window's end
    assert (dyno[ids["web"]]["start_time"], dyno[ids["web"]]["seconds"]) == ("2013-01-01T00:00:00Z", 7200)
    assert dyno[ids["worker"]]["seconds"] == 1800
    assert (dyno[ids["open"]]["stop_time"], dyno[ids["open"]]["note"], dyno[ids["open"]]["seconds"]) == (
        None,
        "open",
        3600,
    )
    assert by_product[DYNO]["seconds"] == 7200 + 1800 + 3600
    assert report["total_seconds"] == 12 * 3600 + 12600


def test_report_tables_and_exclude(live_server: LiveServer) -> None:
    seed(live_server)
    url = live_server.url.replace("http://", f"http://vault:{live_server.admin_key}@")  # VAULT_USAGE_URL style
    result = CliRunner().invoke(
        cli,
        ["usage", U, "2013-01-01T00:00:00Z", "2013-01-02T00:00:00Z", "--exclude", ADDON],
        env={"VAULT_USAGE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert DYNO in result.output and ADDON not in result.output
    assert "TOTAL" in result.output and "3:30:00" in result.output and "3.50" in result.output


def test_errors_are_reported(live_server: LiveServer) -> None:
    runner = CliRunner()
    env = {"METERD_URL": live_server.url}
    assert runner.invoke(cli, ["usage", U, "2013-01-01", "2013-01-02"], env=env).exit_code == 2  # no key
    bad_key = runner.invoke(cli, ["usage", U, "2013-01-01", "2013-01-02", "--api-key", "mk_x_y"], env=env)
    assert bad_key.exit_code == 1 and "401" in bad_key.output
    env["METERD_API_KEY"] = live_server.admin_key
    assert runner.invoke(cli, ["usage", U, "2013-01-02", "2013-01-01"], env=env).exit_code == 2
    assert runner.invoke(cli, ["usage", U, "soon", "2013-01-01"], env=env).exit_code == 2


START, STOP, NOW = (parse_time(t) for t in ("2013-01-01T00:00:00Z", "2013-01-02T00:00:00Z", "2013-01-01T06:00:00Z"))


@pytest.mark.parametrize(
    ("start", "stop", "note", "seconds"),
    [
        ("2013-01-01T01:00:00Z", "2013-01-01T02:00:00Z", "", 3600),
        ("2012-12-31T00:00:00Z", "2013-01-03T00:00:00Z", "", 86400),  # cut to the window
        ("2013-01-01T05:00:00Z", None, "open", 3600),  # open: up to now
        ("2013-01-01T05:00:00Z", "2013-01-01T04:00:00Z", "ERROR: start_time is after stop_time", 0),
        ("2013-01-01T05:00:00.000Z", "2013-01-01T06:00:00Z", "ERROR: unreadable start_time or stop_time", 0),
        (None, "2013-01-01T06:00:00Z", "ERROR: unreadable start_time or stop_time", 0),
    ],
)
def test_inconsistent_events_are_flagged(start: str | None, stop: str | None, note: str, seconds: int) -> None:
    line = line_for({"id": "e", "consumer": "c", "start_time": start, "stop_time": stop}, START, STOP, NOW)
    assert (line.note, line.seconds) == (note, seconds)


def test_summary_groups_by_product() -> None:
    events = [
        {"id": "1", "product": "b", "consumer": "c", "start_time": "2013-01-01T00:00:00Z", "stop_time": None},
        {
            "id": "2",
            "product": "a",
            "consumer": "c",
            "start_time": "2013-01-01T00:00:00Z",
            "stop_time": "2013-01-01T00:00:10Z",
        },
    ]
    report = summarize(events, START, STOP, NOW)
    assert [(p.product, p.seconds) for p in report] == [("a", 10), ("b", 6 * 3600)]
