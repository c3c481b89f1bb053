"""SigV4 verification: the captured boto3 requests, and botocore's own signer as the reference."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from meterd.core.sigv4 import HttpRequest, SignatureError, check_scope, parse_authorization, verify

CAPTURE = Path(__file__).parent / "data" / "boto3-meteringmarketplace-requests.ndjson"  # boto3 1.44.5, dummy keys
MINUTE = 60_000


def captured() -> list[HttpRequest]:
    requests = []
    for line in CAPTURE.read_text().splitlines():
        data = json.loads(line)
        requests.append(
            HttpRequest(data["method"], data["path"], "", list(data["headers"].items()), data["body"].encode())
        )
    return requests


def test_every_captured_request_verifies() -> None:
    requests = captured()
    assert len(requests) == 8
    for request in requests:
        auth = parse_authorization(request)
        assert (auth.access_key_id, auth.region, auth.service) == ("AKIDEXAMPLE", "us-east-1", "aws-marketplace")
        check_scope(auth, "aws-marketplace", auth.time_ms + 14 * MINUTE)
        verify("secret", auth, request)
        with pytest.raises(SignatureError) as wrong:
            verify("Secret", auth, request)
        assert wrong.value.kind == "InvalidSignatureException"
        altered = HttpRequest(request.method, request.path, "", request.headers, request.body + b" ")
        with pytest.raises(SignatureError):
            verify("secret", auth, altered)


def test_time_and_scope_checks() -> None:
    request = captured()[0]
    auth = parse_authorization(request)
    with pytest.raises(SignatureError) as late:
        check_scope(auth, "aws-marketplace", auth.time_ms + 15 * MINUTE + 1000)
    assert late.value.message == (
        "Signature expired: 20261122T045622Z is now earlier than 20261122T045623Z (20261122T051123Z - 15 min.)"
    )
    with pytest.raises(SignatureError) as early:
        check_scope(auth, "aws-marketplace", auth.time_ms - 16 * MINUTE)
    assert early.value.message.startswith("Signature not yet current: 20261122T045622Z is still later than")
    with pytest.raises(SignatureError) as service:
        check_scope(auth, "execute-api", auth.time_ms)
    assert "correct service: 'execute-api'" in service.value.message


@pytest.mark.parametrize(
    ("authorization", "kind"),
    [
        (None, "MissingAuthenticationTokenException"),
        ("Basic abc", "IncompleteSignatureException"),
        (
            "AWS4-HMAC-SHA256 Credential=A/20261122/us-east-1/aws-marketplace/aws4_request",
            "IncompleteSignatureException",
        ),
        ("AWS4-HMAC-SHA256 Credential=A/x, SignedHeaders=host, Signature=00", "IncompleteSignatureException"),
        (
            "AWS4-HMAC-SHA256 Credential=A/20261122/r/s/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "InvalidSignatureException",
        ),
    ],
)
def test_malformed_authorization(authorization: str | None, kind: str) -> None:
    headers = [("Host", "h"), ("X-Amz-Date", "20261122T045622Z")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    with pytest.raises(SignatureError) as caught:
        parse_authorization(HttpRequest("POST", "/", "", headers, b""))
    assert caught.value.kind == kind


def test_date_header_and_credential_date() -> None:
    headers = [
        ("Host", "h"),
        ("Date", "Sun, 22 Nov 2026 04:56:22 GMT"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=A/20261121/r/aws-marketplace/aws4_request, "
            "SignedHeaders=date;host, Signature=00",
        ),
    ]
    auth = parse_authorization(HttpRequest("POST", "/", "", headers, b""))
    assert auth.amz_date == "20261122T045622Z"
    with pytest.raises(SignatureError) as caught:
        check_scope(auth, "aws-marketplace", auth.time_ms)
    assert "does not match YYYYMMDD" in caught.value.message


text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=200),
    params=st.lists(st.tuples(text, text), max_size=4),
    segments=st.lists(st.text("abcXYZ09-_.~", min_size=1, max_size=6), max_size=3),
    custom=st.text("ab ", max_size=10),
    region=st.sampled_from(["us-east-1", "eu-west-3", "local"]),
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
)
def test_botocore_signatures_verify(
    body: bytes, params: list[tuple[str, str]], segments: list[str], custom: str, region: str, secret: str
) -> None:
    """Whatever botocore signs (paths, queries, odd header spacing), the verifier agrees with it."""
    path = "/" + "/".join(segments)
    url = f"http://127.0.0.1:8080{path}" + (f"?{urlencode(params)}" if params else "")
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Custom": f" {custom}  x ", "X-Amz-Target": "AWSMPMeteringService.MeterUsage"},
    )
    SigV4Auth(Credentials("AKID", secret), "aws-marketplace", region).add_auth(request)
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    headers = [("Host", split.netloc), *prepared.headers.items()]
    incoming = HttpRequest("POST", split.path or "/", split.query, headers, body)
    auth = parse_authorization(incoming)
    verify(secret, auth, incoming)
    with pytest.raises(SignatureError):
        verify(secret + "x", auth, incoming)
