"""Dashboard sessions: sign in once with an API key, then carry an opaque session token instead of the key.

The key's secret is checked at sign-in and then forgotten: the session (a store object in the GLOBAL tenant,
keyed by the SHA-256 of its token) names the key by id, so revoking the key ends every session it opened, and
neither the store nor the cookie ever holds the secret. Sessions work across server processes and restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from meterd.core.errors import Unauthenticated
from meterd.core.models import ApiKey, Scope
from meterd.service.meterd import Meterd
from meterd.storage.base import GLOBAL

KIND = "ui_session"
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Session:
    """A live dashboard session: whose key it stands for and the CSRF token its forms must carry."""

    key: ApiKey
    csrf: str
    expires_at: int

    @property
    def tenant(self) -> str:
        return self.key.tenant

    def allows(self, scope: Scope) -> bool:
        return self.key.allows(scope)

    @property
    def allows_ingest(self) -> bool:
        """May void and amend events (like the API's ingest scope)."""
        return self.key.allows(Scope.INGEST)

    @property
    def allows_admin(self) -> bool:
        """May clear rejected records (like the API's admin scope)."""
        return self.key.allows(Scope.ADMIN)


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing token never matches."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


class Sessions:
    """Opens, resolves and ends dashboard sessions through the service's store."""

    def __init__(self, meterd: Meterd, lifetime_hours: int = 12) -> None:
        self.meterd = meterd
        self.lifetime_ms = lifetime_hours * HOUR_MS

    async def open(self, secret: str) -> tuple[str, Session]:
        """Check the key (it needs the read scope) and open a session; returns (token, session)."""
        key = await self.meterd.authenticate(secret, Scope.READ)
        now = self.meterd.clock()
        await self._prune(now)
        token = secrets.token_urlsafe(32)
        session = Session(key, secrets.token_urlsafe(32), now + self.lifetime_ms)
        body = {"key_id": key.id, "tenant": key.tenant, "csrf": session.csrf, "created_at": now,
                "expires_at": session.expires_at}
        await self.meterd.store.put_object(GLOBAL, KIND, _token_id(token), body)
        return token, session

    async def resolve(self, token: str | None) -> Session:
        """The live session of ``token``; Unauthenticated when absent, expired, or its key is revoked."""
        if not token:
            raise Unauthenticated("sign in to use the dashboard")
        body = await self.meterd.store.get_object(GLOBAL, KIND, _token_id(token))
        if body is None:
            raise Unauthenticated("the session has ended; sign in again")
        if int(body.get("expires_at", 0)) <= self.meterd.clock():
            await self.meterd.store.delete_object(GLOBAL, KIND, _token_id(token))
            raise Unauthenticated("the session has expired; sign in again")
        key = await self.meterd.store.get_key(str(body.get("key_id", "")))
        if key is None or key.revoked_at is not None or key.tenant != body.get("tenant"):
            await self.meterd.store.delete_object(GLOBAL, KIND, _token_id(token))
            raise Unauthenticated("the API key of this session was revoked; sign in again")
        return Session(key, str(body["csrf"]), int(body["expires_at"]))

    async def end(self, token: str | None) -> None:
        """Forget the session (signing out); unknown tokens are ignored."""
        if token:
            await self.meterd.store.delete_object(GLOBAL, KIND, _token_id(token))

    async def _prune(self, now: int) -> None:
        """Drop expired sessions (done at each sign-in, so the list stays small)."""
        for token_id, body in await self.meterd.store.list_objects(GLOBAL, KIND):
            if int(body.get("expires_at", 0)) <= now:
                await self.meterd.store.delete_object(GLOBAL, KIND, token_id)
