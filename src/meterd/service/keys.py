"""API keys: minting (shown once), hashing, parsing and authenticating a presented secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from meterd.core.errors import Unauthenticated
from meterd.core.models import ApiKey, Scope

PREFIX = "mk"


@dataclass(frozen=True, slots=True)
class MintedKey:
    """A new key and its full secret, which is never stored and shown only once."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    """Keys are long random strings, so a fast keyed-free hash is enough (no password stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mint(tenant: str, name: str, scopes: frozenset[Scope], now: int) -> MintedKey:
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    return MintedKey(ApiKey(key_id, tenant, name, scopes, hash_secret(secret), now), secret)


def key_id_of(secret: str) -> str:
    """The id embedded in a presented secret (``mk_<id>_<random>``); Unauthenticated when malformed."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1]:
        raise Unauthenticated("the API key is malformed")
    return parts[1]


def verify(key: ApiKey | None, secret: str) -> ApiKey:
    """The key, if the secret matches it and it is not revoked."""
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise Unauthenticated("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthenticated("the API key has been revoked")
    return key
