"""AWS access keys: id + secret pairs that sign SigV4 requests, kept per tenant with the secret sealed.

A key may act for a customer: MeterUsage and RegisterUsage come from software running in the buyer's account,
so their usage is the key's customer's. Keys live in GLOBAL objects (``aws-access-key``/<id>) because a request
names its key before meterd knows the tenant.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meterd.core.errors import FieldError, InvalidInput, NotFound, StorageError
from meterd.core.marketplace import CUSTOMER_RE
from meterd.service.sealing import SealerSource
from meterd.storage.base import GLOBAL, Store

KIND = "aws-access-key"
ID_ALPHABET = string.ascii_uppercase + "234567"
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True, slots=True)
class AccessKey:
    id: str
    tenant: str
    name: str
    customer: str | None
    created_at: int
    revoked_at: int | None
    sealed_secret: str

    def as_json(self) -> dict[str, Any]:
        """The stored form (with the sealed secret)."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "customer": self.customer,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "sealed_secret": self.sealed_secret,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessKey:
        revoked = data.get("revoked_at")
        return cls(
            data["id"],
            data["tenant"],
            data["name"],
            data.get("customer"),
            int(data["created_at"]),
            None if revoked is None else int(revoked),
            data["sealed_secret"],
        )


def new_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))


def check_key_fields(name: str, customer: str | None) -> None:
    errors: list[FieldError] = []
    if not 1 <= len(name) <= 128:
        errors.append(FieldError("name", "must be 1 to 128 characters"))
    if customer is not None and (len(customer) > 128 or not CUSTOMER_RE.match(customer)):
        errors.append(FieldError("customer", "must be 1 to 128 letters, digits and _ . : - / @"))
    if errors:
        raise InvalidInput("the access key is invalid", errors)


class AccessKeys:
    """Create, list, revoke and look up AWS access keys."""

    def __init__(self, store: Store, sealers: SealerSource, clock: Callable[[], int]) -> None:
        self.store = store
        self.sealers = sealers
        self.clock = clock

    async def create(self, tenant: str, name: str, customer: str | None = None) -> tuple[AccessKey, str]:
        """A new key and its secret (shown once; only its sealed form is kept)."""
        check_key_fields(name, customer)
        sealer = await self.sealers.get()
        secret = new_secret()
        for _ in range(5):
            key = AccessKey(new_key_id(), tenant, name, customer, self.clock(), None, sealer.seal(secret))
            if await self.store.put_object(GLOBAL, KIND, key.id, key.as_json(), only_if_absent=True):
                return key, secret
        raise StorageError("could not draw a unique access key id")

    async def list(self, tenant: str) -> list[AccessKey]:
        keys = [AccessKey.from_json(body) for _, body in await self.store.list_objects(GLOBAL, KIND)]
        return sorted((k for k in keys if k.tenant == tenant), key=lambda k: (k.created_at, k.id))

    async def get(self, key_id: str) -> AccessKey | None:
        body = await self.store.get_object(GLOBAL, KIND, key_id)
        return None if body is None else AccessKey.from_json(body)

    async def revoke(self, tenant: str, key_id: str) -> AccessKey:
        """Revoke at once; requests signed with it are refused from now on."""
        key = await self.get(key_id)
        if key is None or key.tenant != tenant:
            raise NotFound(f"no AWS access key {key_id!r}")
        if key.revoked_at is None:
            body = {**key.as_json(), "revoked_at": self.clock()}
            await self.store.put_object(GLOBAL, KIND, key_id, body)
            key = AccessKey.from_json(body)
        return key

    async def live_secret(self, key_id: str) -> tuple[AccessKey, str] | None:
        """The live key and its secret, or None when unknown or revoked."""
        key = await self.get(key_id)
        if key is None or key.revoked_at is not None:
            return None
        return key, (await self.sealers.get()).unseal(key.sealed_secret)
