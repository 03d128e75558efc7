"""Re-asking with a larger output budget: `ledger retry --max-output-tokens N` rewrites each
retried body's output token limit in its endpoint's own parameter, so an answer cut at the old
limit (`truncated`) gets room to finish."""

from __future__ import annotations

from typing import Any

from ledger.build.endpoints import CHAT, COMPLETIONS, RESPONSES


def with_output_budget(body: dict[str, Any], endpoint: str, tokens: int) -> dict[str, Any]:
    """`body` with its output token limit set to `tokens`: Responses `max_output_tokens`,
    legacy completions `max_tokens`, chat `max_completion_tokens` (or the deprecated
    `max_tokens` when the body used only that, as older hosts read). Embeddings and
    moderations have no output: their bodies are returned as they are."""
    if endpoint == RESPONSES:
        return {**body, "max_output_tokens": tokens}
    if endpoint == COMPLETIONS:
        return {**body, "max_tokens": tokens}
    if endpoint == CHAT:
        if "max_tokens" in body and "max_completion_tokens" not in body:
            return {**body, "max_tokens": tokens}
        return {**body, "max_completion_tokens": tokens}
    return body
