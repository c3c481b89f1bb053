"""The server's secret key and sealing with it: secrets that must be recoverable are kept encrypted (Fernet).

The key comes from ``Settings.secret_key`` (``METERD_SECRET_KEY``). When it is unset, meterd draws a random one
once and keeps it in the store's GLOBAL object ``server/secret-key``, so every process and the CLI find the same
key with no coordination (SQLite, PostgreSQL with many hosts, memory). That protects sealed values from being
read through the API or a partial dump, not from someone holding the whole database: set METERD_SECRET_KEY
(kept outside the database) in production.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meterd.core.errors import StorageError
from meterd.storage.base import GLOBAL, Store

KIND, KEY = "server", "secret-key"


class Sealer:
    """Encrypts and decrypts short texts with a key derived from the server's secret key."""

    def __init__(self, secret: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"meterd", info=b"meterd sealing v1").derive(
            secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self.key_id = hashlib.sha256(derived).hexdigest()[:12]

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def unseal(self, token: str) -> str:
        """The text sealed in ``token``; StorageError when another secret key sealed it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise StorageError(
                "a sealed secret cannot be decrypted: the server's secret key (METERD_SECRET_KEY) has changed"
            ) from None


async def server_secret(store: Store, configured: str | None) -> str:
    """The configured secret key, or the one generated once and kept in the store."""
    if configured:
        return configured
    found = await store.get_object(GLOBAL, KIND, KEY)
    if found is None:
        await store.put_object(GLOBAL, KIND, KEY, {"value": secrets.token_urlsafe(32)}, only_if_absent=True)
        found = await store.get_object(GLOBAL, KIND, KEY)
    if found is None or not isinstance(found.get("value"), str):
        raise StorageError("the server's secret key could not be stored")
    value: str = found["value"]
    return value


class SealerSource:
    """Builds the Sealer on first use (the key may live in the store) and keeps it."""

    def __init__(self, store: Store, configured: str | None) -> None:
        self._store = store
        self._configured = configured
        self._sealer: Sealer | None = None

    async def get(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer(await server_secret(self._store, self._configured))
        return self._sealer
