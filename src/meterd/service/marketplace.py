"""Marketplace state in the store: products (and their meters), entitlements, customers' AWS account ids,
registration tokens. All of it is tenant-scoped JSON objects; the rules live in core.marketplace/registration.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meterd.core.errors import Conflict, NotFound
from meterd.core.marketplace import (
    Entitlement,
    Product,
    active,
    check_account_id,
    end_entitlement,
    entitlement_id_of,
    make_entitlement,
    make_product,
)
from meterd.core.models import Customer, Meter
from meterd.core.registration import InvalidToken, RegistrationToken, check_redeemable, issue, token_hash
from meterd.storage.base import Store

PRODUCT = "aws-product"
ENTITLEMENT = "aws-entitlement"
ENTITLEMENT_ID = "aws-entitlement-id"
ACCOUNT = "aws-account"
CUSTOMER_ACCOUNT = "aws-customer-account"
TOKEN = "aws-registration-token"
REDEEMED = "aws-token-redeemed"
SEP = "\t"


def _ent_key(product: str, customer: str, entitlement_id: str) -> str:
    return f"{product}{SEP}{customer}{SEP}{entitlement_id}"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a redeemed registration token names."""

    customer: str
    account_id: str
    product: str
    entitlement: Entitlement


class Catalog:
    """Products, entitlements, account ids and registration tokens of each tenant."""

    def __init__(self, store: Store, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    # products ------------------------------------------------------------------------------------------
    async def put_product(
        self, tenant: str, code: str, name: str | None, dimensions: Sequence[tuple[str, str | None, str | None]]
    ) -> Product:
        """Create or replace a product; each dimension's meter is created (sum) unless it exists."""
        now = self.clock()
        old = await self.get_product(tenant, code)
        product = make_product(code, name, dimensions, old.created_at if old else now)
        for dim in product.dimensions:
            if await self.store.get_meter(tenant, dim.meter) is None:
                properties = {"aws_product_code": code, "aws_dimension": dim.name}
                await self.store.put_meter(tenant, Meter(dim.meter, description=dim.description, properties=properties))
        await self.store.put_object(tenant, PRODUCT, code, product.as_json())
        return product

    async def get_product(self, tenant: str, code: str) -> Product | None:
        body = await self.store.get_object(tenant, PRODUCT, code)
        return None if body is None else Product.from_json(body)

    async def list_products(self, tenant: str) -> list[Product]:
        return [Product.from_json(body) for _, body in await self.store.list_objects(tenant, PRODUCT)]

    async def delete_product(self, tenant: str, code: str) -> bool:
        """Forget a product (its meters, events and entitlements stay)."""
        return await self.store.delete_object(tenant, PRODUCT, code)

    # customers' AWS account ids ------------------------------------------------------------------------
    async def account_of(self, tenant: str, customer: str) -> str | None:
        body = await self.store.get_object(tenant, CUSTOMER_ACCOUNT, customer)
        return None if body is None else str(body["account_id"])

    async def customer_by_account(self, tenant: str, account_id: str) -> str | None:
        body = await self.store.get_object(tenant, ACCOUNT, account_id)
        return None if body is None else str(body["customer"])

    async def _bind_account(self, tenant: str, customer: str, wanted: str | None) -> str:
        """The customer's account id: the one it has, else ``wanted``, else 12 random digits."""
        current = await self.account_of(tenant, customer)
        if current is not None:
            if wanted is not None and wanted != current:
                raise Conflict(f"customer {customer!r} has the AWS account id {current}, not {wanted}")
            return current
        account = check_account_id(wanted) if wanted else f"{secrets.randbelow(10**12):012d}"
        if not await self.store.put_object(tenant, ACCOUNT, account, {"customer": customer}, only_if_absent=True):
            owner = await self.customer_by_account(tenant, account)
            if owner != customer:
                raise Conflict(f"the AWS account id {account} belongs to customer {owner!r}")
        await self.store.put_object(tenant, CUSTOMER_ACCOUNT, customer, {"account_id": account})
        return account

    async def _ensure_customer(self, tenant: str, customer: str, account: str) -> None:
        now = self.clock()
        found = await self.store.get_customer(tenant, customer)
        if found is None:
            await self.store.put_customer(
                tenant, Customer(customer, traits={"aws_account_id": account}, created_at=now, updated_at=now)
            )
        elif found.traits.get("aws_account_id") != account:
            traits = {**found.traits, "aws_account_id": account}
            await self.store.put_customer(
                tenant, Customer(found.id, found.name, found.email, traits, found.enabled, found.created_at, now)
            )

    # entitlements --------------------------------------------------------------------------------------
    async def grant(
        self, tenant: str, customer: str, product: str, start: int | None, end: int | None, account_id: str | None
    ) -> Entitlement:
        """Entitle ``customer`` to ``product`` over [start, end) (start defaults to now); creates the customer."""
        if await self.get_product(tenant, product) is None:
            raise NotFound(f"no product {product!r}")
        now = self.clock()
        ent_id = "l-" + secrets.token_hex(16)
        entitlement = make_entitlement(
            ent_id, customer, product, now if start is None else start, end, "agmt-" + secrets.token_hex(12), now
        )
        account = await self._bind_account(tenant, customer, account_id)
        await self._ensure_customer(tenant, customer, account)
        await self._save(tenant, entitlement)
        return entitlement

    async def _save(self, tenant: str, entitlement: Entitlement) -> None:
        key = _ent_key(entitlement.product, entitlement.customer, entitlement.id)
        await self.store.put_object(tenant, ENTITLEMENT, key, entitlement.as_json())
        await self.store.put_object(tenant, ENTITLEMENT_ID, entitlement.id, {"key": key})

    async def entitlement(self, tenant: str, entitlement_id: str) -> Entitlement | None:
        ref = await self.store.get_object(tenant, ENTITLEMENT_ID, entitlement_id)
        if ref is None:
            return None
        body = await self.store.get_object(tenant, ENTITLEMENT, ref["key"])
        return None if body is None else Entitlement.from_json(body)

    async def end(self, tenant: str, entitlement_id: str, at: int | None) -> Entitlement:
        """End an entitlement at ``at`` (default now)."""
        found = await self.entitlement(tenant, entitlement_id)
        if found is None:
            raise NotFound(f"no entitlement {entitlement_id!r}")
        ended = end_entitlement(found, self.clock() if at is None else at)
        await self._save(tenant, ended)
        return ended

    async def entitlements(
        self, tenant: str, product: str | None = None, customer: str | None = None
    ) -> list[Entitlement]:
        """Entitlements, optionally of one product (and one customer of it)."""
        prefix = "" if product is None else product + SEP + ("" if customer is None else customer + SEP)
        found = [Entitlement.from_json(body) for _, body in await self.store.list_objects(tenant, ENTITLEMENT, prefix)]
        return [e for e in found if customer is None or e.customer == customer]

    async def active_entitlement(self, tenant: str, product: str, customer: str, at: int) -> Entitlement | None:
        return active(await self.entitlements(tenant, product, customer), at)

    async def by_license(self, tenant: str, arn: str) -> Entitlement | None:
        """The entitlement a licence ARN names, or None."""
        ent_id = entitlement_id_of(arn)
        found = None if ent_id is None else await self.entitlement(tenant, ent_id)
        return found if found is not None and found.license_arn == arn else None

    # registration tokens -------------------------------------------------------------------------------
    async def issue_token(self, tenant: str, customer: str, product: str, ttl_ms: int) -> tuple[str, RegistrationToken]:
        """A one-time token for the customer's active entitlement to the product (the sign-up redirect)."""
        now = self.clock()
        entitlement = await self.active_entitlement(tenant, product, customer, now)
        if entitlement is None:
            raise Conflict(f"customer {customer!r} has no active entitlement to product {product!r}; grant one first")
        token = secrets.token_urlsafe(48)
        record = issue(token, customer, product, now, ttl_ms, {"entitlement": entitlement.id})
        await self.store.put_object(tenant, TOKEN, record.token_hash, record.as_json())
        return token, record

    async def redeem_token(self, tenant: str, token: str) -> Resolved:
        """Resolve a token once: InvalidToken when unknown, ExpiredToken when expired or used already."""
        digest = token_hash(token)
        body = await self.store.get_object(tenant, TOKEN, digest)
        now = self.clock()
        record = check_redeemable(None if body is None else RegistrationToken.from_json(body), now, True)
        first = await self.store.put_object(tenant, REDEEMED, digest, {"at": now}, only_if_absent=True)
        check_redeemable(record, now, first)
        entitlement = await self.entitlement(tenant, str(record.subject.get("entitlement", "")))
        if entitlement is None:
            raise InvalidToken("the registration token's entitlement no longer exists")
        account = await self.account_of(tenant, record.customer) or ""
        return Resolved(record.customer, account, record.product, entitlement)
