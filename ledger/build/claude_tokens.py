"""A provider's own token counting for a submit: Anthropic's for Claude
(`--count-claude-tokens`), Google's for Gemini (`--count-gemini-tokens`). The build calls the
counter once per request of that provider's models (`REMOTE_COUNTED`); the flags stay two so
that each says which provider gets one call per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ledger.config import LedgerConfig, provider_settings

#: The model name prefixes a provider's own counter counts (the rest: the offline estimate).
REMOTE_COUNTED = ("claude", "gemini")
#: The flags asking for those counts (the offline estimate's warning names the one it lacks).
REMOTE_COUNT_FLAGS = ("--count-claude-tokens", "--count-gemini-tokens")

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions


def with_claude_counter(
    options: BuildOptions, config: LedgerConfig, base_url: str | None
) -> BuildOptions:
    """`options` with the provider's counter when they ask for it (`count_claude_tokens` for
    an Anthropic provider, `count_gemini_tokens` for a Gemini one)."""
    counter = None
    if options.count_claude_tokens:
        counter = claude_token_counter(config, options.provider, base_url)
    if counter is None and options.count_gemini_tokens:
        counter = gemini_token_counter(config, options.provider, base_url)
    return replace(options, claude_counter=counter) if counter is not None else options


def claude_token_counter(
    config: LedgerConfig, name: str, base_url: str | None = None
) -> Callable[[Mapping[str, Any]], int] | None:
    """Anthropic's token counting for provider `name` (`--count-claude-tokens`), at `base_url`
    else its own; None unless it is Anthropic's kind. MissingAPIKey when its key is unset."""
    settings = provider_settings(config, name)
    if settings.kind != "anthropic":
        return None
    from adapters.anthropic.tokens import ClaudeTokenCounter

    key = settings.require_api_key() or "no-key-needed"
    return ClaudeTokenCounter(api_key=key, base_url=base_url or settings.base_url).count


def gemini_token_counter(
    config: LedgerConfig, name: str, base_url: str | None = None
) -> Callable[[Mapping[str, Any]], int] | None:
    """Gemini's token counting for provider `name` (`--count-gemini-tokens`), at `base_url`
    else its own; None unless it is Gemini's kind. MissingAPIKey when its key is unset."""
    settings = provider_settings(config, name)
    if settings.kind != "gemini":
        return None
    from adapters.gemini.tokens import GeminiTokenCounter

    key = settings.require_api_key() or "no-key-needed"
    return GeminiTokenCounter(api_key=key, base_url=base_url or settings.base_url).count
