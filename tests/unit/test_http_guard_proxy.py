"""The batch adapters' guarded HTTP client keeps the environment's proxies: every transport,
direct or through a proxy, carries the total deadline and the size cap."""

from __future__ import annotations

import pytest

from adapters.http_guard import GuardedTransport, guarded_client


def test_proxies_from_the_environment_are_kept_and_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY set: https requests go through a proxy transport, itself guarded."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = guarded_client(5.0)
    try:
        transport = client._transport_for_url(client.build_request("GET", "https://x.test/").url)
        assert isinstance(transport, GuardedTransport)
        assert transport is not client._transport  # the proxy's, not the direct one
        assert all(isinstance(t, GuardedTransport) for t in client._mounts.values() if t)
    finally:
        client.close()


def test_without_a_proxy_the_direct_transport_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy in the environment: the one transport is the guarded direct one."""
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    client = guarded_client(5.0)
    try:
        transport = client._transport_for_url(client.build_request("GET", "https://x.test/").url)
        assert isinstance(transport, GuardedTransport) and transport is client._transport
    finally:
        client.close()
