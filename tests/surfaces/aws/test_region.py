"""With ``aws_region`` configured, credentials scoped to another region are refused (per operation's error)."""

from __future__ import annotations

import time

import pytest

from meterd.server.settings import Settings
from tests.surfaces.aws.conftest import PRODUCT, Aws, fails


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, aws_region="eu-west-1")


def test_configured_region(aws: Aws) -> None:
    now = time.time()
    usage = {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantity": 1}
    assert aws.client("acme", region="eu-west-1").meter_usage(**usage)["MeteringRecordId"]
    elsewhere = aws.client("acme", region="us-east-1")
    fails(elsewhere.meter_usage, "InvalidEndpointRegionException", **usage)
    fails(elsewhere.register_usage, "InvalidRegionException", ProductCode=PRODUCT, PublicKeyVersion=1)
    seller = aws.client("seller", region="us-east-1")
    fails(seller.batch_meter_usage, "InvalidSignatureException", ProductCode=PRODUCT, UsageRecords=[])
    fails(seller.resolve_customer, "InvalidSignatureException", RegistrationToken="t")
