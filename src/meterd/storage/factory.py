"""Choose a Store from a database URL: a file path or ``sqlite:///path``, ``postgresql://...``, or ``memory://``."""

from __future__ import annotations

from meterd.core.errors import InvalidInput
from meterd.storage.base import Store


def create_store(url: str) -> Store:
    """The Store for ``url``; drivers are imported only when their scheme is used."""
    if url.startswith(("postgresql://", "postgres://")):
        from meterd.storage.postgres import PostgresStore

        return PostgresStore(url)
    if url == "memory://":
        from meterd.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite:///")  # as SQLAlchemy: sqlite:///rel.db, sqlite:////abs.db
    if "://" in url:
        raise InvalidInput(f"unsupported database URL {url!r}")
    from meterd.storage.sqlite import SQLiteStore

    return SQLiteStore(url)
