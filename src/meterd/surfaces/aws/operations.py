"""The four operations on the wire: request object in, response object out (shapes of service-2.json)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from meterd.core.errors import MeterdError
from meterd.service.awsmarket import Marketplace
from meterd.service.awsmetering import Caller, Status


class AwsError(MeterdError):
    """An error only this protocol has (unknown operation, bad JSON, a dry run); ``kind`` is its type."""

    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


Operation = Callable[[Marketplace, Caller, Mapping[str, Any], str], Awaitable[dict[str, Any]]]


async def meter_usage(market: Marketplace, caller: Caller, body: Mapping[str, Any], raw: str) -> dict[str, Any]:
    result = await market.metering.meter_usage(caller, body, raw)
    if result.dry_run:
        raise AwsError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
    return {"MeteringRecordId": result.record_id}


async def batch_meter_usage(market: Marketplace, caller: Caller, body: Mapping[str, Any], raw: str) -> dict[str, Any]:
    outcome = await market.metering.batch_meter_usage(caller, body, raw)
    records = body.get("UsageRecords")
    echo: list[Any] = records if isinstance(records, list) else []
    results: list[dict[str, Any]] = []
    for result in outcome.results:
        item: dict[str, Any] = {"UsageRecord": echo[result.index], "Status": result.status.value}
        if result.status is Status.SUCCESS and result.record_id is not None:
            item["MeteringRecordId"] = result.record_id
        results.append(item)
    return {"Results": results, "UnprocessedRecords": [echo[i] for i in outcome.unprocessed]}


async def register_usage(market: Marketplace, caller: Caller, body: Mapping[str, Any], raw: str) -> dict[str, Any]:
    registration = await market.registrations.register_usage(caller, body)
    answer: dict[str, Any] = {"Signature": registration.signature}
    if registration.rotated_at is not None:
        answer["PublicKeyRotationTimestamp"] = registration.rotated_at / 1000
    return answer


async def resolve_customer(market: Marketplace, caller: Caller, body: Mapping[str, Any], raw: str) -> dict[str, Any]:
    resolved = await market.registrations.resolve_customer(caller, body)
    answer: dict[str, Any] = {
        "CustomerIdentifier": resolved.customer,
        "ProductCode": resolved.product,
        "LicenseArn": resolved.entitlement.license_arn,
        "Metadata": {"AgreementId": resolved.entitlement.agreement_id},
    }
    if resolved.account_id:
        answer["CustomerAWSAccountId"] = resolved.account_id
    return answer


OPERATIONS: dict[str, Operation] = {
    "MeterUsage": meter_usage,
    "BatchMeterUsage": batch_meter_usage,
    "RegisterUsage": register_usage,
    "ResolveCustomer": resolve_customer,
}
