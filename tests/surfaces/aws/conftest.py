"""Fixtures of the AWS surface: a live server with a product, entitled customers and real access keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.conftest import LiveServer

PRODUCT = "prod-1"
DAY = 86_400


@dataclass
class Aws:
    """A live meterd with product ``prod-1`` (dimensions users, api_calls) and AWS keys made through its API."""

    server: LiveServer
    http: httpx.Client
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def client(self, key: str = "acme", *, region: str = "us-east-1", validate: bool = True) -> Any:
        """A real boto3 client signed with one of the keys (retries off)."""
        akid, secret = self.keys[key]
        config = Config(retries={"max_attempts": 1}, parameter_validation=validate)
        return boto3.client(
            "meteringmarketplace",
            endpoint_url=self.server.url,
            region_name=region,
            aws_access_key_id=akid,
            aws_secret_access_key=secret,
            config=config,
        )

    def access_key(self, name: str, customer: str | None = None) -> tuple[str, str]:
        body: dict[str, Any] = {"name": name}
        if customer is not None:
            body["customer"] = customer
        r = self.http.post("/v1/aws/access-keys", json=body)
        assert r.status_code == 201, r.text
        pair = (r.json()["access_key_id"], r.json()["secret_access_key"])
        self.keys[name] = pair
        return pair

    def entitle(self, customer: str, product: str = PRODUCT, **extra: Any) -> dict[str, Any]:
        r = self.http.post("/v1/aws/entitlements", json={"customer": customer, "product": product, **extra})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def query(self, **spec: Any) -> list[dict[str, Any]]:
        r = self.http.post("/v1/query", json=spec)
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()["rows"]
        return rows


@pytest.fixture
def aws(live_server: LiveServer) -> Iterator[Aws]:
    headers = {"authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        env = Aws(live_server, http)
        product = {"code": PRODUCT, "name": "Product one", "dimensions": [{"name": "users"}, {"name": "api_calls"}]}
        r = http.post("/v1/aws/products", json=product)
        assert r.status_code == 201, r.text
        start = time.time() - 2 * DAY
        env.entitle("acme", start=start, aws_account_id="111122223333")
        env.entitle("globex", start=start, aws_account_id="444455556666")
        env.access_key("acme", "acme")
        env.access_key("seller")
        env.access_key("stranger", "nobody")
        yield env


def now() -> float:
    return time.time()


def fails(call: Any, code: str, status: int = 400, **params: Any) -> dict[str, Any]:
    """Call a boto3 operation expecting the error ``code`` at ``status``; the error response."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        call(**params)
    response: dict[str, Any] = info.value.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    assert response["ResponseMetadata"]["RequestId"], response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == code
    assert headers["content-type"] == "application/x-amz-json-1.1"
    return response


def hour_start(t: float) -> float:
    return t - t % 3600
