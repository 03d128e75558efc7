"""Anthropic's token counting for a submit (`--count-claude-tokens`): the counter the build
calls once per Claude request, made from the provider's settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ledger.config import LedgerConfig, provider_settings

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions


def with_claude_counter(
    options: BuildOptions, config: LedgerConfig, base_url: str | None
) -> BuildOptions:
    """`options` with Anthropic's counter when they ask for it (`count_claude_tokens`)."""
    if not options.count_claude_tokens:
        return options
    counter = claude_token_counter(config, options.provider, base_url)
    return replace(options, claude_counter=counter)


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
