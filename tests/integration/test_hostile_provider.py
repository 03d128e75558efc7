"""A hostile or broken provider: every call ends in bounded time and memory, as a TransientError
(a ChatError for a synchronous chat); redirects elsewhere are refused; keys never echo back."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job
from support.hostile_server import hostile_server

from adapters.anthropic.batch import AnthropicBatchProvider
from adapters.anthropic.chat import AnthropicChatClient
from adapters.base import ProviderError, TransientError
from adapters.chat_types import ChatClient, ChatError, ChatRequest
from adapters.fake import FakeProvider
from adapters.http_guard import budget
from adapters.openai.batch import OpenAIBatchProvider
from adapters.openai.chat import OpenAIChatClient
from ledger.config import builtin_settings
from ledger.config.factory import chat_client
from ledger.core.models import Job
from ledger.reconcile.engine import ReconcileOptions, Reconciler


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


#: 64 MiB of zeros, gzipped to about 64 kB: far under the cap as sent, far over it inflated.
GZIP_BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)


def _gzip_bomb(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(GZIP_BOMB)))
    handler.end_headers()
    handler.wfile.write(GZIP_BOMB)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_gzip_bomb_in_a_poll_answer_is_refused_in_bounded_memory(provider: str) -> None:
    """A gzipped poll answer that inflates to 64 MiB is refused once the inflated bytes pass
    16 MiB: quickly, one line, and without holding the inflated answer in memory."""
    with hostile_server(_gzip_bomb) as url:
        client = PROVIDERS[provider](url)
        started = time.monotonic()
        tracemalloc.start()
        try:
            with pytest.raises(TransientError, match="larger than 16 MiB inflated") as raised:
                client.get_batch("batch_1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert time.monotonic() - started < 10.0
    assert peak < 48 << 20, f"peak {peak >> 20} MiB"
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_redirect_to_another_origin_is_refused(provider: str) -> None:
    """A poll redirected to another host:port is refused; the other server is never asked."""
    asked: list[str] = []

    def elsewhere(handler: BaseHTTPRequestHandler) -> None:
        asked.append(handler.path)
        _not_json(handler)

    with hostile_server(elsewhere) as other:

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(307)
            handler.send_header("Location", f"{other}/batches/batch_1")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with (
            hostile_server(redirect) as url,
            pytest.raises(TransientError, match=r"to another origin .* refused"),
        ):
            PROVIDERS[provider](url).get_batch("batch_1")
    assert asked == []


CHATS = {
    "openai": lambda url: OpenAIChatClient(
        api_key="sk-test", base_url=url, timeout=2.0, max_retries=0
    ),
    "anthropic": lambda url: AnthropicChatClient(
        api_key="k", base_url=url.removesuffix("/v1"), timeout=2.0, max_retries=0
    ),
    # Built as `ledger chat` builds them (ledger.config.factory): Mistral's is the OpenAI client.
    "gemini": lambda url: built_chat("gemini", url.removesuffix("/v1")),
    "mistral": lambda url: built_chat("mistral", url),
}


def built_chat(name: str, url: str) -> ChatClient:
    """The chat client of built-in provider `name` at `url`, timeout 2 s, no SDK retry."""
    settings = builtin_settings(name)
    assert settings is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(settings.api_key_env or "", "k-test")
        return chat_client(replace(settings, base_url=url, timeout=2.0), max_retries=0)


@pytest.mark.parametrize("provider", sorted(CHATS))
def test_a_chat_answered_one_byte_at_a_time_ends_at_its_total_deadline(provider: str) -> None:
    """A synchronous chat call gets the same total deadline as the batch calls: its timeout in
    all, however slowly the server drips bytes inside each read timeout."""
    with hostile_server(_drip) as url:
        started = time.monotonic()
        with pytest.raises(ChatError):
            CHATS[provider](url).chat(
                ChatRequest(messages=[{"role": "user", "content": "hi"}], model="m")
            )
        assert time.monotonic() - started < 5.0


def test_a_key_echoed_without_its_prefix_is_scrubbed() -> None:
    """A server echoing the key without `sk-` (or with only its last part) in an error: the
    error, as recorded, holds neither."""
    key = "sk-test-LEAKCANARY0123456789"

    def echo_key(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps(
            {"error": {"message": "key test-LEAKCANARY0123456789 (LEAKCANARY0123456789) bad"}}
        ).encode()
        handler.send_response(400)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with hostile_server(echo_key) as url, pytest.raises(ProviderError) as raised:
        OpenAIBatchProvider(base_url=url, api_key=key).get_batch("batch_1")
    assert "LEAKCANARY" not in str(raised.value)
    assert "[redacted]" in str(raised.value)


def test_a_gzip_bomb_answering_a_poll_leaves_the_reason_on_the_job(
    engine: Engine, tmp_path: Path
) -> None:
    """A job whose poll is answered by a gzip bomb keeps its state, with the refusal in
    last_error for `ledger status`."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    fake = FakeProvider()
    options = ReconcileOptions(poll_min=0.0, poll_max=0.0, jitter=0.0)
    Reconciler(engine, options, provider_for=lambda _n, _u: fake).run_pass()
    with hostile_server(_gzip_bomb) as url:
        hostile = OpenAIBatchProvider(base_url=url, api_key="sk-test")
        Reconciler(engine, options, provider_for=lambda _n, _u: hostile).run_pass()
    with engine.connect() as connection:
        state, last_error = connection.execute(
            select(Job.state, Job.last_error).where(Job.id == job_id)
        ).one()
    assert state in ("submitted", "in_progress")
    assert "larger than 16 MiB inflated refused" in str(last_error)
