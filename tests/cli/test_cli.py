"""The ``meterd`` CLI: admin commands on a database, ingest and query against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meterd.cli.main import cli
from tests.conftest import LiveServer


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_admin_commands_on_a_database(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("meterd.storage.sqlite")
    db = str(tmp_path / "cli.db")
    assert runner.invoke(cli, ["migrate", "--database", db]).exit_code == 0
    created = runner.invoke(cli, ["keys", "create", "--database", db, "--name", "ci", "--scope", "read", "--json"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["key"].startswith("mk_") and key["scopes"] == ["read"]
    listed = json.loads(runner.invoke(cli, ["keys", "list", "--database", db, "--json"]).output)
    assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
    assert runner.invoke(cli, ["keys", "revoke", "--database", db, key["id"]]).exit_code == 0
    assert runner.invoke(cli, ["keys", "revoke", "--database", db, "nope"]).exit_code == 1
    assert runner.invoke(cli, ["customers", "add", "--database", db, "acme", "--trait", "plan=pro"]).exit_code == 0
    customers = json.loads(runner.invoke(cli, ["customers", "list", "--database", db, "--json"]).output)
    assert customers[0]["id"] == "acme" and customers[0]["traits"] == {"plan": "pro"}
    assert runner.invoke(cli, ["meters", "add", "--database", db, "users", "--aggregation", "max"]).exit_code == 0
    meters = json.loads(runner.invoke(cli, ["meters", "list", "--database", db, "--json"]).output)
    assert [(m["key"], m["aggregation"]) for m in meters] == [("users", "max")]


def test_ingest_files_then_query(runner: CliRunner, live_server: LiveServer, tmp_path: Path) -> None:
    env = {"METERD_URL": live_server.url, "METERD_API_KEY": live_server.admin_key}
    ndjson = tmp_path / "usage.ndjson"
    ndjson.write_text(
        "\n".join(
            json.dumps(
                {"id": f"e{i}", "meter": "calls", "customer": f"c{i % 2}", "time": "2024-05-01T10:00:00Z", "value": i}
            )
            for i in range(25)
        )
    )
    result = runner.invoke(cli, ["ingest", str(ndjson), "--batch-size", "10"], env=env)
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "25" in result.output
    again = runner.invoke(cli, ["ingest", str(ndjson)], env=env)
    assert again.exit_code == 0 and "duplicate" in again.output

    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "id,meter,customer,time,value,region\nx1,calls,c0,2024-05-01T11:00:00Z,100,eu\n"
        "x2,calls,c0,2024-05-01T11:00:00Z,not-a-number,eu\n"
    )
    bad = runner.invoke(cli, ["ingest", str(csv_file)], env=env)
    assert bad.exit_code == 1 and "value: must be a number" in bad.output

    query = [
        "query",
        "--meter",
        "calls",
        "--from",
        "2024-05-01T00:00:00Z",
        "--to",
        "2024-05-02T00:00:00Z",
        "--group-by",
        "customer",
        "--json",
    ]
    rows = json.loads(runner.invoke(cli, query, env=env).output)
    assert {r["customer"]: r["value"] for r in rows} == {"c0": sum(range(0, 25, 2)) + 100, "c1": sum(range(1, 25, 2))}
    csv_out = runner.invoke(cli, [*query[:-1], "--csv"], env=env).output.splitlines()
    assert csv_out[0] == "meter,start,end,customer,value"
    table = runner.invoke(cli, query[:-1], env=env)
    assert table.exit_code == 0 and "c0" in table.output


def test_query_reports_server_errors(runner: CliRunner, live_server: LiveServer) -> None:
    env = {"METERD_URL": live_server.url, "METERD_API_KEY": live_server.admin_key}
    result = runner.invoke(
        cli, ["query", "--meter", "m", "--from", "2024-05-02T00:00:00Z", "--to", "2024-05-01T00:00:00Z"], env=env
    )
    assert result.exit_code == 1 and "422" in result.output
