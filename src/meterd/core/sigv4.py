"""AWS Signature Version 4 verification: parse the Authorization header, rebuild the signature, check its time.

Pure and stdlib only. The caller looks the access key's secret up and passes it in; every failure raises
:class:`SignatureError` whose ``kind`` is the AWS error type a JSON-protocol service answers with.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from meterd.core.errors import Unauthenticated
from meterd.core.timeutil import to_ms

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_SKEW_MS = 15 * 60 * 1000
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


class SignatureError(Unauthenticated):
    """The request is not signed, or not signed correctly; ``kind`` is the AWS error type."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def missing(message: str = "Missing Authentication Token") -> SignatureError:
    return SignatureError("MissingAuthenticationTokenException", message)


def incomplete(message: str) -> SignatureError:
    return SignatureError("IncompleteSignatureException", message)


def invalid(message: str) -> SignatureError:
    return SignatureError("InvalidSignatureException", message)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a signature covers: method, raw path and query, headers (any case, repeats allowed), body."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """All values of one header joined by commas, as SigV4 canonicalises them; None when absent."""
        values = [v for k, v in self.headers if k.lower() == name]
        return ",".join(" ".join(v.split()) for v in values) if values else None


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed ``Authorization: AWS4-HMAC-SHA256 ...`` header plus the request time it was made for."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    time_ms: int

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def parse_authorization(request: HttpRequest) -> Authorization:
    """The parts of the Authorization header; raises :class:`SignatureError` when absent or malformed."""
    header = request.header("authorization")
    if header is None or not header.strip():
        raise missing()
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Authorization header must use the {ALGORITHM} algorithm, not {algorithm[:40]!r}.")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip()
    required = ("Credential", "Signature", "SignedHeaders")
    problems = [f"Authorization header requires '{p}' parameter." for p in required if not params.get(p)]
    if problems:
        raise incomplete(" ".join(problems))
    credential = params["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise incomplete(f"Credential must have the form <key>/<date>/<region>/<service>/{TERMINATOR}.")
    signed = tuple(params["SignedHeaders"].split(";"))
    if "host" not in signed:
        raise invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date, time_ms = request_time(request)
    if "x-amz-date" not in signed and request.header("x-amz-date") is not None:
        raise invalid("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    key, date, region, service, terminator = credential
    return Authorization(key, date, region, service, terminator, signed, params["Signature"], amz_date, time_ms)


def request_time(request: HttpRequest) -> tuple[str, int]:
    """The signing time from ``X-Amz-Date`` (or ``Date``), as (basic ISO 8601 text, epoch ms)."""
    amz = request.header("x-amz-date")
    if amz is not None:
        try:
            moment = datetime.strptime(amz, AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise incomplete(f"Date must be in ISO-8601 'basic format'. Got {amz[:40]!r}.") from None
        return amz, to_ms(moment)
    date = request.header("date")
    if date is None:
        raise incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise incomplete(f"Date header is not an RFC 1123 date: {date[:40]!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(AMZ_DATE), to_ms(moment)


def check_scope(auth: Authorization, service: str, now_ms: int, max_skew_ms: int = MAX_SKEW_MS) -> None:
    """The credential scope names ``service`` and the signing date, and the signature is fresh."""
    if auth.service != service:
        raise invalid(f"Credential should be scoped to correct service: '{service}'.")
    if auth.terminator != TERMINATOR:
        raise invalid(f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{auth.terminator}'.")
    if auth.date != auth.amz_date[:8]:
        raise invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.date}' != '{auth.amz_date[:8]}', from '{auth.amz_date}'."
        )
    now = _amz(now_ms)
    if auth.time_ms < now_ms - max_skew_ms:
        earliest = _amz(now_ms - max_skew_ms)
        raise invalid(
            f"Signature expired: {auth.amz_date} is now earlier than {earliest} ({now} - {max_skew_ms // 60000} min.)"
        )
    if auth.time_ms > now_ms + max_skew_ms:
        latest = _amz(now_ms + max_skew_ms)
        raise invalid(
            f"Signature not yet current: {auth.amz_date} is still later than {latest} "
            f"({now} + {max_skew_ms // 60000} min.)"
        )


def _amz(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(AMZ_DATE)


def canonical_path(path: str) -> str:
    """The URI as non-S3 services sign it: dot segments removed, then encoded (again) except ``/`` and ``~``."""
    normalized = posixpath.normpath(path or "/")
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if path.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    return quote(normalized, safe="/~")


def canonical_query(query: str, normalize: bool = True) -> str:
    """Query parameters sorted by name, then value: decoded and re-encoded the SigV4 way, or (``normalize``
    False) exactly as sent, which is what botocore signs when it is given an already-encoded URL."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if normalize:
            name, value = _encode(unquote(name.replace("+", " "))), _encode(unquote(value.replace("+", " ")))
        pairs.append((name, value))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(request: HttpRequest, signed_headers: Sequence[str], normalize: bool = True) -> str:
    headers = "".join(f"{name}:{request.header(name) or ''}\n" for name in signed_headers)
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.path),
            canonical_query(request.query, normalize),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def string_to_sign(auth: Authorization, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{auth.amz_date}\n{auth.scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, auth: Authorization, request: HttpRequest, normalize: bool = True) -> str:
    """The hex signature ``secret`` gives this request under ``auth``'s scope and signed headers."""
    key = signing_key(secret, auth.date, auth.region, auth.service)
    text = string_to_sign(auth, canonical_request(request, auth.signed_headers, normalize))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def verify(secret: str, auth: Authorization, request: HttpRequest) -> None:
    """Raise InvalidSignatureException unless the request was signed with ``secret``.

    A query string is tried normalised (the SigV4 specification) and, when that differs, as sent (botocore).
    """
    given = auth.signature.lower()
    if hmac.compare_digest(signature(secret, auth, request), given):
        return
    raw_differs = canonical_query(request.query, False) != canonical_query(request.query)
    if not (raw_differs and hmac.compare_digest(signature(secret, auth, request, False), given)):
        raise invalid(MISMATCH)
