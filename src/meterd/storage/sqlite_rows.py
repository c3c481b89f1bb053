"""Encoding between SQLite rows and domain records, and the per-process cache of interned meter/series ids.

Interned ids never change once committed, so caching them is safe across processes: a miss reads (or, in the
writer, creates) the row, and a new id enters the cache only after its transaction commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Callable
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
    Tenant,
    UsageEvent,
)
from meterd.storage.sqlite_conn import Tx

_ENCODER = json.JSONEncoder(separators=(",", ":"))
encode_json = _ENCODER.encode
_fast_encode: Callable[[Any], bytes] | None
try:  # msgspec (a server dependency) encodes dimensions ~5x faster than json
    import msgspec

    _fast_encode = msgspec.json.Encoder().encode
except ImportError:  # pragma: no cover - the plain json module gives the same meaning
    _fast_encode = None

EVENT_COLUMNS = "seq, mid, sid, surface, id, time, value, dims, end_time, raw, ingested_at, live, replaces, replaced_by"


def identity_hash(tenant: str, surface: str, event_id: str) -> int:
    """The 64-bit dedup key of an event identity (CRC-32 and Adler-32, signed to fit SQLite's INTEGER).

    Not cryptographic and need not be: a match is always verified on the full identity, so colliding ids
    (even crafted ones) are told apart; they only cost an extra row read.
    """
    data = f"{tenant}\x00{surface}\x00{event_id}".encode()
    return (zlib.crc32(data) << 32 | zlib.adler32(data)) - (1 << 63)


def dims_text(dimensions: Dimensions) -> str | None:
    """Dimensions as JSON text (NULL when empty). Readers only ever parse it, so the encoder may vary."""
    if not dimensions:
        return None
    if _fast_encode is not None:
        try:
            return _fast_encode(dimensions).decode()
        except (OverflowError, TypeError, ValueError, UnicodeDecodeError):
            pass
    return encode_json(dimensions)


def dims_value(text: str | None) -> Dimensions:
    if not text:
        return {}
    decoded: Dimensions = json.loads(text)
    return decoded


def json_path(key: str) -> str | None:
    """A SQLite JSON path addressing ``key`` of an object, or None when the key cannot be quoted."""
    if '"' in key or "\\" in key:
        return None
    return f'$."{key}"'


class Names:
    """Interned (tenant, meter) -> mid and (mid, customer) -> sid, cached once committed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mids: dict[tuple[str, str], int] = {}
        self.meter_of: dict[int, tuple[str, str]] = {}
        self.sids: dict[tuple[int, str], int] = {}
        self.customer_of: dict[int, str] = {}

    def _remember_mid(self, tenant: str, meter: str, mid: int) -> None:
        with self._lock:
            self.mids[(tenant, meter)] = mid
            self.meter_of[mid] = (tenant, meter)

    def _remember_sid(self, mid: int, customer: str, sid: int) -> None:
        with self._lock:
            self.sids[(mid, customer)] = sid
            self.customer_of[sid] = customer

    # writer side: create on miss ------------------------------------------------------------------------
    def mid_for(self, tx: Tx, local: dict[tuple[str, str], int], tenant: str, meter: str) -> int:
        key = (tenant, meter)
        found = self.mids.get(key) or local.get(key)
        if found is not None:
            return found
        mid = _allocate(tx, "meter_ids", "mid", "tenant = ? AND meter = ?", "(tenant, meter)", key)
        local[key] = mid
        tx.after_commit.append(lambda: self._remember_mid(tenant, meter, mid))
        return mid

    def sid_for(self, tx: Tx, local: dict[tuple[int, str], int], mid: int, customer: str) -> int:
        key = (mid, customer)
        found = self.sids.get(key) or local.get(key)
        if found is not None:
            return found
        sid = _allocate(tx, "series_ids", "sid", "mid = ? AND customer = ?", "(mid, customer)", key)
        local[key] = sid
        tx.after_commit.append(lambda: self._remember_sid(mid, customer, sid))
        return sid

    # reader side: look up ------------------------------------------------------------------------------
    # (``cache=False`` on the writer: what it reads may belong to a transaction that has not committed yet.)
    def meter(self, conn: sqlite3.Connection, mid: int, cache: bool = True) -> tuple[str, str]:
        found = self.meter_of.get(mid)
        if found is None:
            row = conn.execute("SELECT tenant, meter FROM meter_ids WHERE mid = ?", (mid,)).fetchone()
            found = (str(row[0]), str(row[1]))
            if cache:
                self._remember_mid(found[0], found[1], mid)
        return found

    def customer(self, conn: sqlite3.Connection, sid: int, cache: bool = True) -> str:
        found = self.customer_of.get(sid)
        if found is None:
            row = conn.execute("SELECT mid, customer FROM series_ids WHERE sid = ?", (sid,)).fetchone()
            found = str(row[1])
            if cache:
                self._remember_sid(int(row[0]), found, sid)
        return found

    def tenant_mids(self, conn: sqlite3.Connection, tenant: str) -> dict[int, str]:
        """Every interned meter of a tenant: mid -> meter name."""
        rows = conn.execute("SELECT mid, meter FROM meter_ids WHERE tenant = ?", (tenant,)).fetchall()
        for mid, meter in rows:
            if mid not in self.meter_of:
                self._remember_mid(tenant, meter, mid)
        return {int(mid): str(meter) for mid, meter in rows}

    def mid_of(self, conn: sqlite3.Connection, tenant: str, meter: str) -> int | None:
        mid = self.mids.get((tenant, meter))
        if mid is None:
            row = conn.execute("SELECT mid FROM meter_ids WHERE tenant = ? AND meter = ?", (tenant, meter)).fetchone()
            if row is None:
                return None
            mid = int(row[0])
            self._remember_mid(tenant, meter, mid)
        return mid

    def sids_of(self, conn: sqlite3.Connection, mid: int, customers: tuple[str, ...]) -> dict[int, str]:
        """The series ids of some customers of a meter (customers without events have none)."""
        found: dict[int, str] = {}
        missing: list[str] = []
        for customer in set(customers):
            sid = self.sids.get((mid, customer))
            if sid is None:
                missing.append(customer)
            else:
                found[sid] = customer
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT sid, customer FROM series_ids WHERE mid = ? AND customer IN ({marks})"
            for sid, customer in conn.execute(sql, (mid, *part)):
                self._remember_sid(mid, customer, sid)
                found[int(sid)] = str(customer)
        return found


def stored_event(names: Names, conn: sqlite3.Connection, row: tuple[Any, ...], cache: bool = True) -> StoredEvent:
    """A row selected with :data:`EVENT_COLUMNS` as a :class:`StoredEvent`."""
    seq, mid, sid, surface, event_id, time, value, dims, end_time, raw, ingested_at, live, replaces, by = row
    _, meter = names.meter(conn, mid, cache)
    customer = names.customer(conn, sid, cache)
    event = UsageEvent(event_id, meter, customer, time, value, dims_value(dims), end_time, surface, raw)
    status = EventStatus.LIVE if live else EventStatus.VOIDED
    return StoredEvent(event, seq, ingested_at, status, replaces, by)


def tenant_row(row: tuple[Any, ...]) -> Tenant:
    return Tenant(row[0], row[1], row[2])


def key_params(key: ApiKey) -> tuple[Any, ...]:
    scopes = ",".join(sorted(s.value for s in key.scopes))
    return (key.id, key.tenant, key.name, scopes, key.secret_hash, key.created_at, key.last_used_at, key.revoked_at)


def key_row(row: tuple[Any, ...]) -> ApiKey:
    scopes = frozenset(Scope(s) for s in row[3].split(",") if s)
    return ApiKey(row[0], row[1], row[2], scopes, row[4], row[5], row[6], row[7])


def customer_params(tenant: str, c: Customer) -> tuple[Any, ...]:
    return (tenant, c.id, c.name, c.email, encode_json(c.traits), int(c.enabled), c.created_at, c.updated_at)


def customer_row(row: tuple[Any, ...]) -> Customer:
    return Customer(row[0], row[1], row[2], json.loads(row[3]), bool(row[4]), row[5], row[6])


def meter_params(tenant: str, m: Meter) -> tuple[Any, ...]:
    props = encode_json(m.properties)
    return (tenant, m.key, m.aggregation.value, m.unit, m.description, m.unique_dimension, props, m.created_at)


def meter_row(row: tuple[Any, ...]) -> Meter:
    return Meter(row[0], Aggregation(row[1]), row[2], row[3], row[4], json.loads(row[5]), row[6])


def _encode_error(item: Any) -> Any:
    if isinstance(item, FieldError):
        return {"path": item.path, "message": item.message}
    return item


def _decode_error(item: Any) -> Any:
    if isinstance(item, dict) and set(item) == {"path", "message"}:
        return FieldError(str(item["path"]), str(item["message"]))
    return item


def errors_text(errors: tuple[Any, ...]) -> str:
    """Rejection errors as JSON; field errors become ``{"path", "message"}`` and come back as FieldError."""
    return json.dumps([_encode_error(e) for e in errors], default=str)


def rejection_row(row: tuple[Any, ...]) -> Rejection:
    rid, surface, code, message, raw, created_at, meter, event_id, errors = row
    decoded = tuple(_decode_error(e) for e in json.loads(errors))
    return Rejection(rid, surface, code, message, raw, created_at, meter, event_id, decoded)


REJECTION_COLUMNS = "id, surface, code, message, raw, created_at, meter, event_id, errors"
CORRECTION_COLUMNS = "id, event_id, surface, action, reason, key_id, created_at, replacement_id"


def correction_row(row: tuple[Any, ...]) -> Correction:
    return Correction(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def _allocate(tx: Tx, table: str, column: str, where: str, columns: str, key: tuple[object, ...]) -> int:
    """The integer id of ``key`` in ``table``, inserting a row when there is none yet (inside the writer)."""
    row = tx.conn.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()
    if row is not None:
        return int(row[0])
    cur = tx.conn.execute(f"INSERT INTO {table} {columns} VALUES (?, ?)", key)
    return int(cur.lastrowid or 0)
