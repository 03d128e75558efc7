"""The one factory that turns a provider's settings into a batch adapter or a synchronous chat
client, for the CLI and the Python API alike (the settings themselves: ledger.config)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledger.config import (
    CONFIG_FILE,
    DEFAULT_PROVIDER,
    LedgerConfig,
    ProviderSettings,
    builtin_settings,
)
from ledger.errors import InputError

if TYPE_CHECKING:
    from adapters.base import BatchProvider
    from adapters.chat_types import ChatClient


def provider_settings(config: LedgerConfig, name: str | None = None) -> ProviderSettings:
    """The settings of provider `name` (default: `[defaults] provider`, else openai): from the
    file, else the built-in ones of `openai` and `anthropic`; InputError for any other name."""
    chosen = name or config.defaults.get("provider") or DEFAULT_PROVIDER
    settings = config.providers.get(chosen) or builtin_settings(chosen)
    if settings is None:
        where = config.path or CONFIG_FILE
        raise InputError(f"unknown provider {chosen!r}: add a [providers.{chosen}] to {where}")
    return settings


def batch_provider(settings: ProviderSettings, base_url: str | None = None) -> BatchProvider:
    """The batch adapter for a provider (`adapters.registry.get_provider`), at `base_url` or the
    provider's, with the key from its `api_key_env`; InputError when the provider has
    batch = false or no adapter is registered, FatalError when its key variable is unset."""
    from adapters.registry import get_provider

    check_batch_provider(settings)
    return get_provider(settings.name, base_url or settings.base_url, **_batch_args(settings))


def batch_api_key(settings: ProviderSettings) -> str | None:
    """The key a batch adapter gets: from the provider's `api_key_env`. An unset variable is
    MissingAPIKey, a FatalError: it pauses the reconciler as a refused key does."""
    return settings.require_api_key()


def _batch_args(settings: ProviderSettings) -> dict[str, Any]:
    # The key (unset: MissingAPIKey, a FatalError pausing the reconciler), the host's window.
    return {"api_key": batch_api_key(settings), "completion_window": settings.completion_window}


def check_batch_provider(settings: ProviderSettings) -> None:
    """Refuse, before anything is built, a provider batch jobs cannot go to."""
    from adapters.registry import provider_names

    known = provider_names()
    if settings.name not in known:
        raise InputError(
            f"provider {settings.name!r} has no batch adapter (known: {', '.join(known)})"
        )
    if not settings.batch:
        raise InputError(f"provider {settings.name!r} is configured with batch = false")


def submit_provider(config: LedgerConfig, name: str | None = None) -> str:
    """The provider a new run's jobs go to: `name`, else `[defaults] provider`, else openai;
    InputError unless it has a registered batch adapter and is not configured batch = false."""
    chosen = name or config.defaults.get("provider") or DEFAULT_PROVIDER
    settings = config.providers.get(chosen) or builtin_settings(chosen)
    check_batch_provider(settings or ProviderSettings(name=chosen, kind="openai", batch=True))
    return chosen


def batch_provider_for(config: LedgerConfig) -> Callable[[str, str | None], BatchProvider]:
    """What the reconciler builds adapters with: a job's provider, at the job's base URL, else
    `--base-url`, else the provider's configured one, with the key from its `api_key_env`. A
    provider with no settings at all (one an entry point added) gets no key: its factory finds
    its own."""
    from adapters.registry import get_provider

    def build(name: str, base_url: str | None) -> BatchProvider:
        settings = config.providers.get(name) or builtin_settings(name)
        if settings is None:
            return get_provider(name, base_url)
        return get_provider(name, base_url or settings.base_url, **_batch_args(settings))

    return build


def chat_client(
    settings: ProviderSettings,
    *,
    max_retries: int | None = None,
    http_client: Any = None,
) -> ChatClient:
    """A synchronous chat client for a provider (key from its `api_key_env`); MissingAPIKey when
    that variable is unset. `max_retries` None keeps the SDK's default. Every request is first
    checked against the provider's `max_context_tokens` (`ContextGuard`, counted with tiktoken)."""
    from ledger.chat.types import ContextGuard

    key = settings.require_api_key()
    # A server that needs no key (Ollama) still gets one: both SDKs insist on a string.
    api_key = key or "no-key-needed"
    common: dict[str, Any] = {
        "api_key": api_key,
        "base_url": settings.base_url,
        "model": settings.model,
        "provider": settings.name,
        "context_check": ContextGuard(dict(settings.max_context_tokens)).check,
        "timeout": settings.timeout,
        "max_retries": max_retries,
        "http_client": http_client,
    }
    if settings.kind == "anthropic":
        from adapters.anthropic.chat import AnthropicChatClient

        return AnthropicChatClient(**common)
    if settings.kind == "gemini":
        from adapters.gemini.chat import GeminiChatClient

        return GeminiChatClient(**common)
    from adapters.openai.chat import OpenAIChatClient

    return OpenAIChatClient(endpoint=settings.chat_endpoint, **common)
