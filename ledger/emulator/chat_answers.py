"""Chat answers: the `chat.completion` body, and the legacy `text_completion` body that shares
its usage shape."""

from __future__ import annotations

import json
from typing import Any

from ledger.emulator.echo import TokenUsage, digest_hex


def chat_completion_body(
    model: str,
    text: str,
    truncated: bool,
    usage: TokenUsage,
    key: str,
    created: int,
    n: int = 1,
    filtered: bool = False,
) -> dict[str, Any]:
    """The `chat.completion` answering a request with `text` (cut short when `truncated`; no
    content when the content filter stopped it), in `n` choices (the request's `n`; `usage`
    counts the output tokens of all of them, as the API does)."""
    choices = [
        {
            "index": index,
            "message": {
                "role": "assistant",
                "content": None if filtered else text,
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": _finish_reason(truncated, filtered),
        }
        for index in range(n)
    ]
    return {
        "id": f"chatcmpl-{digest_hex(key, 29)}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
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


def forced_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function a chat request makes the model call: the one `tool_choice` names, or the
    first of `tools` when `tool_choice` is `required`; None when the model may answer in text
    (the emulator then always does)."""
    tools = [
        tool.get("function") or {}
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((tool for tool in tools if tool.get("name") == name), {"name": name})
    if choice == "required" and tools:
        return tools[0]
    return None


def call_function(answered: dict[str, Any], function: dict[str, Any], text: str, key: str) -> None:
    """Turn every choice of `answered` into a call of `function`, each of its parameters' string
    properties given the answer's `text` (finish reason `tool_calls`, no content, as the API
    answers)."""
    properties = (function.get("parameters") or {}).get("properties") or {}
    arguments = json.dumps(
        {name: text for name, spec in properties.items() if (spec or {}).get("type") == "string"}
    )
    for choice in answered["choices"]:
        call_id = "call_" + digest_hex(f"{key}:{choice['index']}", 24)
        choice["message"]["content"] = None
        choice["message"]["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": function.get("name"), "arguments": arguments},
            }
        ]
        choice["finish_reason"] = "tool_calls"


def _finish_reason(truncated: bool, filtered: bool) -> str:
    return "content_filter" if filtered else "length" if truncated else "stop"
