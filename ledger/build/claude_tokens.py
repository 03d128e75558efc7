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
        counter = remote_token_counter(config, options.provider, "anthropic", base_url)
    if counter is None and options.count_gemini_tokens:
        counter = remote_token_counter(config, options.provider, "gemini", base_url)
    return replace(options, claude_counter=counter) if counter is not None else options


def remote_token_counter(
    config: LedgerConfig, name: str, kind: str, base_url: str | None = None
) -> Callable[[Mapping[str, Any]], int] | None:
    """The token counting of provider `name`'s own API when it is of `kind`: Anthropic's
    (`--count-claude-tokens`) or Gemini's (`--count-gemini-tokens`), at `base_url` else its
    own; None for a provider of another kind. MissingAPIKey when its key is unset."""
    settings = provider_settings(config, name)
    if settings.kind != kind:
        return None
    if kind == "anthropic":
        from adapters.anthropic.tokens import ClaudeTokenCounter as Counter
    else:
        from adapters.gemini.tokens import GeminiTokenCounter as Counter
    key = settings.require_api_key() or "no-key-needed"
    return Counter(api_key=key, base_url=base_url or settings.base_url).count
