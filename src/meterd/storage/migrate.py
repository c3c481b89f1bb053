"""Versioned schema migrations: load ``NNNN_name.sql`` files of one dialect and apply the pending ones in order.

Dialect-neutral: a store hands in its own directory (``migrations/sqlite``, ``migrations/postgres``) and a
target that knows how to read the applied versions and apply one migration in one transaction. The runner
only decides *what* to apply; the target owns *how* (locking, transactions, recording the version).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Protocol

FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The migration files are inconsistent, or the database is newer than this code."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its version number, name and SQL script."""

    version: int
    name: str
    sql: str


def load_migrations(directory: Traversable) -> list[Migration]:
    """Every migration file in ``directory``, ordered by version; versions must be 1, 2, 3, ... with no gap."""
    found: list[Migration] = []
    for entry in directory.iterdir():
        match = FILE_RE.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration versions must be contiguous from 1; found {migration.version}")
    return found


def packaged(dialect: str) -> list[Migration]:
    """The migrations shipped with meterd for ``dialect`` (``sqlite`` or ``postgres``)."""
    return load_migrations(resources.files("meterd.storage").joinpath("migrations", dialect))


def pending(migrations: Iterable[Migration], applied: Iterable[int]) -> list[Migration]:
    """The migrations still to apply, in order; refuse a database that knows versions this code does not."""
    done = set(applied)
    known = {m.version for m in migrations}
    unknown = sorted(done - known)
    if unknown:
        raise MigrationError(f"the database has schema version(s) {unknown} that this meterd does not know")
    return [m for m in sorted(migrations, key=lambda m: m.version) if m.version not in done]


def split_statements(sql: str) -> list[str]:
    """Split a script on semicolons that end a line (migration files put one statement per such end)."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?\n", sql + "\n")
    return [p.strip() for p in parts if p.strip() and not _only_comments(p)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


class Target(Protocol):
    """A database a migration can be applied to, synchronously."""

    def applied_versions(self) -> set[int]: ...

    def apply(self, migration: Migration) -> None:
        """Run the migration and record its version, in one transaction.

        Several processes may migrate at once: ``apply`` must take the database's write lock and do nothing
        when the version was recorded meanwhile.
        """


class AsyncTarget(Protocol):
    """The same for asynchronous drivers."""

    def applied_versions(self) -> Awaitable[set[int]]: ...

    def apply(self, migration: Migration) -> Awaitable[None]: ...


def run(target: Target, migrations: Iterable[Migration]) -> list[int]:
    """Apply the pending migrations in order; the versions applied now."""
    todo = pending(list(migrations), target.applied_versions())
    for migration in todo:
        target.apply(migration)
    return [m.version for m in todo]


async def arun(target: AsyncTarget, migrations: Iterable[Migration]) -> list[int]:
    """:func:`run` for an asynchronous target."""
    todo = pending(list(migrations), await target.applied_versions())
    for migration in todo:
        await target.apply(migration)
    return [m.version for m in todo]
