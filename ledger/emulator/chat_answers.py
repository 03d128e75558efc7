"""Chat answers: the `chat.completion` body, and the legacy `text_completion` body that shares
its usage shape."""

from __future__ import annotations

from typing import Any

from ledger.emulator.echo import TokenUsage, digest_hex


def chat_completion_body(
    model: str,
    text: str,
    truncated: bool,
    usage: TokenUsage,
    key: str,
    created: int,
    filtered: bool = False,
) -> dict[str, Any]:
    """The `chat.completion` answering a request with `text` (cut short when `truncated`; no
    content when the content filter stopped it)."""
    choice = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None if filtered else text,
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": _finish_reason(truncated, filtered),
    }
    return {
        "id": f"chatcmpl-{digest_hex(key, 29)}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": chat_usage(usage),
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }


def text_completion_body(
    model: str,
    text: str,
    truncated: bool,
    usage: TokenUsage,
    key: str,
    created: int,
    filtered: bool = False,
) -> dict[str, Any]:
    """The legacy `text_completion` answering a request with `text`."""
    choice = {
        "text": text,
        "index": 0,
        "logprobs": None,
        "finish_reason": _finish_reason(truncated, filtered),
    }
    return {
        "id": f"cmpl-{digest_hex(key, 29)}",
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "system_fingerprint": "fp_emulator",
        "usage": chat_usage(usage),
    }


def chat_usage(usage: TokenUsage) -> dict[str, Any]:
    """`usage` in the chat (and legacy completions) vocabulary."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": 0,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(truncated: bool, filtered: bool) -> str:
    return "content_filter" if filtered else "length" if truncated else "stop"
