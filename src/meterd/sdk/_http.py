"""The HTTP edge: configuration from arguments or the environment, headers, and mapping httpx's
exceptions and error answers onto the SDK's exception tree (the only place that happens)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from meterd._version import __version__
from meterd.sdk._models import field_errors
from meterd.sdk._retry import parse_retry_after
from meterd.sdk.errors import APIError, ConfigurationError, TransportError, TransportTimeout, error_class

USER_AGENT = f"meterd-python/{__version__}"


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the server is and how to authenticate: resolved once, when a client is built."""

    base_url: str
    api_key: str | None
    timeout: float

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        environ: Mapping[str, str] | None = None,
    ) -> Connection:
        """Arguments first, then ``METERD_URL`` / ``METERD_API_KEY``."""
        env = os.environ if environ is None else environ
        url = base_url or env.get("METERD_URL") or ""
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"a base URL (http:// or https://) is needed: pass base_url or set METERD_URL, got {url!r}"
            )
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        return cls(url.rstrip("/"), api_key or env.get("METERD_API_KEY") or None, timeout)

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


@contextmanager
def map_transport_errors() -> Iterator[None]:
    """Turn httpx's exceptions into :class:`TransportError` / :class:`TransportTimeout`."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransportTimeout(f"{type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def error_from_response(response: httpx.Response) -> APIError:
    """The :class:`APIError` for an error answer, built from its problem details when it has them."""
    problem = _problem(response)
    detail = problem.get("detail") or problem.get("title") or response.reason_phrase or "error"
    message = f"HTTP {response.status_code}: {detail}"
    return error_class(response.status_code)(
        message,
        status=response.status_code,
        problem=problem,
        errors=list(field_errors(problem.get("errors"))),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def json_body(response: httpx.Response) -> Any:
    """A success answer's JSON; a body that is not JSON is a transport-level failure."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransportError(f"the server answered {response.status_code} with a body that is not JSON") from exc
