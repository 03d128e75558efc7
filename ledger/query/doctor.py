"""`ledger doctor`: is everything ledger needs there and working?

Checks, in order: the database opens (created and migrated by `open_ledger` as always), its schema
is at the newest migration, the tokenizer's `o200k_base` table loads offline, and for each
configured provider (or the default OpenAI one) a smallest possible chat call and, where the
provider has embeddings, a one-word embeddings call. An OpenAI-compatible batch host (Azure, Groq,
Together, xAI, or one declared in ledger.toml) gets a batch check instead: its key variable is set
(named, never printed), its base URL is known, and one list of its batches answers; a chat check
too when its `model` is set. Each check ends in one `CheckResult`; a
failure is a line of text, never an exception, and never carries an API key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.base import scrub
from ledger.chat.types import ChatRequest
from ledger.config import (
    LedgerConfig,
    ProviderSettings,
    batch_provider,
    chat_client,
    provider_settings,
)
from ledger.core.db import alembic_config, open_ledger, resolve_url, schema_revision, shown_url
from ledger.errors import LedgerError
from ledger.usage.tokens import load_encoding, tiktoken_cache_dir

#: Models the health check uses for the built-in providers when the settings name none.
HEALTH_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "mistral": "mistral-small-latest",
    "gemini": "gemini-2.5-flash-lite",
}
#: The smallest useful request: one short message, a few output tokens.
HEALTH_PROMPT = "Reply with OK."
HEALTH_MAX_OUTPUT_TOKENS = 16
#: What tiktoken's o200k_base makes of "hello world" (checked against tiktoken itself).
HELLO_WORLD_TOKENS = [24912, 2375]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """`ok <check>: <detail>` or `FAIL <check>: <reason>`, on one line."""
        detail = " ".join(self.detail.split())
        return f"{'ok' if self.ok else 'FAIL'} {self.name}: {detail}"


def run_checks(config: LedgerConfig, db: str | None = None) -> list[CheckResult]:
    """Every check, in order: database, schema, tokenizer, then each provider's."""
    results = check_database(db)
    results.append(check_tokenizer())
    for name in config.provider_names():
        results.extend(check_provider(config, name))
    return results


def check_database(target: str | None = None) -> list[CheckResult]:
    """The database opens and upgrades (`open_ledger`), and its schema is at the newest head."""
    from alembic.script import ScriptDirectory

    url = resolve_url(target)
    shown = shown_url(url)
    try:
        engine = open_ledger(url)
    except Exception as error:
        return [CheckResult("database", False, f"{shown}: {_first_line(error)}")]
    try:
        current = schema_revision(engine)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    except Exception as error:
        return [
            CheckResult("database", True, shown),
            CheckResult("schema", False, _first_line(error)),
        ]
    finally:
        engine.dispose()
    if current == head:
        schema = CheckResult("schema", True, f"at {current}, the newest migration")
    else:
        schema = CheckResult("schema", False, f"at {current}, but the newest migration is {head}")
    return [CheckResult("database", True, shown), schema]


def check_tokenizer() -> CheckResult:
    """tiktoken's o200k_base table loads with no network and encodes as tiktoken should."""
    try:
        tokens = load_encoding("o200k_base").encode("hello world")
    except Exception as error:
        return CheckResult("tokenizer", False, f"o200k_base does not load: {_first_line(error)}")
    if tokens != HELLO_WORLD_TOKENS:
        return CheckResult(
            "tokenizer", False, f"o200k_base encodes 'hello world' as {tokens}, not as tiktoken"
        )
    return CheckResult("tokenizer", True, f"o200k_base loads offline from {tiktoken_cache_dir()}")


def check_provider(config: LedgerConfig, name: str) -> list[CheckResult]:
    """A chat health check for provider `name`, and an embeddings one where it has embeddings."""
    try:
        settings = provider_settings(config, name)
    except LedgerError as error:
        return [CheckResult(f"{name} chat", False, str(error))]
    if _is_batch_host(settings):
        results = [check_batch_host(settings)]
        if settings.model:
            results.append(check_chat(settings))
        return results
    results = [check_chat(settings)]
    if settings.kind == "openai" and settings.embedding_model:
        results.append(check_embeddings(settings, settings.embedding_model))
    if name == "mistral":
        results.append(check_mistral_batch(settings))
    return results


def _is_batch_host(settings: ProviderSettings) -> bool:
    from adapters.registry import REGISTRY, ProfileFactory

    return settings.batch and isinstance(REGISTRY.get(settings.name), ProfileFactory)


def check_batch_host(settings: ProviderSettings) -> CheckResult:
    """A compatible batch host: its key variable is set, its base URL known, and one page of its
    batches lists (GET /batches): the URL, the key and the batch routes all answer."""
    name = f"{settings.name} batch"
    if settings.api_key_env and settings.api_key() is None:
        return CheckResult(name, False, f"${settings.api_key_env} is not set")
    if settings.base_url is None:
        from adapters.openai.profiles import HOSTS

        host = HOSTS.get(settings.name)
        where = f"${host.resource_env} is not set, or " if host and host.resource_env else ""
        return CheckResult(
            name, False, f"no base URL: {where}set base_url in [providers.{settings.name}]"
        )

    def call() -> str:
        provider = batch_provider(settings)
        started = time.monotonic()
        # Newest first, stopped at the first batch older than now: one GET of the first page.
        provider.find_batches(input_file_id="", metadata={}, created_after=int(time.time()) + 1)
        key = f"key from ${settings.api_key_env}" if settings.api_key_env else "no key"
        return (
            f"GET {settings.base_url}/batches answered in {time.monotonic() - started:.2f} s "
            f"({key})"
        )

    return _checked(name, settings, call)


def check_mistral_batch(settings: ProviderSettings) -> CheckResult:
    """Mistral's batch API through the mistralai SDK: the SDK is installed, and the key lists
    the account's batch jobs (one page of one job)."""

    def call() -> str:
        provider = batch_provider(settings)  # names the extra to install when the SDK is missing
        from adapters.mistral.batch import MistralBatchProvider

        if not isinstance(provider, MistralBatchProvider):
            raise LedgerError("provider mistral is not the built-in Mistral batch adapter")
        started = time.monotonic()
        total = provider.count_jobs()
        return (
            f"GET batch/jobs answered in {time.monotonic() - started:.2f} s "
            f"({total} job(s) on the account)"
        )

    return _checked(f"{settings.name} batch", settings, call)


def check_chat(settings: ProviderSettings) -> CheckResult:
    """The smallest chat call the provider takes: one short message, 16 output tokens."""
    model = settings.model or HEALTH_MODELS.get(settings.name)
    if model is None:
        return CheckResult(
            f"{settings.name} chat", False, f"no model: set model in [providers.{settings.name}]"
        )

    def call() -> str:
        client = chat_client(settings)
        started = time.monotonic()
        result = client.chat(
            ChatRequest.prompt(
                HEALTH_PROMPT, model=model, max_output_tokens=HEALTH_MAX_OUTPUT_TOKENS
            )
        )
        return (
            f"{result.model} answered POST {client.url} in {time.monotonic() - started:.2f} s "
            f"({result.usage.input_tokens} in, {result.usage.output_tokens} out, "
            f"request {result.request_id or 'without an id'})"
        )

    return _checked(f"{settings.name} chat", settings, call)


def check_embeddings(settings: ProviderSettings, model: str) -> CheckResult:
    """A one-word embeddings call (OpenAI-kind providers)."""

    def call() -> str:
        from adapters.openai.chat import OpenAIChatClient

        client = chat_client(settings)
        if not isinstance(client, OpenAIChatClient):
            raise LedgerError("embeddings are checked on OpenAI-kind providers only")
        started = time.monotonic()
        answer = client.embed(["ok"], model=model)
        return (
            f"{answer.model} gave a {len(answer.vectors[0])}-dimensional vector in "
            f"{time.monotonic() - started:.2f} s"
        )

    return _checked(f"{settings.name} embeddings", settings, call)


def _checked(name: str, settings: ProviderSettings, call: Callable[[], str]) -> CheckResult:
    """Run one provider check; any failure becomes its one-line reason, scrubbed of the key."""
    try:
        return CheckResult(name, True, call())
    except LedgerError as error:
        reason = str(error)
    except Exception as error:  # a health check reports every failure, it never raises
        reason = f"{type(error).__name__}: {_first_line(error)}"
    return CheckResult(name, False, scrub(reason, settings.api_key()))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
