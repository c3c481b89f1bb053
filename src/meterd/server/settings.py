"""Server settings: one validated object built from arguments and ``METERD_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from meterd.core.errors import InvalidInput


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to know; nothing is read at import time."""

    database_url: str = "./meterd.db"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    secret_key: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch: int = 10_000
    vault_callback_hosts: tuple[str, ...] = ()
    vault_callback_attempts: int = 5
    vault_callback_timeout_ms: int = 10_000
    vault_callback_backoff_ms: int = 500
    influx_redirect_hosts: tuple[str, ...] = ()
    amie_prefix: str = "/amie/api/v1"
    aws_region: str | None = None
    aws_lateness_hours: int = 6
    aws_batch_lateness_hours: int = 24
    log_level: str = "info"
    ui_cookie_secure: str = "auto"  # dashboard cookie: "auto" (Secure over https) or "always"
    ui_session_hours: int = 12
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``METERD_<FIELD>`` variables, then explicit ``overrides`` (None means unset)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"METERD_{f.name.upper()}")
            if raw is None or f.name == "extra":
                continue
            values[f.name] = _cast(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise InvalidInput("port must be between 1 and 65535")
        if self.workers < 1:
            raise InvalidInput("workers must be at least 1")
        if self.max_batch < 1 or self.max_body_bytes < 1024:
            raise InvalidInput("limits are too small")
        if self.ui_cookie_secure not in ("auto", "always"):
            raise InvalidInput("ui_cookie_secure must be 'auto' or 'always'")
        if not 1 <= self.ui_session_hours <= 24 * 30:
            raise InvalidInput("ui_session_hours must be between 1 and 720")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _cast(name: str, type_name: str, raw: str) -> Any:
    try:
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("tuple"):
            return _split(raw)
    except ValueError:
        raise InvalidInput(f"METERD_{name.upper()} must be a number, not {raw!r}") from None
    return raw
