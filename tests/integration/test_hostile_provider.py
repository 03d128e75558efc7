"""A hostile or broken provider: every call ends in bounded time and memory, as a TransientError."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

import pytest
from support.hostile_server import hostile_server

from adapters.anthropic.batch import AnthropicBatchProvider
from adapters.base import TransientError
from adapters.http_guard import budget
from adapters.openai.batch import OpenAIBatchProvider


def _headers(handler: BaseHTTPRequestHandler, content_type: str, length: int) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _drip(handler: BaseHTTPRequestHandler) -> None:
    """A JSON answer sent one byte every 0.3 s (each byte well inside any read timeout)."""
    _headers(handler, "application/json", 10_000)
    for _ in range(10_000):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.3)


def _not_json(handler: BaseHTTPRequestHandler) -> None:
    body = b"<html>Bad gateway, try later</html>"
    _headers(handler, "text/html", len(body))
    handler.wfile.write(body)


def _huge_json(handler: BaseHTTPRequestHandler) -> None:
    """A 64 MiB JSON answer."""
    _headers(handler, "application/json", 64 << 20)
    handler.wfile.write(b'{"id": "batch_1", "padding": "')
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        handler.wfile.write(chunk)


PROVIDERS = {
    "openai": lambda url: OpenAIBatchProvider(base_url=url, api_key="sk-test"),
    "anthropic": lambda url: AnthropicBatchProvider(base_url=url.removesuffix("/v1"), api_key="k"),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_poll_answered_one_byte_at_a_time_ends_at_the_total_deadline(provider: str) -> None:
    """A slow drip cannot hold a poll past its total deadline: it ends as a TransientError."""
    with hostile_server(_drip) as url, budget(2.0, 1 << 20):
        started = time.monotonic()
        with pytest.raises(TransientError, match="timed out"):
            PROVIDERS[provider](url).get_batch("batch_1")
        assert time.monotonic() - started < 4.0


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_poll_answer_that_is_not_json_is_a_transient_error(provider: str) -> None:
    """An HTML error page in place of a batch is one line, not an AttributeError."""
    with (
        hostile_server(_not_json) as url,
        pytest.raises(TransientError, match="not a batch") as raised,
    ):
        PROVIDERS[provider](url).get_batch("batch_1")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_huge_poll_answer_is_refused_past_the_cap(provider: str) -> None:
    """A 64 MiB JSON answer is refused once it passes 16 MiB, without reading it all."""
    with hostile_server(_huge_json) as url:
        started = time.monotonic()
        with pytest.raises(TransientError, match="larger than 16 MiB"):
            PROVIDERS[provider](url).get_batch("batch_1")
        assert time.monotonic() - started < 10.0
