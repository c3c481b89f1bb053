"""AMIE orchestration: load a UsageMessage, keep and clear failed records, report status per resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meterd.core.amie_records import METERS, SURFACE, RecordType, event_id, record_type, to_event, validate
from meterd.core.amie_status import (
    CONFLICT,
    MESSAGE_LEVEL,
    FailedRecord,
    ResourceTotals,
    conflict_message,
    kept_raw,
    read_failed,
    status,
)
from meterd.core.errors import FieldError, InvalidInput, PayloadTooLarge
from meterd.core.models import Aggregation, Outcome, UsageEvent
from meterd.core.query import QuerySpec
from meterd.core.timeutil import MAX_MS
from meterd.service.meterd import Meterd
from meterd.storage.base import NewRejection

PAGE = 1000


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a send did: counts by outcome and the records that failed, in request order."""

    received: int
    loaded: int
    duplicates: int
    failed: list[FailedRecord]

    @property
    def message(self) -> str:
        return (
            f"{self.received} records received: {self.loaded} loaded, {self.duplicates} already loaded, "
            f"{len(self.failed)} failed"
        )


class AmieService:
    """The AMIE usage API over the Meterd service; one per app."""

    def __init__(self, meterd: Meterd, max_records: int) -> None:
        self.meterd = meterd
        self.max_records = max_records

    async def reject_message(self, tenant: str, raw: str, error: InvalidInput) -> None:
        """Keep a message that could not be read as a UsageMessage (it has no records to report)."""
        rejection = NewRejection(SURFACE, MESSAGE_LEVEL, error.message, raw, None, None, _errors(error))
        await self.meterd.reject(tenant, [rejection])

    async def send(self, tenant: str, message: object, raw: str) -> SendResult:
        """Validate every record, keep the failed ones, store the valid ones as usage events."""
        try:
            type_, records = self._envelope(message)
        except InvalidInput as exc:
            await self.reject_message(tenant, raw, exc)
            raise
        events: list[UsageEvent] = []
        failures: list[tuple[int, NewRejection]] = []
        for index, record in enumerate(records):
            raw_record = kept_raw(type_, record)
            try:
                events.append(to_event(validate(type_, record), raw_record))
            except InvalidInput as exc:
                failures.append((index, _rejection(type_, record, raw_record, exc)))
        ids = await self.meterd.reject(tenant, [r for _, r in failures]) if failures else []
        failed = {index: _failed(rid, type_, r) for (index, r), rid in zip(failures, ids, strict=True)}
        outcomes = await self.meterd.ingest_events(tenant, events) if events else []
        conflicts = [e for e, o in zip(events, outcomes, strict=True) if o is Outcome.CONFLICT]
        conflict_ids = iter(await self._conflict_ids(tenant, conflicts))
        valid_positions = [i for i in range(len(records)) if i not in failed]
        for position, outcome in zip(valid_positions, outcomes, strict=True):
            if outcome is Outcome.CONFLICT:
                record = _as_dict(records[position])
                message = conflict_message(type_, record)
                failed[position] = FailedRecord(next(conflict_ids), type_, _kept(type_, record), message, 0)
        return SendResult(
            len(records),
            sum(o is Outcome.ACCEPTED for o in outcomes),
            sum(o is Outcome.DUPLICATE for o in outcomes),
            [failed[i] for i in sorted(failed)],
        )

    def _envelope(self, message: object) -> tuple[RecordType, Sequence[object]]:
        if not isinstance(message, Mapping):
            raise InvalidInput('the body must be a UsageMessage: {"UsageType": ..., "Records": [...]}')
        type_ = record_type(message.get("UsageType"))
        records = message.get("Records")
        if not isinstance(records, list):
            raise InvalidInput("Records must be a list of records", [FieldError("Records", "must be a list")])
        if len(records) > self.max_records:
            raise PayloadTooLarge(f"a message may carry at most {self.max_records} records, not {len(records)}")
        return type_, records

    async def _conflict_ids(self, tenant: str, conflicts: Sequence[UsageEvent]) -> list[int | None]:
        """The ids of the rejections the store kept for these conflicts (the newest ones per event, in order)."""
        if not conflicts:
            return []
        wanted = {e.id for e in conflicts}
        found: dict[str, list[int]] = {}
        async for rejection in self._rejections(tenant):
            if rejection.code == CONFLICT and rejection.event_id in wanted:
                found.setdefault(rejection.event_id, []).append(rejection.id)
        ids: list[int | None] = []
        for event in reversed(conflicts):
            candidates = found.get(event.id, [])
            ids.append(candidates.pop() if candidates else None)
        return ids[::-1]

    async def _rejections(self, tenant: str) -> Any:
        cursor: str | None = None
        while True:
            page = await self.meterd.store.list_rejections(tenant, SURFACE, PAGE, cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def failed(self, tenant: str, start: int | None = None, end: int | None = None) -> list[FailedRecord]:
        """Every kept failed record of the tenant (with usage time in [start, end) when given), oldest first."""
        out: list[FailedRecord] = []
        async for r in self._rejections(tenant):
            record = read_failed(r.id, r.code, r.message, r.raw, r.created_at)
            if record is None:
                continue
            if (start is not None and record.time < start) or (end is not None and record.time >= end):
                continue
            out.append(record)
        return out

    async def clear(self, tenant: str, ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """Delete these failed records; (deleted ids, ids that are not failed records of the tenant)."""
        known = {r.id for r in await self.failed(tenant)}
        deleted = sorted({i for i in ids if i in known})
        missing = sorted({i for i in ids if i not in known})
        if deleted:
            await self.meterd.store.delete_rejections(tenant, deleted)
        return deleted, missing

    async def status(self, tenant: str, start: int | None, end: int | None) -> list[dict[str, Any]]:
        """Per resource, for usage time in [start, end): records loaded, their total charge, failed records."""
        lo, hi = start if start is not None else 0, end if end is not None else MAX_MS + 1
        loaded: dict[str, ResourceTotals] = {}
        if hi > lo:
            for aggregation in (Aggregation.COUNT, Aggregation.SUM):
                spec = QuerySpec(METERS, lo, hi, group_by=("resource",), aggregation=aggregation)
                for row in await self.meterd.query(tenant, spec):
                    totals = loaded.setdefault(str(row.group.get("resource")), ResourceTotals())
                    if aggregation is Aggregation.COUNT:
                        totals.count += int(row.value or 0)
                    else:
                        totals.charge += row.value or 0.0
        return status(loaded, await self.failed(tenant, lo, hi))


def _errors(exc: InvalidInput) -> tuple[dict[str, str], ...]:
    return tuple(e.as_dict() for e in exc.errors)


def _as_dict(record: object) -> dict[str, Any]:
    return dict(record) if isinstance(record, Mapping) else {"Record": record}


def _kept(type_: RecordType, record: Mapping[str, Any]) -> dict[str, Any]:
    return {**record, "UsageType": type_.name}


def _rejection(type_: RecordType, record: object, raw: str, exc: InvalidInput) -> NewRejection:
    ident = None
    if isinstance(record, Mapping):
        resource, local_id = record.get("Resource"), record.get("LocalRecordID")
        if isinstance(resource, str) and isinstance(local_id, str | int) and not isinstance(local_id, bool):
            ident = event_id(type_, resource, str(local_id))
    return NewRejection(SURFACE, exc.code, exc.message, raw, type_.meter, ident, _errors(exc))


def _failed(rejection_id: int, type_: RecordType, rejection: NewRejection) -> FailedRecord:
    found = read_failed(rejection_id, rejection.code, rejection.message, rejection.raw, 0)
    assert found is not None
    return found
