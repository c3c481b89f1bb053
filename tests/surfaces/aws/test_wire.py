"""The AWS wire: SigV4 failures, dispatch by X-Amz-Target, error format, request ids, faults."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meterd.core.errors import StorageError
from tests.surfaces.aws.conftest import PRODUCT, Aws, fails

CT = "application/x-amz-json-1.1"


def signed_headers(
    aws: Aws, target: str, body: bytes, key: str = "seller", service: str = "aws-marketplace", region: str = "us-east-1"
) -> dict[str, str]:
    """Headers of a request signed by botocore's own SigV4 signer."""
    akid, secret = aws.keys[key]
    request = AWSRequest(
        method="POST",
        url=aws.server.url + "/",
        data=body,
        headers={"Content-Type": CT, "X-Amz-Target": f"AWSMPMeteringService.{target}"},
    )
    SigV4Auth(Credentials(akid, secret), service, region).add_auth(request)
    return dict(request.headers.items())


def post(aws: Aws, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(aws.server.url + "/", content=body, headers=headers)


def error_of(r: httpx.Response, code: str, status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == CT
    assert r.headers["x-amzn-errortype"] == code
    assert r.headers["x-amzn-requestid"]
    body = r.json()
    assert set(body) == {"__type", "message"} and body["__type"] == code
    message: str = body["message"]
    return message


def usage(now: float) -> dict[str, Any]:
    return {"ProductCode": PRODUCT, "Timestamp": now, "UsageDimension": "users", "UsageQuantity": 1}


def test_wrong_secret_unknown_key_revoked_key(aws: Aws) -> None:
    akid, secret = aws.keys["acme"]
    aws.keys["wrong"] = (akid, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    aws.keys["unknown"] = ("AKIAAAAAAAAAAAAAAAAA", secret)
    now = time.time()
    message = fails(aws.client("wrong").meter_usage, "InvalidSignatureException", **usage(now))["Error"]["Message"]
    assert "does not match the signature you provided" in message
    fails(aws.client("unknown").meter_usage, "UnrecognizedClientException", **usage(now))
    assert aws.client("acme").meter_usage(**usage(now))["MeteringRecordId"]
    r = aws.http.delete(f"/v1/aws/access-keys/{akid}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    fails(aws.client("acme").meter_usage, "UnrecognizedClientException", **usage(now))
    listed = aws.http.get("/v1/aws/access-keys").json()["items"]
    assert all("secret" not in json.dumps(k).lower() for k in listed)
    assert {k["access_key_id"] for k in listed if k["revoked_at"]} == {akid}


@pytest.mark.parametrize(
    ("shift", "expected"), [(-20, "Signature expired"), (20, "Signature not yet current"), (-10, None), (10, None)]
)
def test_clock_skew(aws: Aws, monkeypatch: pytest.MonkeyPatch, shift: int, expected: str | None) -> None:
    import botocore.auth

    moment = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=shift)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    client = aws.client("seller")
    if expected is None:
        assert client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[])["Results"] == []
    else:
        message = fails(client.batch_meter_usage, "InvalidSignatureException", ProductCode=PRODUCT, UsageRecords=[])
        assert message["Error"]["Message"].startswith(expected)


def test_any_region_by_default(aws: Aws) -> None:
    for region in ("us-east-1", "eu-central-1", "ap-southeast-2"):
        client = aws.client("seller", region=region)
        assert client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[])["UnprocessedRecords"] == []


def test_signature_problems_on_the_wire(aws: Aws) -> None:
    body = json.dumps({"ProductCode": PRODUCT, "UsageRecords": []}).encode()
    base = {"Content-Type": CT, "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage"}
    error_of(post(aws, body, base), "MissingAuthenticationTokenException")
    error_of(post(aws, body, {**base, "Authorization": "Bearer abc"}), "IncompleteSignatureException")
    error_of(
        post(aws, body, {**base, "Authorization": "AWS4-HMAC-SHA256 Credential=x"}), "IncompleteSignatureException"
    )
    wrong_service = signed_headers(aws, "BatchMeterUsage", body, service="execute-api")
    assert "correct service" in error_of(post(aws, body, wrong_service), "InvalidSignatureException")
    good = signed_headers(aws, "BatchMeterUsage", body)
    assert post(aws, body, good).status_code == 200
    tampered = body.replace(b"[]", b"[ ]")
    error_of(post(aws, tampered, good), "InvalidSignatureException")
    retargeted = {**good, "X-Amz-Target": "AWSMPMeteringService.ResolveCustomer"}
    error_of(post(aws, body, retargeted), "InvalidSignatureException")
    no_date = {k: v for k, v in good.items() if k != "X-Amz-Date"}
    error_of(post(aws, body, no_date), "IncompleteSignatureException")


def test_dispatch_and_body_errors(aws: Aws) -> None:
    body = b"{}"
    for target in ("AWSMPMeteringService.Nope", "Other.MeterUsage", "AWSMPMeteringService"):
        headers = {**signed_headers(aws, "MeterUsage", body), "X-Amz-Target": target}
        error_of(post(aws, body, headers), "UnknownOperationException")
    for bad in (b"{not json", b"[1, 2]", b'"text"'):
        error_of(post(aws, bad, signed_headers(aws, "BatchMeterUsage", bad)), "SerializationException")
    records = json.dumps({"ProductCode": PRODUCT, "UsageRecords": "nope"}).encode()
    error_of(post(aws, records, signed_headers(aws, "BatchMeterUsage", records)), "ValidationException")
    huge = json.dumps({"ProductCode": PRODUCT, "UsageRecords": [], "pad": "x" * (1024 * 1024)}).encode()
    assert "smaller than" in error_of(
        post(aws, huge, signed_headers(aws, "BatchMeterUsage", huge)), "ValidationException"
    )
    # without X-Amz-Target, POST / is not the AWS surface
    plain = httpx.post(aws.server.url + "/", content=body, headers={"content-type": "application/json"})
    assert plain.status_code in (404, 405)
    assert plain.headers["content-type"] == "application/problem+json"
    assert "x-amzn-requestid" not in plain.headers


def test_request_ids_are_unique(aws: Aws) -> None:
    client = aws.client("seller")
    ids = {
        client.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[])["ResponseMetadata"]["RequestId"]
        for _ in range(3)
    }
    ids.add(
        fails(client.resolve_customer, "InvalidTokenException", RegistrationToken="t")["ResponseMetadata"]["RequestId"]
    )
    assert len(ids) == 4


def test_store_failure_is_an_internal_service_error(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    store = aws.server.app.state.meterd.store

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("the database is unreachable")

    monkeypatch.setattr(store, "get_object", broken)
    client = aws.client("acme")
    fails(client.meter_usage, "InternalServiceErrorException", 500, **usage(time.time()))

    async def buggy(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "get_object", buggy)
    fails(client.register_usage, "InternalServiceErrorException", 500, ProductCode=PRODUCT, PublicKeyVersion=1)
