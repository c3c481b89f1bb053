"""The AWS Marketplace metering operations over the core rules and the store.

MeterUsage and BatchMeterUsage, for a caller identified by its access key.
A metering record is claimed under its record id (a ``aws-record`` object holding its fingerprint) before its
events are ingested, so an identical resend is idempotent and a different one is a duplicate, even when the
record fans out into one event per allocation. Every rejected metering record is kept (surface ``aws``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meterd.core.awsmetering import (
    SURFACE,
    BatchRecord,
    BatchRequest,
    TimeRules,
    UsageLine,
    batch_record_id,
    batch_time_in_bounds,
    fingerprint,
    hour_of,
    line_events,
    meter_usage_id,
    meter_usage_in_bounds,
    out_of_bounds,
    parse_batch,
    parse_meter_usage,
    request_fingerprint,
)
from meterd.core.errors import InvalidInput, MeterdError, StorageError
from meterd.core.marketplace import Dimension, Entitlement, MarketplaceError, Product, active
from meterd.core.models import Outcome, UsageEvent
from meterd.core.timeutil import format_seconds
from meterd.service.marketplace import Catalog
from meterd.service.meterd import Meterd
from meterd.storage.base import NewRejection

log = logging.getLogger("meterd.aws")
RECORD, CLIENT_TOKEN = "aws-record", "aws-client-token"
SEP = "\t"
Memo = dict[str, list[Entitlement]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who signed the request: the access key's tenant, id and the customer it acts for (if any)."""

    tenant: str
    access_key_id: str
    customer: str | None


@dataclass(frozen=True, slots=True)
class Metered:
    record_id: str
    dry_run: bool


class Status(StrEnum):
    SUCCESS = "Success"
    NOT_SUBSCRIBED = "CustomerNotSubscribed"
    DUPLICATE = "DuplicateRecord"


@dataclass(frozen=True, slots=True)
class RecordResult:
    index: int
    status: Status
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Per-record results in request order, and the indexes of records not processed (retry them)."""

    results: list[RecordResult]
    unprocessed: list[int]


def error(kind: str, message: str) -> MarketplaceError:
    return MarketplaceError(kind, message)


def rejection(raw: str, exc: MeterdError, meter: str | None = None) -> NewRejection:
    """The kept form of a record the AWS surface refused."""
    kind = getattr(exc, "kind", "ValidationException")
    errors = tuple(e.as_dict() for e in exc.errors)
    return NewRejection(SURFACE, str(kind), exc.message, raw, meter, None, errors)


def record_raws(body: Mapping[str, Any], raw: str) -> list[str]:
    """Each BatchMeterUsage record as JSON text, or the whole body when the records are not a list."""
    records = body.get("UsageRecords")
    if not isinstance(records, list):
        return [raw]
    return [json.dumps(r, separators=(",", ":"), ensure_ascii=False, default=repr) for r in records]


def dimension_of(product: Product, name: str, where: str = "UsageDimension") -> Dimension:
    found = product.dimension(name)
    if found is None:
        raise error(
            "InvalidUsageDimensionException", f"{where} {name!r} is not a dimension of product {product.code!r}"
        )
    return found


class Metering:
    """MeterUsage and BatchMeterUsage."""

    def __init__(self, meterd: Meterd, catalog: Catalog, rules: TimeRules) -> None:
        self.meterd = meterd
        self.store = meterd.store
        self.catalog = catalog
        self.rules = rules

    async def product(self, tenant: str, code: str) -> Product:
        found = await self.catalog.get_product(tenant, code)
        if found is None:
            raise error("InvalidProductCodeException", f"{code!r} is not a product code of this seller")
        return found

    async def subscribed(
        self, tenant: str, customer: str, product: str, at: int, memo: Memo | None = None
    ) -> Entitlement | None:
        """The customer's entitlement to ``product`` at ``at``, if the customer exists and is enabled.

        ``memo`` keeps each customer's entitlements for the length of one request (a batch names few customers).
        """
        memo = {} if memo is None else memo
        if customer not in memo:
            found = await self.store.get_customer(tenant, customer)
            enabled = found is not None and found.enabled
            memo[customer] = await self.catalog.entitlements(tenant, product, customer) if enabled else []
        return active(memo[customer], at)

    async def claim(self, tenant: str, record_id: str, line: UsageLine, *, write: bool = True) -> bool:
        """Whether the record is new or identical to the one kept under ``record_id`` (claiming it when new).

        New records are the common case, so the claim is tried first: one store round trip for them.
        """
        mark = fingerprint(line)
        if write:
            body = {"fingerprint": mark, "at": self.meterd.clock()}
            if await self.store.put_object(tenant, RECORD, record_id, body, only_if_absent=True):
                return True
        existing = await self.store.get_object(tenant, RECORD, record_id)
        return existing is None or existing.get("fingerprint") == mark

    # MeterUsage ----------------------------------------------------------------------------------------
    async def meter_usage(self, caller: Caller, body: Mapping[str, Any], raw: str) -> Metered:
        """Record one hourly usage line of the caller's customer; the same record id for an identical resend."""
        try:
            return await self._meter_usage(caller, body, raw)
        except (MarketplaceError, InvalidInput) as exc:
            if not getattr(exc, "kept", False):
                await self.meterd.reject(caller.tenant, [rejection(raw, exc)])
            raise

    async def _meter_usage(self, caller: Caller, body: Mapping[str, Any], raw: str) -> Metered:
        request = parse_meter_usage(body)
        line, tenant = request.line, caller.tenant
        product = await self.product(tenant, request.product)
        dimension = dimension_of(product, line.dimension)
        if not meter_usage_in_bounds(line.time, self.meterd.clock(), self.rules):
            hours = self.rules.meter_lateness // 3_600_000
            raise out_of_bounds(
                f"Timestamp {format_seconds(line.time)} is more than {hours} hours in the past, or ahead"
            )
        customer = caller.customer
        if customer is None or await self.subscribed(tenant, customer, product.code, line.time) is None:
            who = (
                f"customer {customer!r}" if customer else f"access key {caller.access_key_id} (it acts for no customer)"
            )
            raise error("CustomerNotEntitledException", f"{who} is not entitled to product {product.code!r}")
        if request.client_token is not None:
            await self._client_token(caller, request.client_token, request_fingerprint(request), request.dry_run)
        record_id = meter_usage_id(product.code, caller.access_key_id, line)
        if not await self.claim(tenant, record_id, line, write=not request.dry_run):
            raise error(
                "DuplicateRequestException",
                f"a different {line.dimension!r} record was metered for the hour {format_seconds(hour_of(line.time))}",
            )
        if request.dry_run:
            return Metered(record_id, True)
        events = line_events(record_id, dimension.meter, customer, hour_of(line.time), line, raw)
        if Outcome.CONFLICT in await self.meterd.ingest_events(tenant, events):
            exc = error("DuplicateRequestException", "a different record was metered under this record id")
            exc.kept = True  # the store kept the conflict
            raise exc
        return Metered(record_id, False)

    async def _client_token(self, caller: Caller, token: str, mark: str, dry_run: bool) -> None:
        key = f"{caller.access_key_id}{SEP}{token}"
        existing = await self.store.get_object(caller.tenant, CLIENT_TOKEN, key)
        if existing is None and not dry_run:
            if await self.store.put_object(
                caller.tenant, CLIENT_TOKEN, key, {"fingerprint": mark}, only_if_absent=True
            ):
                return
            existing = await self.store.get_object(caller.tenant, CLIENT_TOKEN, key)
        if existing is not None and existing.get("fingerprint") != mark:
            raise error("IdempotencyConflictException", f"ClientToken {token!r} was used with other parameters")

    # BatchMeterUsage -----------------------------------------------------------------------------------
    async def batch_meter_usage(self, caller: Caller, body: Mapping[str, Any], raw: str) -> BatchOutcome:
        """Up to 25 records of one product; a Status per record, or the whole batch refused."""
        raws = record_raws(body, raw)
        try:
            request = parse_batch(body)
            product, licences = await self._batch_product(caller.tenant, request)
            if product is not None:
                self._check_batch_lines(product, request)
        except (MarketplaceError, InvalidInput) as exc:
            await self.meterd.reject(caller.tenant, [rejection(r, exc) for r in raws])
            raise
        if product is None:
            return BatchOutcome([], [])
        return await self._batch_records(caller.tenant, product, request, licences, raws)

    def _check_batch_lines(self, product: Product, request: BatchRequest) -> None:
        now = self.meterd.clock()
        for index, record in enumerate(request.records):
            dimension_of(product, record.line.dimension, f"UsageRecords[{index}].Dimension")
        for index, record in enumerate(request.records):
            if not batch_time_in_bounds(record.line.time, now, self.rules):
                raise out_of_bounds(
                    f"UsageRecords[{index}].Timestamp {format_seconds(record.line.time)} is out of the accepted "
                    "range; the whole batch was not processed"
                )

    async def _batch_product(self, tenant: str, request: BatchRequest) -> tuple[Product | None, dict[int, Entitlement]]:
        """The one product of the call and the entitlements of the records that carry a LicenseArn."""
        licences: dict[int, Entitlement] = {}
        for index, record in enumerate(request.records):
            if record.license_arn is not None:
                licences[index] = await self._licence(tenant, request.product, record, index)
        codes = {e.product for e in licences.values()} | ({request.product} if request.product else set())
        if len(codes) > 1:
            raise error("InvalidLicenseException", f"a call is for one product; the licences name {sorted(codes)}")
        if len(licences) < len(request.records) and not request.product:
            raise error("InvalidProductCodeException", "ProductCode is required when a record has no LicenseArn")
        return (await self.product(tenant, codes.pop()) if codes else None), licences

    async def _licence(self, tenant: str, product: str | None, record: BatchRecord, index: int) -> Entitlement:
        arn = record.license_arn or ""
        found = await self.catalog.by_license(tenant, arn)
        where = f"UsageRecords[{index}].LicenseArn"
        if found is None:
            raise error("InvalidLicenseException", f"{where} is not a licence granted by this seller")
        if product is not None and found.product != product:
            raise error("InvalidLicenseException", f"{where} is for product {found.product!r}, not {product!r}")
        account = await self.catalog.account_of(tenant, found.customer)
        if (record.customer and record.customer != found.customer) or (
            record.account_id and record.account_id != account
        ):
            raise error("InvalidLicenseException", f"{where} does not belong to the record's customer")
        return found

    async def _record_customer(
        self, tenant: str, product: Product, record: BatchRecord, licence: Entitlement | None, memo: Memo
    ) -> str | None:
        """The subscribed customer a record meters for, or None (CustomerNotSubscribed)."""
        time = record.line.time
        if licence is not None:
            ok = licence.active_at(time) and await self.subscribed(tenant, licence.customer, product.code, time, memo)
            return licence.customer if ok else None
        customer = record.customer
        if customer is None and record.account_id is not None:
            customer = await self.catalog.customer_by_account(tenant, record.account_id)
        if customer is None or await self.subscribed(tenant, customer, product.code, time, memo) is None:
            return None
        return customer

    async def _batch_records(
        self, tenant: str, product: Product, request: BatchRequest, licences: dict[int, Entitlement], raws: list[str]
    ) -> BatchOutcome:
        results: list[RecordResult] = []
        memo: Memo = {}
        events: list[UsageEvent] = []
        owners: list[int] = []
        kept: list[NewRejection] = []
        for index, record in enumerate(request.records):
            line = record.line
            customer = await self._record_customer(tenant, product, record, licences.get(index), memo)
            if customer is None:
                results.append(RecordResult(index, Status.NOT_SUBSCRIBED))
                kept.append(
                    NewRejection(SURFACE, Status.NOT_SUBSCRIBED.value, "the customer is not subscribed", raws[index])
                )
                continue
            record_id = batch_record_id(product.code, customer, line)
            if not await self.claim(tenant, record_id, line):
                results.append(RecordResult(index, Status.DUPLICATE))
                message = "a record with the same customer, dimension and time has a different quantity"
                kept.append(NewRejection(SURFACE, Status.DUPLICATE.value, message, raws[index], None, record_id))
                continue
            meter = dimension_of(product, line.dimension).meter
            fresh = line_events(record_id, meter, customer, line.time, line, raws[index])
            events.extend(fresh)
            owners.extend([len(results)] * len(fresh))
            results.append(RecordResult(index, Status.SUCCESS, record_id))
        try:
            outcomes = await self.meterd.ingest_events(tenant, events, kept)
        except StorageError as exc:
            log.warning("BatchMeterUsage not processed: %s", exc.message)
            return BatchOutcome([], list(range(len(request.records))))
        for owner, outcome in zip(owners, outcomes, strict=True):
            if outcome is Outcome.CONFLICT:
                results[owner] = RecordResult(results[owner].index, Status.DUPLICATE)
        return BatchOutcome(results, [])
