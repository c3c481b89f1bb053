"""The marketplace domain: products (codes and dimensions, each a meter), entitlements of customers over time.

A product is sold under a product code and meters usage in named dimensions; each dimension is a meterd meter.
An entitlement says a customer may use a product from ``start`` until ``end`` (open when None); it carries the
licence ARN and agreement id a marketplace hands out. Errors raised here carry ``kind``, the AWS error type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meterd.core.errors import FieldError, InvalidInput, MeterdError

PRODUCT_CODE_RE = re.compile(r"^[-a-zA-Z0-9/=:_.@]*$")
ACCOUNT_ID_RE = re.compile(r"^[0-9]+$")
LICENSE_ARN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:[A-Za-z0-9][A-Za-z0-9_/.-]{0,62}:[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9_/.-]{0,63}:"
    r"[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,1023}$"
)
CUSTOMER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/@]*$")
MAX_CODE = 255
MAX_DIMENSION = 255
MAX_DIMENSIONS = 200
LICENSE_ACCOUNT = "000000000000"


class MarketplaceError(MeterdError):
    """A marketplace rule was broken; ``kind`` is the AWS error type, ``code`` its native snake_case name."""

    status = 422
    kept = False  # set once the refused record has been kept, so it is not kept twice

    def __init__(self, kind: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = _snake(kind.removesuffix("Exception"))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True, slots=True)
class Dimension:
    """One metered dimension of a product and the meter its usage lands in."""

    name: str
    meter: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str | None = None
    dimensions: tuple[Dimension, ...] = ()
    created_at: int = 0

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "dimensions": [{"name": d.name, "meter": d.meter, "description": d.description} for d in self.dimensions],
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Product:
        dims = tuple(Dimension(d["name"], d["meter"], d.get("description")) for d in data.get("dimensions", []))
        return cls(data["code"], data.get("name"), dims, int(data.get("created_at", 0)))


def default_meter(code: str, dimension: str) -> str:
    """The meter a dimension lands in unless the product names one: ``<product code>:<dimension>``."""
    return f"{code}:{dimension}"


def check_product_code(code: object, path: str = "code") -> str:
    """A product code: 1 to 255 characters of letters, digits and ``- / = : _ . @``."""
    if not isinstance(code, str) or not code:
        raise InvalidInput("the product code is invalid", [FieldError(path, "is required")])
    if len(code) > MAX_CODE or not PRODUCT_CODE_RE.match(code):
        raise InvalidInput(
            "the product code is invalid",
            [FieldError(path, f"must be 1 to {MAX_CODE} characters of letters, digits and - / = : _ . @")],
        )
    return code


def make_product(
    code: str, name: str | None, dimensions: Iterable[tuple[str, str | None, str | None]], now: int
) -> Product:
    """A validated product from (dimension name, meter or None for the default, description) triples."""
    check_product_code(code)
    errors: list[FieldError] = []
    dims: list[Dimension] = []
    seen: set[str] = set()
    for index, (dim, meter, description) in enumerate(dimensions):
        where = f"dimensions[{index}]"
        if not dim or len(dim) > MAX_DIMENSION:
            errors.append(FieldError(f"{where}.name", f"must be 1 to {MAX_DIMENSION} characters"))
        elif dim in seen:
            errors.append(FieldError(f"{where}.name", f"repeats the dimension {dim!r}"))
        meter_key = meter or default_meter(code, dim)
        if not meter_key or len(meter_key) > MAX_CODE + MAX_DIMENSION + 1:
            errors.append(FieldError(f"{where}.meter", "must be 1 to 511 characters"))
        seen.add(dim)
        dims.append(Dimension(dim, meter_key, description))
    if len(dims) > MAX_DIMENSIONS:
        errors.append(FieldError("dimensions", f"may have at most {MAX_DIMENSIONS} entries"))
    if errors:
        raise InvalidInput("the product is invalid", errors)
    return Product(code, name, tuple(dims), now)


@dataclass(frozen=True, slots=True)
class Entitlement:
    """Customer ``customer`` may use product ``product`` in [start, end); ``end`` None means open-ended."""

    id: str
    customer: str
    product: str
    start: int
    end: int | None
    license_arn: str
    agreement_id: str
    created_at: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def active_at(self, ms: int) -> bool:
        return self.start <= ms and (self.end is None or ms < self.end)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": self.customer,
            "product": self.product,
            "start": self.start,
            "end": self.end,
            "license_arn": self.license_arn,
            "agreement_id": self.agreement_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entitlement:
        end = data.get("end")
        return cls(
            data["id"],
            data["customer"],
            data["product"],
            int(data["start"]),
            None if end is None else int(end),
            data["license_arn"],
            data["agreement_id"],
            int(data.get("created_at", 0)),
        )


def license_arn(entitlement_id: str) -> str:
    """The licence ARN of an entitlement (the resource part ends with the entitlement id)."""
    return f"arn:aws:license-manager::{LICENSE_ACCOUNT}:license:{entitlement_id}"


def entitlement_id_of(arn: str) -> str | None:
    """The entitlement id inside a licence ARN meterd issued, or None for any other ARN."""
    prefix = f"arn:aws:license-manager::{LICENSE_ACCOUNT}:license:"
    rest = arn.removeprefix(prefix)
    return rest if rest != arn and rest else None


def make_entitlement(
    entitlement_id: str, customer: str, product: str, start: int, end: int | None, agreement_id: str, now: int
) -> Entitlement:
    """A validated entitlement; the interval must not be empty."""
    errors: list[FieldError] = []
    if not CUSTOMER_RE.match(customer) or len(customer) > 128:
        errors.append(FieldError("customer", "must be 1 to 128 letters, digits and _ . : - / @"))
    if end is not None and end <= start:
        errors.append(FieldError("end", "must be after start"))
    if errors:
        raise InvalidInput("the entitlement is invalid", errors)
    return Entitlement(entitlement_id, customer, product, start, end, license_arn(entitlement_id), agreement_id, now)


def active(entitlements: Iterable[Entitlement], ms: int) -> Entitlement | None:
    """The entitlement covering ``ms`` (the one that started last, when several do), or None."""
    covering = [e for e in entitlements if e.active_at(ms)]
    return max(covering, key=lambda e: (e.start, e.id)) if covering else None


def end_entitlement(entitlement: Entitlement, at: int) -> Entitlement:
    """The entitlement cut off at ``at`` (not later than an end it already has, not before its start)."""
    if at < entitlement.start:
        raise InvalidInput("an entitlement cannot end before it starts", [FieldError("at", "is before the start")])
    end = at if entitlement.end is None else min(entitlement.end, at)
    return Entitlement(
        entitlement.id,
        entitlement.customer,
        entitlement.product,
        entitlement.start,
        end,
        entitlement.license_arn,
        entitlement.agreement_id,
        entitlement.created_at,
    )


def check_account_id(value: str) -> str:
    if not 1 <= len(value) <= 255 or not ACCOUNT_ID_RE.match(value):
        raise InvalidInput("the AWS account id is invalid", [FieldError("aws_account_id", "must be digits")])
    return value
