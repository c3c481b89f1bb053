"""``meterd influx tokens list|revoke`` and ``meterd influx servers`` on the same database the server uses."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

import meterd.cli.common
from meterd.cli.main import cli
from meterd.core.errors import Unauthenticated
from meterd.core.influx_registration import Registration
from meterd.service import Meterd
from meterd.service.influx import InfluxService
from meterd.service.influx_tokens import InfluxTokens
from meterd.storage.base import Store
from meterd.storage.factory import create_store


def test_list_and_revoke_tokens_and_list_servers(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = create_store(database_url)
    if database_url == "memory://":  # the CLI opens the database by URL: share the in-memory one
        monkeypatch.setattr(meterd.cli.common, "create_store", lambda url: store)

    async def setup() -> str:
        await store.open()
        try:
            service = InfluxService(Meterd(store), InfluxTokens(Meterd(store), "default"))
            issued = await service.tokens.register(
                Registration("c1", "influxdb", None), "acme", "Acme", "a@acme.example"
            )
            caller = await service.caller(issued.token)
            body = {"cluster_id": "c1", "server_id": "s1", "host": "h", "product": "influxdb", "version": "1"}
            await service.save_server(caller, body, json.dumps(body))
            return issued.token
        finally:
            await store.close()

    token = asyncio.run(setup())
    runner = CliRunner()
    listed = runner.invoke(cli, ["influx", "tokens", "list", "--database", database_url, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["customer"], row["cluster_id"], row["product"], row["revoked_at"]) == ("acme", "c1", "influxdb", None)
    servers = runner.invoke(cli, ["influx", "servers", "--database", database_url, "--customer", "acme", "--json"])
    assert [(s["cluster_id"], s["server_id"], s["customer"]) for s in json.loads(servers.output)] == [
        ("c1", "s1", "acme")
    ]
    revoked = runner.invoke(cli, ["influx", "tokens", "revoke", row["id"], "--database", database_url])
    assert revoked.exit_code == 0 and revoked.output == f"revoked {row['id']} (customer acme)\n"
    missing = runner.invoke(cli, ["influx", "tokens", "revoke", "nope", "--database", database_url])
    assert missing.exit_code == 1 and "no influx token 'nope'" in missing.output

    async def resolve(store: Store) -> None:  # a fresh store object: a database's connections belong to one loop
        await store.open()
        try:
            with pytest.raises(Unauthenticated, match="revoked"):
                await InfluxTokens(Meterd(store), "default").resolve(token)
        finally:
            await store.close()

    asyncio.run(resolve(store if database_url == "memory://" else create_store(database_url)))
