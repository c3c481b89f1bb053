"""Influx customer tokens: registration (find or create the customer, mint a token), lookup, listing, revocation.

Tokens live in the GLOBAL objects (kind ``influx.token``, key = token id) because a request presents a token
before its tenant is known; only the hash of the secret is stored.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from meterd.core.errors import Forbidden, NotFound, Unauthenticated
from meterd.core.influx_registration import TOKEN_PREFIX, Registration, token_id
from meterd.core.models import Customer, Dimensions, Tenant
from meterd.core.timeutil import format_ms
from meterd.service.keys import hash_secret
from meterd.service.meterd import Meterd
from meterd.storage.base import GLOBAL

KIND = "influx.token"


@dataclass(frozen=True, slots=True)
class Caller:
    """Whose data a request carries: a tenant and a customer (``anonymous`` without a token)."""

    tenant: str
    customer: str
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    """A new token: its secret is shown once (in the redirect), never stored."""

    token: str
    token_id: str
    customer: str


def token_json(token_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A token as the native API shows it (never its secret or hash)."""
    revoked = body.get("revoked_at")
    return {
        "id": token_id,
        "customer": body["customer"],
        "cluster_id": body["cluster_id"],
        "product": body["product"],
        "created_at": format_ms(body["created_at"]),
        "revoked_at": format_ms(revoked) if revoked is not None else None,
    }


class InfluxTokens:
    """Registration and customer tokens of the influx surface, in one tenant chosen by the operator."""

    def __init__(self, meterd: Meterd, tenant: str) -> None:
        self.meterd = meterd
        self.tenant = tenant
        self._tenant_ready = False

    async def ensure_tenant(self) -> None:
        """Create the influx tenant on first use (a no-op when it exists)."""
        if not self._tenant_ready:
            await self.meterd.store.create_tenant(Tenant(self.tenant, self.tenant, self.meterd.clock()))
            self._tenant_ready = True

    async def register(self, registration: Registration, customer_id: str, organization: str, email: str) -> Issued:
        """Find the organization's customer (or create it) and mint a token for this cluster and product."""
        await self.ensure_tenant()
        store, now = self.meterd.store, self.meterd.clock()
        customer = await store.get_customer(self.tenant, customer_id)
        if customer is None:
            traits: Dimensions = {"source": "influx", "registered_cluster_id": registration.cluster_id}
            customer = Customer(customer_id, organization, email, traits, True, now, now)
            await store.put_customer(self.tenant, customer)
        elif not customer.enabled:
            raise Forbidden(f"the organization {organization!r} is disabled on this server")
        ident = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}_{ident}_{secrets.token_urlsafe(24)}"
        body = {
            "tenant": self.tenant,
            "customer": customer.id,
            "cluster_id": registration.cluster_id,
            "product": registration.product,
            "email": email,
            "hash": hash_secret(token),
            "created_at": now,
            "revoked_at": None,
        }
        await store.put_object(GLOBAL, KIND, ident, body)
        return Issued(token, ident, customer.id)

    async def resolve(self, token: str) -> Caller:
        """The tenant and customer behind a presented token; Unauthenticated when it is unknown or revoked."""
        ident = token_id(token)
        body = await self.meterd.store.get_object(GLOBAL, KIND, ident) if ident else None
        if ident is None or body is None or not hmac.compare_digest(body["hash"], hash_secret(token.strip())):
            raise Unauthenticated("the token is not valid")
        if body.get("revoked_at") is not None:
            raise Unauthenticated("the token has been revoked")
        customer = await self.meterd.store.get_customer(body["tenant"], body["customer"])
        if customer is None or not customer.enabled:
            raise Unauthenticated("the token's organization is no longer active")
        return Caller(body["tenant"], body["customer"], ident)

    async def list(self, tenant: str, customer: str | None = None) -> list[dict[str, Any]]:
        """The tenant's tokens (optionally one customer's), oldest first."""
        found = [
            token_json(ident, body)
            for ident, body in await self.meterd.store.list_objects(GLOBAL, KIND)
            if body.get("tenant") == tenant and (customer is None or body.get("customer") == customer)
        ]
        return sorted(found, key=lambda t: (t["created_at"], t["id"]))

    async def revoke(self, tenant: str, ident: str) -> dict[str, Any]:
        """Revoke a token of the tenant at once (revoking twice keeps the first time)."""
        body = await self.meterd.store.get_object(GLOBAL, KIND, ident)
        if body is None or body.get("tenant") != tenant:
            raise NotFound(f"no influx token {ident!r}")
        if body.get("revoked_at") is None:
            body["revoked_at"] = self.meterd.clock()
            await self.meterd.store.put_object(GLOBAL, KIND, ident, body)
        return token_json(ident, body)
