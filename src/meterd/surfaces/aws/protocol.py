"""The AWS JSON 1.1 protocol: dispatch by X-Amz-Target, SigV4 authentication, error and response encoding.

Every answer carries ``x-amzn-RequestId``. Errors are ``{"__type", "message"}`` with ``x-amzn-ErrorType``:
400 for client errors (412 for DryRunOperation, as AWS answers a successful dry run), 500 only for
InternalServiceErrorException (the store failed, or a bug), which the service model marks as a fault.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from meterd.core.errors import InvalidInput, MeterdError, PayloadTooLarge
from meterd.core.marketplace import MarketplaceError
from meterd.core.registration import ExpiredToken, InvalidToken
from meterd.core.sigv4 import HttpRequest, SignatureError, check_scope, parse_authorization, verify
from meterd.server.body import read_limited
from meterd.server.settings import Settings
from meterd.service.awsmarket import Marketplace
from meterd.service.awsmetering import Caller
from meterd.surfaces.aws.operations import OPERATIONS, AwsError

log = logging.getLogger("meterd.aws")
CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "AWSMPMeteringService"
SERVICE = "aws-marketplace"
MAX_BODY = 1024 * 1024
REGION_ERRORS = {"MeterUsage": "InvalidEndpointRegionException", "RegisterUsage": "InvalidRegionException"}


def has_target(scope: Scope) -> bool:
    return any(name.lower() == b"x-amz-target" for name, _ in scope.get("headers", ()))


class AwsDispatch:
    """ASGI middleware: ``POST /`` with ``X-Amz-Target`` goes to the AWS handler, anything else to the app."""

    def __init__(self, app: ASGIApp, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/" and has_target(scope):
            await self.handler(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def answer(body: Mapping[str, Any], request_id: str, status: int = 200) -> Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status, {"x-amzn-RequestId": request_id}, media_type=CONTENT_TYPE)


def fault(kind: str, message: str, request_id: str, status: int = 400) -> Response:
    """An error the way botocore parses it: ``__type`` in the body, and the type header for other SDKs."""
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": kind}
    text = json.dumps({"__type": kind, "message": message}, ensure_ascii=False)
    return Response(text, status, headers, media_type=CONTENT_TYPE)


def validation_message(exc: InvalidInput) -> str:
    """AWS style: ``2 validation errors detected: Value at 'X' failed to satisfy constraint: ...; ...``."""
    if not exc.errors:
        return exc.message
    n = len(exc.errors)
    parts = "; ".join(f"Value at '{e.path}' failed to satisfy constraint: {e.message}" for e in exc.errors)
    return f"{n} validation error{'s' if n > 1 else ''} detected: {parts}"


def error_response(exc: Exception, request_id: str) -> Response:
    """Map any exception onto the AWS error format; only server faults answer 500."""
    if isinstance(exc, AwsError):
        return fault(exc.kind, exc.message, request_id, exc.status)
    if isinstance(exc, SignatureError):
        return fault(exc.kind, exc.message, request_id)
    if isinstance(exc, MarketplaceError):
        return fault(exc.kind, exc.message, request_id)
    if isinstance(exc, InvalidToken):
        return fault("InvalidTokenException", exc.message, request_id)
    if isinstance(exc, ExpiredToken):
        return fault("ExpiredTokenException", exc.message, request_id)
    if isinstance(exc, InvalidInput):
        return fault("ValidationException", validation_message(exc), request_id)
    if isinstance(exc, MeterdError) and exc.status < 500:
        return fault("ValidationException", exc.message, request_id)
    if isinstance(exc, MeterdError):
        log.warning("AWS request %s failed: %s", request_id, exc.message)
        return fault("InternalServiceErrorException", "An internal error occurred; retry the request.", request_id, 500)
    log.exception("AWS request %s hit a bug", request_id, exc_info=exc)
    return fault("InternalServiceErrorException", "An internal error occurred; retry the request.", request_id, 500)


def http_request(scope: Scope, body: bytes) -> HttpRequest:
    """What SigV4 covers, as the client sent it (raw path and query, every header)."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(scope["path"])
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    query = scope.get("query_string", b"").decode("latin-1")
    return HttpRequest(str(scope["method"]), path, query, headers, body)


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a request; an empty body is an empty object."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AwsError("SerializationException", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "the request body must be a JSON object")
    return data


class AwsHandler:
    """Answers one AWS request: target, body, signature, operation, encoding."""

    def __init__(self, market: Marketplace, settings: Settings) -> None:
        self.market = market
        self.region = settings.aws_region or None
        self.limit = min(MAX_BODY, settings.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        try:
            response = await self.handle(Request(scope, receive), request_id)
        except Exception as exc:  # every failure becomes an AWS error, never a bare 500
            response = error_response(exc, request_id)
        await response(scope, receive, send)

    async def handle(self, request: Request, request_id: str) -> Response:
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.partition(".")
        if prefix != TARGET_PREFIX or operation not in OPERATIONS:
            raise AwsError("UnknownOperationException", f"unknown operation {target[:100]!r}")
        try:
            body = await read_limited(request, self.limit)
        except PayloadTooLarge:
            raise AwsError("ValidationException", f"the request must be smaller than {self.limit} bytes") from None
        caller = await self.authenticate(http_request(request.scope, body), operation)
        if request.headers.get("content-encoding", "").strip().lower() in ("gzip", "x-gzip"):
            body = gunzip(body, self.limit)
        data = decode(body)
        result = await OPERATIONS[operation](self.market, caller, data, body.decode("utf-8", "replace"))
        return answer(result, request_id)

    async def authenticate(self, request: HttpRequest, operation: str) -> Caller:
        """The caller behind a valid SigV4 signature of a live access key."""
        auth = parse_authorization(request)
        check_scope(auth, SERVICE, self.market.metering.meterd.clock())
        found = await self.market.keys.live_secret(auth.access_key_id)
        if found is None:
            raise SignatureError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        key, secret = found
        verify(secret, auth, request)
        if self.region is not None and auth.region != self.region:
            kind = REGION_ERRORS.get(operation, "InvalidSignatureException")
            raise AwsError(
                kind, f"Credential should be scoped to a valid region: '{self.region}', not '{auth.region}'."
            )
        return Caller(key.tenant, key.id, key.customer)


def gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise AwsError("SerializationException", "the request body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise AwsError("ValidationException", f"the request must be smaller than {limit} bytes")
    return out
