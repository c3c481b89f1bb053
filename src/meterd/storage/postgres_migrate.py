"""Versioned PostgreSQL migrations (``migrations/postgres/NNNN_name.sql``), applied under an advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection, sql

FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_PREFIX = "meterd.migrate:"


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL file."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: str = "postgres") -> list[Migration]:
    """Every migration of ``dialect`` shipped with meterd, by version."""
    folder = resources.files("meterd.storage").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {dialect}: {versions}")
    return found


async def migrate(conn: AsyncConnection[object], schema: str) -> list[int]:
    """Create ``schema`` if needed and apply pending migrations; the versions applied now.

    A session advisory lock keyed by the schema makes concurrent callers (several server processes starting
    at once) wait for each other: the first applies, the others find nothing left to do.
    """
    lock = LOCK_PREFIX + schema
    ident = sql.Identifier(schema)
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock,))
    try:
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations "
                "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        cur = await conn.execute(sql.SQL("SELECT version FROM {}.schema_migrations").format(ident))
        done = {row[0] for row in await cur.fetchall()}  # type: ignore[index]
        applied: list[int] = []
        for migration in load_migrations("postgres"):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(ident),
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (lock,))
