"""PostgreSQL row codecs: dedup keys, JSON columns, and rows to domain records (and back)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from meterd.core.errors import FieldError
from meterd.core.models import (
    Aggregation,
    ApiKey,
    Correction,
    Customer,
    Dimensions,
    EventStatus,
    Meter,
    Rejection,
    Scope,
    StoredEvent,
    UsageEvent,
)

NUL = "\x00"
MAX_PROBES = 8

EVENT_COLUMNS = (
    "id, meter, customer, time, value, dims, end_time, surface, raw, seq, ingested_at, voided, replaces, replaced_by"
)
KEY_COLUMNS = "id, tenant, name, scopes, secret_hash, created_at, last_used_at, revoked_at"
CUSTOMER_COLUMNS = "id, name, email, traits, enabled, created_at, updated_at"
METER_COLUMNS = "key, aggregation, unit, description, unique_dimension, properties, created_at"
REJECTION_COLUMNS = "id, surface, code, message, raw, created_at, meter, event_id, errors"
CORRECTION_COLUMNS = "id, event_id, surface, action, reason, key_id, created_at, replacement_id"


def dedup_key(tenant: str, surface: str, event_id: str, probe: int = 0, bits: int = 64) -> int:
    """The signed 64-bit key of an identity at ``probe`` (open addressing; ``bits`` < 64 only in tests)."""
    digest = hashlib.blake2b(f"{tenant}\x00{surface}\x00{event_id}\x00{probe}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    if bits < 64:
        key &= (1 << bits) - 1
    return key


def probe_keys(tenant: str, surface: str, event_id: str, bits: int = 64) -> list[int]:
    """Every key an identity may live at, in probing order."""
    return [dedup_key(tenant, surface, event_id, p, bits) for p in range(MAX_PROBES)]


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps with options builds an encoder per call


def dumps(value: object) -> str:
    """Compact JSON, as stored in ``json`` columns."""
    return _ENCODE(value)


def fold_dims(dims: Dimensions, text: str) -> str | None:
    """What the rollup reads instead of ``text`` when it holds NUL (PostgreSQL's JSON functions reject it), else None.

    Keys with NUL are left out (they are never rolled up); string values with NUL become ``[]``, which the
    rollup takes as "cannot be rolled up" (see ``dval`` in the schema).
    """
    if "\\u0000" not in text:
        return None
    return dumps({k: [] if isinstance(v, str) and NUL in v else v for k, v in dims.items() if NUL not in k})


def text_safe(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; it is kept as U+FFFD (only possible in raw payloads)."""
    return value.replace(NUL, "\ufffd") if value is not None and NUL in value else value


def encode_errors(errors: Sequence[Any]) -> str:
    """Field errors (or plain JSON values) of a rejection, as JSON."""
    return dumps([e.as_dict() if isinstance(e, FieldError) else e for e in errors])


def decode_errors(data: Any) -> tuple[Any, ...]:
    """The inverse of :func:`encode_errors`: ``{"path", "message"}`` objects become FieldErrors again."""
    out: list[Any] = []
    for item in data or []:
        if isinstance(item, dict) and set(item) == {"path", "message"}:
            out.append(FieldError(item["path"], item["message"]))
        else:
            out.append(item)
    return tuple(out)


def to_stored_event(row: Sequence[Any]) -> StoredEvent:
    """A row selected with :data:`EVENT_COLUMNS`."""
    (event_id, meter, customer, time, value, dims, end_time, surface, raw, seq, ingested_at, voided, replaces,
     replaced_by) = row
    event = UsageEvent(event_id, meter, customer, time, value, json.loads(dims), end_time, surface, raw)
    status = EventStatus.VOIDED if voided else EventStatus.LIVE
    return StoredEvent(event, seq, ingested_at, status, replaces, replaced_by)


def to_key(row: Sequence[Any]) -> ApiKey:
    key_id, tenant, name, scopes, secret_hash, created_at, last_used_at, revoked_at = row
    return ApiKey(key_id, tenant, name, frozenset(Scope(s) for s in scopes), secret_hash, created_at,
                  last_used_at, revoked_at)


def key_params(key: ApiKey) -> tuple[Any, ...]:
    return (key.id, key.tenant, key.name, sorted(s.value for s in key.scopes), key.secret_hash, key.created_at,
            key.last_used_at, key.revoked_at)


def to_customer(row: Sequence[Any]) -> Customer:
    cid, name, email, traits, enabled, created_at, updated_at = row
    return Customer(cid, name, email, traits, enabled, created_at, updated_at)


def to_meter(row: Sequence[Any]) -> Meter:
    key, aggregation, unit, description, unique_dimension, properties, created_at = row
    return Meter(key, Aggregation(aggregation), unit, description, unique_dimension, properties, created_at)


def to_rejection(row: Sequence[Any]) -> Rejection:
    rid, surface, code, message, raw, created_at, meter, event_id, errors = row
    return Rejection(rid, surface, code, message, raw, created_at, meter, event_id, decode_errors(errors))


def to_correction(row: Sequence[Any]) -> Correction:
    return Correction(*row)
