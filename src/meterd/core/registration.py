"""Registration tokens: one-time, expiring tokens that resolve to a customer and a product.

Only a hash of a token is kept, so a stolen copy of the store cannot redeem anything. Redeeming is one-time:
the caller records the first redemption atomically (the store's ``only_if_absent``) and :func:`check_redeemable`
turns the stored state into an answer. A token used again counts as expired, as AWS Marketplace treats a
resubmitted registration token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meterd.core.errors import FieldError, InvalidInput, NotFound

MIN_TTL_MS = 1_000
MAX_TTL_MS = 30 * 86_400_000
DEFAULT_TTL_MS = 3_600_000
MAX_TOKEN = 2048


class InvalidToken(NotFound):
    """No such token (or not one of this tenant's)."""

    code = "invalid_token"


class ExpiredToken(InvalidInput):
    """The token expired or was redeemed already."""

    status, code = 410, "expired_token"


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    """What a token resolves to, and when it stops working."""

    token_hash: str
    customer: str
    product: str
    created_at: int
    expires_at: int
    subject: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "token_hash": self.token_hash,
            "customer": self.customer,
            "product": self.product,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "subject": dict(self.subject),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegistrationToken:
        return cls(
            data["token_hash"],
            data["customer"],
            data["product"],
            int(data["created_at"]),
            int(data["expires_at"]),
            dict(data.get("subject", {})),
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_ttl(ttl_ms: int) -> int:
    if not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
        raise InvalidInput(
            "the token lifetime is invalid",
            [FieldError("ttl_seconds", f"must be between {MIN_TTL_MS // 1000} and {MAX_TTL_MS // 1000}")],
        )
    return ttl_ms


def issue(
    token: str, customer: str, product: str, now: int, ttl_ms: int, subject: Mapping[str, Any]
) -> RegistrationToken:
    """The record kept for a freshly drawn random ``token``."""
    return RegistrationToken(token_hash(token), customer, product, now, now + check_ttl(ttl_ms), dict(subject))


def check_redeemable(record: RegistrationToken | None, now: int, first_redemption: bool) -> RegistrationToken:
    """The token's record if this is its first redemption before it expires; else InvalidToken/ExpiredToken."""
    if record is None:
        raise InvalidToken("the registration token is not valid")
    if now >= record.expires_at:
        raise ExpiredToken("the registration token has expired")
    if not first_redemption:
        raise ExpiredToken("the registration token has been used already")
    return record


def plausible(token: object) -> bool:
    """Whether ``token`` could be a token at all (a non-empty string of sane length)."""
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN
