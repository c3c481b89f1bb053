"""The ``meterd aws-keys`` and ``meterd marketplace`` commands, used against a live server with boto3."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner

from meterd.cli import common
from meterd.cli.main import cli
from meterd.storage.base import Store
from tests.conftest import LiveServer


class Borrowed:
    """The live server's in-memory store, lent to the CLI (which must not open or close it)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def run(live_server: LiveServer, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a CLI command on the live server's database; its output."""
    if database_url == "memory://":
        store = live_server.app.state.meterd.store
        monkeypatch.setattr(common, "create_store", lambda url: Borrowed(store))
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--database", database_url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def client(server: LiveServer, akid: str, secret: str) -> Any:
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def credentials(output: str) -> tuple[str, str]:
    values = dict(line.split("=", 1) for line in output.strip().splitlines())
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


def test_cli_end_to_end(run: Any, live_server: LiveServer) -> None:
    now = time.time()
    run("marketplace", "product", "prod-9", "--dimension", "seats", "--dimension", "gb=storage_gb")
    products = json.loads(run("marketplace", "products", "--json"))
    assert [(p["code"], p["dimensions"]) for p in products] == [("prod-9", ["seats", "gb"])]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86_400))
    granted = json.loads(
        run("marketplace", "entitle", "acme", "prod-9", "--aws-account-id", "123456789012", "--start", start, "--json")
    )
    assert granted["aws_account_id"] == "123456789012" and granted["active"] is True
    buyer = credentials(run("aws-keys", "create", "--name", "instance-1", "--customer", "acme"))
    seller = credentials(run("aws-keys", "create", "--name", "seller"))
    assert buyer[0].startswith("AKIA") and len(buyer[0]) == 20 and len(buyer[1]) == 40

    metered = client(live_server, *buyer).meter_usage(
        ProductCode="prod-9", Timestamp=now, UsageDimension="gb", UsageQuantityAsDecimal="2.5"
    )
    assert metered["MeteringRecordId"]
    query = {"meter": "storage_gb", "from": now - 86_400, "to": now + 86_400, "group_by": ["customer"]}
    rows = httpx.post(
        f"{live_server.url}/v1/query", json=query, headers={"authorization": f"Bearer {live_server.admin_key}"}
    ).json()["rows"]
    assert [(r["group"], r["value"]) for r in rows] == [({"customer": "acme"}, 2.5)]
    token = run("marketplace", "token", "acme", "prod-9", "--ttl", "60").strip()
    resolved = client(live_server, *seller).resolve_customer(RegistrationToken=token)
    assert (resolved["CustomerIdentifier"], resolved["CustomerAWSAccountId"]) == ("acme", "123456789012")
    assert resolved["LicenseArn"] == granted["license_arn"]

    listed = json.loads(run("aws-keys", "list", "--json"))
    assert {k["access_key_id"] for k in listed} == {buyer[0], seller[0]}
    assert "secret" not in json.dumps(listed)
    run("aws-keys", "revoke", buyer[0])
    with pytest.raises(ClientError) as info:
        client(live_server, *buyer).register_usage(ProductCode="prod-9", PublicKeyVersion=1)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"

    versions = json.loads(run("marketplace", "signing-keys", "--rotate", "--json"))
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["rotated_at"] is not None
    other = credentials(run("aws-keys", "create", "--name", "instance-2", "--customer", "acme"))
    assert client(live_server, *other).register_usage(ProductCode="prod-9", PublicKeyVersion=2)["Signature"]

    ended = run("marketplace", "end", granted["id"])
    assert f"entitlement {granted['id']} ends at" in ended
    rows = json.loads(run("marketplace", "entitlements", "--customer", "acme", "--json"))
    assert [(r["id"], r["active"]) for r in rows] == [(granted["id"], False)]
