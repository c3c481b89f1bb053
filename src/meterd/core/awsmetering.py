"""AWS Marketplace metering records: validation, quantities, allocations, time bounds, dedup identity, events.

MeterUsage and each BatchMeterUsage record carry one *usage line*: a dimension, a time, a quantity (whole
``UsageQuantity`` or ``UsageQuantityAsDecimal``, compared by value) and optional allocations that split the
quantity into tagged buckets. A line becomes one usage event, or one per allocation with its tags as dimensions.
Dedup: MeterUsage keeps one record per (product, dimension, hour, caller); BatchMeterUsage one per (product,
customer, dimension, time). The record id is derived from that key, so an identical resend gets the same
MeteringRecordId; :func:`fingerprint` decides whether a resend is identical.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.marketplace import ACCOUNT_ID_RE, LICENSE_ARN_RE, MarketplaceError, check_product_code
from meterd.core.models import UsageEvent
from meterd.core.timeutil import MAX_MS, TimeParseError, from_ms, parse_time, to_ms

SURFACE = "aws"
INT_MAX = 2_147_483_647
DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,6})?$")
TAG_RE = re.compile(r"^[a-zA-Z0-9+ -=._:\/@]+$")  # verbatim from the service model: " -=" is a range
MAX_TAGS = 5
MAX_ALLOCATIONS = 2500
MAX_BATCH = 25
MAX_DIMENSION = 255
MAX_CUSTOMER = 255
MAX_CLIENT_TOKEN = 64
Tags = tuple[tuple[str, str], ...]


def tags_error(message: str) -> MarketplaceError:
    return MarketplaceError("InvalidTagException", message)


def allocations_error(message: str) -> MarketplaceError:
    return MarketplaceError("InvalidUsageAllocationsException", message)


@dataclass(frozen=True, slots=True)
class Allocation:
    quantity: Decimal
    tags: Tags


@dataclass(frozen=True, slots=True)
class UsageLine:
    """What one MeterUsage request or one BatchMeterUsage record reports."""

    dimension: str
    time: int
    quantity: Decimal
    allocations: tuple[Allocation, ...] = ()


@dataclass(frozen=True, slots=True)
class MeterUsageRequest:
    product: str
    line: UsageLine
    dry_run: bool = False
    client_token: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    line: UsageLine
    customer: str | None
    account_id: str | None
    license_arn: str | None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    product: str | None
    records: tuple[BatchRecord, ...]


# -- field checks ------------------------------------------------------------------------------------------
def _text(data: Mapping[str, Any], name: str, errors: list[FieldError], lo: int, hi: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "Member must be a string"))
    elif not lo <= len(value) <= hi:
        errors.append(FieldError(name, f"Member must have length between {lo} and {hi}"))
    else:
        return value
    return None


def _required(value: object, name: str, errors: list[FieldError]) -> None:
    if value is None:
        errors.append(FieldError(name, "Member must not be null"))


def _time(value: object, name: str, errors: list[FieldError]) -> int:
    _required(value, name, errors)
    if value is None:
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            ms = int(Decimal(repr(value)) * 1000)
        except InvalidOperation:
            ms = -1
        if 0 <= ms <= MAX_MS:
            return ms
        errors.append(FieldError(name, "Member must be a timestamp between 1970 and 9999"))
        return 0
    try:
        return parse_time(value, name)
    except TimeParseError as exc:
        errors.append(FieldError(name, f"Member must be a timestamp ({exc.error.message})"))
        return 0


def _whole(value: object, name: str, errors: list[FieldError]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, "Member must be an integer"))
    elif not 0 <= value <= INT_MAX:
        errors.append(FieldError(name, f"Member must have value between 0 and {INT_MAX}"))
    else:
        return Decimal(value)
    return None


def _decimal(value: object, name: str, errors: list[FieldError]) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str) or not DECIMAL_RE.match(value):
        errors.append(FieldError(name, f"Member must satisfy regular expression pattern: {DECIMAL_RE.pattern}"))
        return None
    return Decimal(value)


def _quantity(
    whole: Decimal | None, decimal: Decimal | None, names: tuple[str, str], errors: list[FieldError]
) -> Decimal:
    if whole is not None and decimal is not None:
        errors.append(FieldError(names[1], f"{names[0]} and {names[1]} cannot both be specified"))
    if whole is not None:
        return whole
    return decimal if decimal is not None else Decimal(0)


# -- allocations -------------------------------------------------------------------------------------------
def parse_tags(raw: object, where: str) -> Tags:
    """The tags of one allocation, sorted by key; InvalidTagException when they break a rule."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise tags_error(f"{where}.Tags must be a list of tags")
    if not 1 <= len(raw) <= MAX_TAGS:
        raise tags_error(f"{where}.Tags must have between 1 and {MAX_TAGS} tags, not {len(raw)}")
    tags: dict[str, str] = {}
    for index, tag in enumerate(raw):
        at = f"{where}.Tags[{index}]"
        if not isinstance(tag, Mapping):
            raise tags_error(f"{at} must be an object with Key and Value")
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not 1 <= len(key) <= 100 or not TAG_RE.match(key):
            raise tags_error(f"{at}.Key must be 1 to 100 characters matching {TAG_RE.pattern}")
        if not isinstance(value, str) or not 1 <= len(value) <= 256 or not TAG_RE.match(value):
            raise tags_error(f"{at}.Value must be 1 to 256 characters matching {TAG_RE.pattern}")
        if key in tags:
            raise tags_error(f"{at}.Key repeats the tag key {key!r}")
        tags[key] = value
    return tuple(sorted(tags.items()))


def parse_allocations(raw: object, quantity: Decimal, form: str | None, where: str) -> tuple[Allocation, ...]:
    """Allocations checked against the line's quantity and its form (``whole``, ``decimal`` or None: either)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ALLOCATIONS:
        raise allocations_error(f"{where} must be a list of 1 to {MAX_ALLOCATIONS} allocations")
    parsed: list[Allocation] = []
    forms: set[str] = set()
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise allocations_error(f"{at} must be an object")
        errors: list[FieldError] = []
        whole = _whole(item.get("AllocatedUsageQuantity"), f"{at}.AllocatedUsageQuantity", errors)
        decimal = _decimal(item.get("AllocatedUsageQuantityAsDecimal"), f"{at}.AllocatedUsageQuantityAsDecimal", errors)
        if errors:
            raise InvalidInput("the allocation is invalid", errors)
        if (whole is None) == (decimal is None):
            raise allocations_error(
                f"{at} must specify exactly one of AllocatedUsageQuantity or AllocatedUsageQuantityAsDecimal"
            )
        forms.add("whole" if whole is not None else "decimal")
        parsed.append(
            Allocation(whole if whole is not None else decimal or Decimal(0), parse_tags(item.get("Tags"), at))
        )
    if len(forms) > 1 or (form is not None and forms != {form}):
        raise allocations_error(
            "allocations must use the same type of quantity as the usage: AllocatedUsageQuantity with a whole "
            "quantity, AllocatedUsageQuantityAsDecimal with a decimal quantity"
        )
    if len({a.tags for a in parsed}) != len(parsed):
        raise allocations_error("each allocation must have a unique set of tags")
    total = sum((a.quantity for a in parsed), Decimal(0))
    if total != quantity:
        raise allocations_error(f"the allocated quantities sum to {_plain(total)}, not the quantity {_plain(quantity)}")
    return tuple(sorted(parsed, key=lambda a: a.tags))


def _line(data: Mapping[str, Any], names: dict[str, str], where: str, errors: list[FieldError]) -> UsageLine | None:
    """A usage line from the fields ``names`` maps (dimension, time, whole, decimal, allocations) to."""
    _required(data.get(names["dimension"]), f"{where}{names['dimension']}", errors)
    dimension = _text(data, names["dimension"], errors, 1, MAX_DIMENSION)
    time = _time(data.get(names["time"]), f"{where}{names['time']}", errors)
    whole = _whole(data.get(names["whole"]), f"{where}{names['whole']}", errors)
    decimal = _decimal(data.get(names["decimal"]), f"{where}{names['decimal']}", errors)
    quantity = _quantity(whole, decimal, (names["whole"], names["decimal"]), errors)
    if errors or dimension is None:
        return None
    form = "whole" if whole is not None else "decimal" if decimal is not None else None
    allocations = parse_allocations(data.get("UsageAllocations"), quantity, form, f"{where}UsageAllocations")
    return UsageLine(dimension, time, quantity, allocations)


METER_USAGE_FIELDS = {
    "dimension": "UsageDimension",
    "time": "Timestamp",
    "whole": "UsageQuantity",
    "decimal": "UsageQuantityAsDecimal",
}
RECORD_FIELDS = {"dimension": "Dimension", "time": "Timestamp", "whole": "Quantity", "decimal": "QuantityAsDecimal"}


def parse_meter_usage(data: Mapping[str, Any]) -> MeterUsageRequest:
    """A validated MeterUsage request; InvalidInput (ValidationException) or a MarketplaceError otherwise."""
    errors: list[FieldError] = []
    _required(data.get("ProductCode"), "ProductCode", errors)
    product = _product(data.get("ProductCode"), errors)
    token = _text(data, "ClientToken", errors, 1, MAX_CLIENT_TOKEN)
    dry_run = data.get("DryRun", False)
    if not isinstance(dry_run, bool):
        errors.append(FieldError("DryRun", "Member must be a boolean"))
    if errors:
        raise InvalidInput("the request is invalid", errors)
    line = _line(data, METER_USAGE_FIELDS, "", errors)
    if errors or line is None or product is None:
        raise InvalidInput("the request is invalid", errors)
    return MeterUsageRequest(product, line, bool(dry_run), token)


def _product(value: object, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    try:
        return check_product_code(value, "ProductCode")
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return None


def parse_batch(data: Mapping[str, Any]) -> BatchRequest:
    """A validated BatchMeterUsage request: at most 25 records, each a valid usage line naming a customer."""
    errors: list[FieldError] = []
    product = _product(data.get("ProductCode"), errors)
    records = data.get("UsageRecords")
    _required(records, "UsageRecords", errors)
    if records is not None and not isinstance(records, list):
        errors.append(FieldError("UsageRecords", "Member must be a list"))
    elif isinstance(records, list) and len(records) > MAX_BATCH:
        errors.append(FieldError("UsageRecords", f"Member must have length less than or equal to {MAX_BATCH}"))
    if errors or not isinstance(records, list):
        raise InvalidInput("the request is invalid", errors)
    parsed = [_record(record, index) for index, record in enumerate(records)]
    return BatchRequest(product, tuple(parsed))


def _record(data: object, index: int) -> BatchRecord:
    where = f"UsageRecords[{index}]."
    if not isinstance(data, Mapping):
        raise InvalidInput("the request is invalid", [FieldError(where.rstrip("."), "Member must be a structure")])
    errors: list[FieldError] = []
    customer = _text(data, "CustomerIdentifier", errors, 0, MAX_CUSTOMER)
    account = _text(data, "CustomerAWSAccountId", errors, 1, 255)
    if account is not None and not ACCOUNT_ID_RE.match(account):
        errors.append(
            FieldError(f"{where}CustomerAWSAccountId", "Member must satisfy regular expression pattern: ^[0-9]+$")
        )
    arn = _text(data, "LicenseArn", errors, 1, 2048)
    if arn is not None and not LICENSE_ARN_RE.match(arn):
        errors.append(FieldError(f"{where}LicenseArn", "Member must satisfy the LicenseArn pattern"))
    line = _line(data, RECORD_FIELDS, where, errors)
    if errors or line is None:
        raise InvalidInput(
            "the request is invalid",
            [FieldError(e.path if e.path.startswith(where) else where + e.path, e.message) for e in errors],
        )
    if customer and account is not None:
        raise MarketplaceError(
            "InvalidCustomerIdentifierException",
            f"{where}CustomerIdentifier and CustomerAWSAccountId cannot both be specified",
        )
    if not customer and account is None and arn is None:
        raise MarketplaceError(
            "InvalidCustomerIdentifierException",
            f"{where.rstrip('.')} must identify the customer by CustomerIdentifier, CustomerAWSAccountId or LicenseArn",
        )
    return BatchRecord(line, customer or None, account, arn)


# -- time bounds -------------------------------------------------------------------------------------------
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TimeRules:
    """How late (and how early) usage may be reported, in milliseconds."""

    meter_lateness: int = 6 * HOUR_MS
    batch_lateness: int = 24 * HOUR_MS
    month_grace: int = 6 * HOUR_MS
    future: int = 15 * 60_000


def hour_of(ms: int) -> int:
    """The start of the UTC hour containing ``ms``."""
    return ms // HOUR_MS * HOUR_MS


def month_start(ms: int) -> int:
    """The start of the UTC month containing ``ms``."""
    moment = from_ms(ms)
    return to_ms(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0))


def meter_usage_in_bounds(time: int, now: int, rules: TimeRules) -> bool:
    """MeterUsage: no more than ``meter_lateness`` in the past, nor more than ``future`` ahead."""
    return now - rules.meter_lateness <= time <= now + rules.future


def batch_time_in_bounds(time: int, now: int, rules: TimeRules) -> bool:
    """BatchMeterUsage: less than ``batch_lateness`` old, and a previous month only during its grace period."""
    if time > now + rules.future or now - time >= rules.batch_lateness:
        return False
    current = month_start(now)
    return time >= current or now < current + rules.month_grace


def out_of_bounds(message: str) -> MarketplaceError:
    return MarketplaceError("TimestampOutOfBoundsException", message)


# -- identity ------------------------------------------------------------------------------------------------
def _plain(value: Decimal) -> str:
    """A quantity as canonical text: 17, 17.0 and 17.00 are all ``17``."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _hash(parts: Sequence[object], size: int = 16) -> str:
    text = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def as_uuid(hex32: str) -> str:
    """A 128-bit hash as a name-based (version 5 layout) UUID, the shape of AWS MeteringRecordIds."""
    return str(uuid.UUID(hex=hex32[:32], version=5))


def fingerprint(line: UsageLine) -> str:
    """What must match for a resend to be identical: quantity and allocations, compared by value."""
    allocations = [[list(map(list, a.tags)), _plain(a.quantity)] for a in line.allocations]
    return _hash([line.dimension, _plain(line.quantity), allocations], 12)


def request_fingerprint(request: MeterUsageRequest) -> str:
    """What must match when a ClientToken is reused: every parameter (the exact time, quantities by value)."""
    return _hash([request.product, request.line.time, fingerprint(request.line)], 12)


def meter_usage_id(product: str, caller: str, line: UsageLine) -> str:
    """The MeteringRecordId of a MeterUsage: one per (product, dimension, hour, caller)."""
    return as_uuid(_hash(["MeterUsage", product, line.dimension, hour_of(line.time), caller]))


def batch_record_id(product: str, customer: str, line: UsageLine) -> str:
    """The MeteringRecordId of a BatchMeterUsage record: one per (product, customer, dimension, time)."""
    return as_uuid(_hash(["BatchMeterUsage", product, customer, line.dimension, line.time]))


def line_events(record_id: str, meter: str, customer: str, time: int, line: UsageLine, raw: str) -> list[UsageEvent]:
    """The usage events of a line: one, or one per allocation with its tags as dimensions."""
    if not line.allocations:
        return [UsageEvent(record_id, meter, customer, time, float(line.quantity), {}, None, SURFACE, raw)]
    return [
        UsageEvent(
            f"{record_id}.{_hash([list(map(list, a.tags))], 6)}",
            meter,
            customer,
            time,
            float(a.quantity),
            dict(a.tags),
            None,
            SURFACE,
            raw,
        )
        for a in line.allocations
    ]
