"""PostgresStore parts for plain records: tenants, keys, customers, meters, rejections, stats, objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meterd.core.errors import NotFound
from meterd.core.models import ApiKey, Customer, Meter, Tenant
from meterd.storage.base import IngestStats, NewRejection, Page
from meterd.storage.common import group_rejections, seq_cursor
from meterd.storage.postgres_base import Conn, PgBase
from meterd.storage.postgres_ingest import count_outcomes, insert_rejections
from meterd.storage.postgres_rows import (
    CUSTOMER_COLUMNS,
    KEY_COLUMNS,
    METER_COLUMNS,
    REJECTION_COLUMNS,
    dumps,
    key_params,
    to_customer,
    to_key,
    to_meter,
    to_rejection,
)


class CrudMixin(PgBase):
    """Tenants, keys, customers, meters, rejections, ingest stats and surface objects."""

    # tenants and keys
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        async def work(conn: Conn) -> Tenant:
            await conn.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant.id, tenant.name, tenant.created_at),
            )
            cur = await conn.execute("SELECT id, name, created_at FROM tenants WHERE id = %s", (tenant.id,))
            row = await cur.fetchone()
            return Tenant(*row) if row else tenant

        return await self._run(work)

    async def list_tenants(self) -> list[Tenant]:
        return [Tenant(*r) for r in await self._rows("SELECT id, name, created_at FROM tenants ORDER BY id")]

    async def add_key(self, key: ApiKey) -> None:
        await self._count(
            f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE "
            "SET tenant = excluded.tenant, name = excluded.name, scopes = excluded.scopes, "
            "secret_hash = excluded.secret_hash, created_at = excluded.created_at, "
            "last_used_at = excluded.last_used_at, revoked_at = excluded.revoked_at",
            key_params(key),
        )

    async def get_key(self, key_id: str) -> ApiKey | None:
        rows = await self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        return to_key(rows[0]) if rows else None

    async def list_keys(self, tenant: str) -> list[ApiKey]:
        rows = await self._rows(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = %s ORDER BY created_at, ord", (tenant,)
        )
        return [to_key(r) for r in rows]

    async def revoke_key(self, tenant: str, key_id: str, at: int) -> ApiKey:
        rows = await self._rows(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s AND tenant = %s "
            f"RETURNING {KEY_COLUMNS}",
            (at, key_id, tenant),
        )
        if not rows:
            raise NotFound(f"no key {key_id!r}")
        return to_key(rows[0])

    async def touch_key(self, key_id: str, at: int) -> None:
        await self._count("UPDATE api_keys SET last_used_at = %s WHERE id = %s", (at, key_id))

    # customers and meters
    async def put_customer(self, tenant: str, customer: Customer) -> Customer:
        c = customer
        rows = await self._rows(
            f"INSERT INTO customers (tenant, {CUSTOMER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, email = excluded.email, "
            "traits = excluded.traits, enabled = excluded.enabled, updated_at = excluded.updated_at "
            f"RETURNING {CUSTOMER_COLUMNS}",
            (tenant, c.id, c.name, c.email, dumps(c.traits), c.enabled, c.created_at, c.updated_at),
        )
        return to_customer(rows[0])

    async def get_customer(self, tenant: str, customer_id: str) -> Customer | None:
        rows = await self._rows(
            f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant = %s AND id = %s", (tenant, customer_id)
        )
        return to_customer(rows[0]) if rows else None

    async def list_customers(self, tenant: str, limit: int = 100, cursor: str | None = None) -> Page:
        rows = await self._rows(
            f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant = %s AND (%s::text IS NULL OR id > %s) "
            "ORDER BY id LIMIT %s",
            (tenant, cursor, cursor, max(limit, 0) + 1),
        )
        items = [to_customer(r) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    async def delete_customer(self, tenant: str, customer_id: str) -> bool:
        return await self._count("DELETE FROM customers WHERE tenant = %s AND id = %s", (tenant, customer_id)) > 0

    async def put_meter(self, tenant: str, meter: Meter) -> Meter:
        m = meter
        rows = await self._rows(
            f"INSERT INTO meters (tenant, {METER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant, key) DO UPDATE SET aggregation = excluded.aggregation, unit = excluded.unit, "
            "description = excluded.description, unique_dimension = excluded.unique_dimension, "
            f"properties = excluded.properties RETURNING {METER_COLUMNS}",
            (
                tenant,
                m.key,
                m.aggregation.value,
                m.unit,
                m.description,
                m.unique_dimension,
                dumps(m.properties),
                m.created_at,
            ),
        )
        return to_meter(rows[0])

    async def get_meter(self, tenant: str, key: str) -> Meter | None:
        rows = await self._rows(f"SELECT {METER_COLUMNS} FROM meters WHERE tenant = %s AND key = %s", (tenant, key))
        return to_meter(rows[0]) if rows else None

    async def list_meters(self, tenant: str) -> list[Meter]:
        rows = await self._rows(f"SELECT {METER_COLUMNS} FROM meters WHERE tenant = %s ORDER BY key", (tenant,))
        return [to_meter(r) for r in rows]

    async def delete_meter(self, tenant: str, key: str) -> bool:
        return await self._count("DELETE FROM meters WHERE tenant = %s AND key = %s", (tenant, key)) > 0

    # rejections and ingest health
    async def add_rejections(self, tenant: str, rejections: Sequence[NewRejection], now: int) -> list[int]:
        async def work(conn: Conn) -> list[int]:
            ids = await insert_rejections(conn, tenant, rejections, now)
            await count_outcomes(conn, tenant, (), (), rejections, now)
            return ids

        return await self._run(work)

    async def list_rejections(
        self, tenant: str, surface: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        rows = await self._rows(
            f"SELECT {REJECTION_COLUMNS} FROM rejections WHERE tenant = %s AND id > %s "
            "AND (%s::text IS NULL OR surface = %s) ORDER BY id LIMIT %s",
            (tenant, seq_cursor(cursor), surface, surface, max(limit, 0) + 1),
        )
        items = [to_rejection(r) for r in rows[:limit]]
        return Page(items, str(items[-1].id) if len(rows) > limit and items else None)

    async def delete_rejections(self, tenant: str, ids: Sequence[int]) -> int:
        return await self._count(
            "DELETE FROM rejections WHERE tenant = %s AND id = ANY(%s)", (tenant, [int(i) for i in ids])
        )

    async def ingest_stats(self, tenant: str, start: int, end: int, samples: int = 3) -> IngestStats:
        async def work(conn: Conn) -> IngestStats:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            stats = IngestStats()
            cur = await conn.execute(
                "SELECT meter, surface, outcome, sum(n)::bigint FROM ingest_counts WHERE tenant = %s "
                "AND minute >= %s AND minute < %s GROUP BY 1, 2, 3",
                (tenant, start, end),
            )
            for meter, surface, outcome, n in await cur.fetchall():
                stats.counts[(meter, surface, outcome)] = n
            cur = await conn.execute(
                f"SELECT {REJECTION_COLUMNS} FROM rejections WHERE tenant = %s AND created_at >= %s "
                "AND created_at < %s ORDER BY id",
                (tenant, start, end),
            )
            stats.rejection_groups = group_rejections([to_rejection(r) for r in await cur.fetchall()], samples)
            return stats

        return await self._run(work)

    # objects
    async def put_object(
        self, tenant: str, kind: str, key: str, body: dict[str, Any], *, only_if_absent: bool = False
    ) -> bool:
        action = "NOTHING" if only_if_absent else "UPDATE SET body = excluded.body"
        changed = await self._count(
            f"INSERT INTO objects (tenant, kind, key, body) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (tenant, kind, key) DO {action}",
            (tenant, kind, key, dumps(body)),
        )
        return changed > 0

    async def get_object(self, tenant: str, kind: str, key: str) -> dict[str, Any] | None:
        rows = await self._rows(
            "SELECT body FROM objects WHERE tenant = %s AND kind = %s AND key = %s", (tenant, kind, key)
        )
        return dict(rows[0][0]) if rows else None

    async def list_objects(self, tenant: str, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        rows = await self._rows(
            "SELECT key, body FROM objects WHERE tenant = %s AND kind = %s AND starts_with(key, %s) ORDER BY key",
            (tenant, kind, prefix),
        )
        return [(k, dict(b)) for k, b in rows]

    async def delete_object(self, tenant: str, kind: str, key: str) -> bool:
        return (
            await self._count("DELETE FROM objects WHERE tenant = %s AND kind = %s AND key = %s", (tenant, kind, key))
            > 0
        )
