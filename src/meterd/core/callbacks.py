"""Callback URLs: a server-side request made on a client's behalf goes only to hosts the operator allowed.

An allowlist entry is a host name or IP (``hooks.example.net``, ``127.0.0.1``, ``[::1]``), optionally with a
port (``127.0.0.1:8123``: only that port). An empty allowlist allows nothing. Only ``http``/``https`` URLs
without credentials are called; host names compare case-insensitively, exactly (no wildcards).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from meterd.core.errors import FieldError, InvalidInput

MAX_URL = 2048


class CallbackRefused(InvalidInput):
    """The callback URL is malformed or its host is not on the operator's allowlist."""

    status, code = 422, "callback_refused"


@dataclass(frozen=True, slots=True)
class Retry:
    """How a callback is delivered: per-attempt timeout, attempts, and exponential backoff with a cap."""

    attempts: int = 5
    timeout_s: float = 10.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


def retryable(status: int) -> bool:
    """Whether a callback answer is worth another attempt (timeouts, throttling, server trouble)."""
    return status in (408, 425, 429) or status >= 500


def check_callback_url(url: str, allowed: tuple[str, ...]) -> str:
    """The URL if it may be called; :class:`CallbackRefused` (422) saying why otherwise."""
    if not allowed:
        raise CallbackRefused(
            "callbacks are disabled: the operator allows no callback hosts (METERD_VAULT_CALLBACK_HOSTS)",
            [FieldError("callback_url", "no callback host is allowed")],
        )
    if len(url) > MAX_URL:
        raise CallbackRefused("the callback URL is too long", [FieldError("callback_url", f"over {MAX_URL} chars")])
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("the callback URL is malformed", [FieldError("callback_url", "malformed")]) from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackRefused("the callback URL must be http(s)://host/...", [FieldError("callback_url", "not http")])
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("the callback URL must not carry credentials", [FieldError("callback_url", "userinfo")])
    effective = port if port is not None else (443 if parts.scheme == "https" else 80)
    if not any(_matches(entry, host, effective) for entry in allowed):
        raise CallbackRefused(
            f"the callback host {host!r} is not on the allowlist",
            [FieldError("callback_url", "host not allowed")],
        )
    return url


def _matches(entry: str, host: str, port: int) -> bool:
    entry = entry.strip().lower()
    if not entry:
        return False
    try:
        parsed = urlsplit(f"//{entry}")
        entry_host, entry_port = (parsed.hostname or "").lower(), parsed.port
    except ValueError:
        return False
    return entry_host == host and (entry_port is None or entry_port == port)
