"""Responses answers: the `response` object, with its reasoning item when reasoning tokens were
spent, and `incomplete` when the output budget cut the text."""

from __future__ import annotations

from typing import Any

from ledger.emulator.echo import TokenUsage, digest_hex


def response_body(
    body: dict[str, Any],
    model: str,
    text: str,
    truncated: bool,
    usage: TokenUsage,
    key: str,
    created: int,
    filtered: bool = False,
) -> dict[str, Any]:
    """The `response` answering a request with `text` (`incomplete` when `truncated`, or when
    the content filter stopped it)."""
    reason = "content_filter" if filtered else "max_output_tokens" if truncated else None
    status = "incomplete" if reason else "completed"
    message = {
        "type": "message",
        "id": f"msg_{digest_hex(key + 'msg', 48)}",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    given = body.get("reasoning")
    reasoning: dict[str, Any] = given if isinstance(given, dict) else {}
    output: list[dict[str, Any]] = []
    if usage.reasoning_tokens:
        output.append(
            {"type": "reasoning", "id": f"rs_{digest_hex(key + 'rs', 48)}", "summary": []}
        )
    output.append(message)
    text_config = body.get("text") if isinstance(body.get("text"), dict) else None
    return {
        "id": f"resp_{digest_hex(key, 48)}",
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": text_config or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens,
        },
        "user": None,
        "metadata": {},
    }
