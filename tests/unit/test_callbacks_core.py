"""Callback URL allowlist and retry policy."""

from __future__ import annotations

import pytest

from meterd.core.callbacks import CallbackRefused, Retry, check_callback_url, retryable

ALLOWED = ("hooks.example.net", "127.0.0.1:8123", "[::1]")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.net/x",
        "https://HOOKS.example.net:8443/x?y=1",
        "http://127.0.0.1:8123/cb",
        "http://[::1]:1/",
    ],
)
def test_allowed(url: str) -> None:
    assert check_callback_url(url, ALLOWED) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8124/cb",
        "http://127.0.0.1/cb",
        "http://evil.example/cb",
        "http://hooks.example.net.evil.example/",
        "http://x@hooks.example.net/",
        "file:///etc/passwd",
        "gopher://hooks.example.net/",
        "http://hooks.example.net:notaport/",
        "http:///nohost",
        "x" * 3000,
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(CallbackRefused) as caught:
        check_callback_url(url, ALLOWED)
    assert caught.value.status == 422


def test_empty_allowlist_refuses_everything() -> None:
    with pytest.raises(CallbackRefused, match="METERD_VAULT_CALLBACK_HOSTS"):
        check_callback_url("http://127.0.0.1/", ())


def test_retry_policy() -> None:
    policy = Retry(attempts=5, backoff_s=0.5, max_backoff_s=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [retryable(s) for s in (200, 302, 400, 404, 408, 429, 500, 503)] == [
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
