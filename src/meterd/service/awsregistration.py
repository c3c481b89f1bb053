"""RegisterUsage (a signed entitlement, checked on the first call per access key and product) and
ResolveCustomer (redeem a registration token)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.marketplace import check_product_code
from meterd.core.registration import InvalidToken, plausible
from meterd.service.awsmetering import SEP, Caller, Metering, error
from meterd.service.marketplace import Catalog, Resolved
from meterd.service.signing import SigningKeys

REGISTERED = "aws-registered"


@dataclass(frozen=True, slots=True)
class Registration:
    signature: str
    rotated_at: int | None


class Registrations:
    """RegisterUsage and ResolveCustomer."""

    def __init__(self, metering: Metering, catalog: Catalog, signing: SigningKeys) -> None:
        self.metering = metering
        self.store = metering.store
        self.catalog = catalog
        self.signing = signing

    async def register_usage(self, caller: Caller, body: Mapping[str, Any]) -> Registration:
        """A signed entitlement (JWT); only the first call per access key and product checks the entitlement."""
        code, version, nonce = parse_register_usage(body)
        tenant, customer, now = caller.tenant, caller.customer, self.metering.meterd.clock()
        product = await self.metering.product(tenant, code)
        key = await self.signing.get(version)
        if key is None:
            raise error("InvalidPublicKeyVersionException", f"public key version {version} does not exist")
        if customer is None:
            raise error("CustomerNotEntitledException", f"access key {caller.access_key_id} acts for no customer")
        marker = f"{caller.access_key_id}{SEP}{code}"
        if await self.store.get_object(tenant, REGISTERED, marker) is None:
            entitlement = await self.metering.subscribed(tenant, customer, code, now)
            if entitlement is None:
                raise error(
                    "CustomerNotEntitledException", f"customer {customer!r} is not entitled to product {code!r}"
                )
            await self.store.put_object(
                tenant, REGISTERED, marker, {"at": now, "entitlement": entitlement.id}, only_if_absent=True
            )
        claims: dict[str, Any] = {
            "iss": "meterd",
            "sub": customer,
            "customerIdentifier": customer,
            "customerAWSAccountId": await self.catalog.account_of(tenant, customer),
            "productCode": product.code,
            "publicKeyVersion": version,
            "iat": now // 1000,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return Registration(await self.signing.sign(key, claims), key.rotated_at)

    async def resolve_customer(self, caller: Caller, body: Mapping[str, Any]) -> Resolved:
        token = body.get("RegistrationToken")
        if token is None:
            raise InvalidInput("the request is invalid", [FieldError("RegistrationToken", "Member must not be null")])
        if not isinstance(token, str) or not plausible(token):
            raise InvalidToken("the registration token is not valid")
        return await self.catalog.redeem_token(caller.tenant, token)


def parse_register_usage(body: Mapping[str, Any]) -> tuple[str, int, str | None]:
    """ProductCode, PublicKeyVersion (an integer of at least 1) and the optional Nonce (at most 255 characters)."""
    errors: list[FieldError] = []
    code = body.get("ProductCode")
    if code is None:
        errors.append(FieldError("ProductCode", "Member must not be null"))
    else:
        try:
            check_product_code(code, "ProductCode")
        except InvalidInput as exc:
            errors.extend(exc.errors)
    version = body.get("PublicKeyVersion")
    if version is None or isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append(FieldError("PublicKeyVersion", "Member must be an integer greater than or equal to 1"))
    nonce = body.get("Nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > 255):
        errors.append(FieldError("Nonce", "Member must be a string of at most 255 characters"))
    if errors:
        raise InvalidInput("the request is invalid", errors)
    assert isinstance(code, str) and isinstance(version, int)
    return code, version, nonce if isinstance(nonce, str) else None
