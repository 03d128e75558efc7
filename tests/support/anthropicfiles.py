"""Anthropic Message Batches result lines as the API writes them, for normalization tests.

Shapes follow the SDK's `MessageBatchIndividualResponse` and `Message` field for field (a test
parses every builder's output with the SDK's own models).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

_ids = itertools.count(1)


def message(
    texts: Sequence[str] = ("Hello!",),
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 20,
    output_tokens: int = 5,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    thinking_tokens: int | None = None,
    refusal_explanation: str | None = None,
    extra_blocks: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A `Message` body."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "service_tier": "batch",
    }
    if thinking_tokens is not None:
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    stop_details = None
    if stop_reason == "refusal":
        stop_details = {
            "type": "refusal",
            "category": "general_harms",
            "explanation": refusal_explanation,
        }
    return {
        "id": f"msg_{next(_ids):024d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [*extra_blocks, *({"type": "text", "text": t} for t in texts)],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": usage,
    }


def succeeded(custom_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `succeeded` result line."""
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": body or message()}}


def errored(
    custom_id: str,
    error_type: str = "invalid_request_error",
    text: str = "max_tokens: Field required",
) -> dict[str, Any]:
    """An `errored` result line (its `error` is an ErrorResponse)."""
    return {
        "custom_id": custom_id,
        "result": {
            "type": "errored",
            "error": {"type": "error", "error": {"type": error_type, "message": text}},
        },
    }


def not_run(custom_id: str, kind: str) -> dict[str, Any]:
    """A `canceled` or `expired` result line."""
    return {"custom_id": custom_id, "result": {"type": kind}}
