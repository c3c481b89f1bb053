"""RegisterUsage (a JWT verified offline against the published JWKS) and ResolveCustomer through boto3."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.surfaces.aws.conftest import PRODUCT, Aws, fails


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_offline(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify an ES256 JWT with a key of the JWKS, independently of meterd's code; its claims."""
    head, body, sig = token.split(".")
    header = json.loads(unb64(head))
    assert header["alg"] == "ES256"
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(unb64(jwk["x"]), "big"), int.from_bytes(unb64(jwk["y"]), "big"), ec.SECP256R1()
    ).public_key()
    raw = unb64(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(unb64(body))
    return claims


def jwks(aws: Aws) -> dict[str, Any]:
    r = httpx.get(f"{aws.server.url}/aws/.well-known/jwks.json")  # public: no credentials
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_register_usage_signs_an_entitlement(aws: Aws) -> None:
    client = aws.client("acme")
    answer = client.register_usage(ProductCode=PRODUCT, PublicKeyVersion=1, Nonce="task-42")
    assert "PublicKeyRotationTimestamp" not in answer
    claims = verify_offline(answer["Signature"], jwks(aws))
    assert claims["productCode"] == PRODUCT
    assert claims["publicKeyVersion"] == 1
    assert claims["nonce"] == "task-42"
    assert claims["customerIdentifier"] == "acme"
    assert claims["customerAWSAccountId"] == "111122223333"
    assert abs(claims["iat"] - time.time()) < 60
    # a tampered token does not verify
    head, _, sig = answer["Signature"].split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "productCode": "other"}).encode()).rstrip(b"=").decode()
    try:
        verify_offline(f"{head}.{forged}.{sig}", jwks(aws))
    except InvalidSignature:
        pass
    else:
        raise AssertionError("a forged token verified")


def test_key_rotation(aws: Aws) -> None:
    client = aws.client("acme")
    fails(client.register_usage, "InvalidPublicKeyVersionException", ProductCode=PRODUCT, PublicKeyVersion=2)
    before = time.time()
    r = aws.http.post("/v1/aws/signing-keys/rotate")
    assert r.status_code == 201 and r.json()["version"] == 2
    keys = jwks(aws)["keys"]
    assert [k["kid"] for k in keys] == ["1", "2"]
    current = client.register_usage(ProductCode=PRODUCT, PublicKeyVersion=2)
    assert "PublicKeyRotationTimestamp" not in current
    assert verify_offline(current["Signature"], jwks(aws))["publicKeyVersion"] == 2
    old = client.register_usage(ProductCode=PRODUCT, PublicKeyVersion=1)
    rotated: datetime = old["PublicKeyRotationTimestamp"]
    assert before - 1 <= rotated.timestamp() <= time.time() + 1
    assert verify_offline(old["Signature"], jwks(aws))["publicKeyVersion"] == 1
    listed = aws.http.get("/v1/aws/signing-keys").json()["items"]
    assert [(k["version"], k["rotated_at"] is None) for k in listed] == [(1, False), (2, True)]


def test_register_usage_errors(aws: Aws) -> None:
    fails(aws.client("acme").register_usage, "InvalidProductCodeException", ProductCode="nope", PublicKeyVersion=1)
    fails(
        aws.client("stranger").register_usage, "CustomerNotEntitledException", ProductCode=PRODUCT, PublicKeyVersion=1
    )
    fails(aws.client("seller").register_usage, "CustomerNotEntitledException", ProductCode=PRODUCT, PublicKeyVersion=1)
    lax = aws.client("acme", validate=False)
    fails(lax.register_usage, "ValidationException", ProductCode=PRODUCT, PublicKeyVersion=0)
    fails(lax.register_usage, "ValidationException", ProductCode=PRODUCT, PublicKeyVersion=1, Nonce="n" * 256)
    fails(lax.register_usage, "ValidationException", ProductCode="bad code", PublicKeyVersion=1)


def test_only_the_first_registration_checks_the_entitlement(aws: Aws) -> None:
    entitlement = aws.entitle("initech")
    aws.access_key("task-1", "initech")
    first = aws.client("task-1")
    assert first.register_usage(ProductCode=PRODUCT, PublicKeyVersion=1)["Signature"]
    r = aws.http.post(f"/v1/aws/entitlements/{entitlement['id']}/end", json={})
    assert r.status_code == 200 and r.json()["active"] is False
    assert first.register_usage(ProductCode=PRODUCT, PublicKeyVersion=1)["Signature"]  # the running task goes on
    aws.access_key("task-2", "initech")
    fails(aws.client("task-2").register_usage, "CustomerNotEntitledException", ProductCode=PRODUCT, PublicKeyVersion=1)


def test_resolve_customer(aws: Aws) -> None:
    client = aws.client("seller", validate=False)
    issued = aws.http.post("/v1/aws/registration-tokens", json={"customer": "acme", "product": PRODUCT})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    entitlement = aws.http.get("/v1/aws/entitlements", params={"product": PRODUCT, "customer": "acme"}).json()
    answer = client.resolve_customer(RegistrationToken=token)
    assert answer["CustomerIdentifier"] == "acme"
    assert answer["CustomerAWSAccountId"] == "111122223333"
    assert answer["ProductCode"] == PRODUCT
    assert answer["LicenseArn"] == entitlement["items"][0]["license_arn"]
    assert answer["Metadata"]["AgreementId"] == entitlement["items"][0]["agreement_id"]
    fails(client.resolve_customer, "ExpiredTokenException", RegistrationToken=token)  # one-time
    for bad in ("not-a-token", "", "x" * 5000):
        fails(client.resolve_customer, "InvalidTokenException", RegistrationToken=bad)
    fails(client.resolve_customer, "ValidationException")
    short = aws.http.post(
        "/v1/aws/registration-tokens", json={"customer": "globex", "product": PRODUCT, "ttl_seconds": 1}
    )
    time.sleep(1.1)
    fails(client.resolve_customer, "ExpiredTokenException", RegistrationToken=short.json()["token"])
    refused = aws.http.post("/v1/aws/registration-tokens", json={"customer": "nobody", "product": PRODUCT})
    assert refused.status_code == 409
    assert "no active entitlement" in refused.json()["detail"]
