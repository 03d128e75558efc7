"""Claude input tokens, counted by Anthropic: `client.messages.count_tokens`
(`POST /v1/messages/count_tokens`, free, rate-limited like Messages). Anthropic's tokenizer is not
public, so this is the only exact count; without it ledger approximates with o200k_base and says
so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import anthropic
import httpx2

from adapters.anthropic.translate import translate_body
from ledger.errors import TransientError

#: The Messages params the counting endpoint takes (the rest, max_tokens and sampling, it
#: refuses as extra inputs).
COUNTED_PARAMS = (
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
)


class ClaudeTokenCounter:
    """Counts a chat-completions body's input tokens as Anthropic counts its Messages params."""

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 30.0) -> None:
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            max_retries=2,
        )

    def count(self, body: Mapping[str, Any]) -> int:
        """The input tokens of one chat body; TransientError when Anthropic cannot be asked."""
        params = translate_body(dict(body))
        wanted = {k: v for k, v in params.items() if k in COUNTED_PARAMS}
        try:
            counted = cast(Any, self._client.messages).count_tokens(**wanted)
        except anthropic.AnthropicError as error:
            raise TransientError(f"Anthropic's token counting failed: {error}") from None
        return int(counted.input_tokens)

    def close(self) -> None:
        """Release the HTTP client."""
        self._client.close()
