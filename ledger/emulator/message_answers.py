"""Anthropic's answers in a Message Batch: the deterministic `Message` a request gets (as
`answer_text` echoes its last user message), or the `invalid_request_error` it gets instead when
its params are ones the Messages API would refuse."""

from __future__ import annotations

import json
from typing import Any

from ledger.emulator.echo import (
    CONTENT_FILTER_MARKER,
    answer_text,
    count_tokens,
    cut_to_tokens,
    digest_hex,
    schema_instance,
)
from ledger.emulator.model_rules import anthropic_input_tokens

# The Messages API params the emulator accepts; others answer an `errored` result.
_PARAMS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "output_config",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "stream",
    }
)


def params_problem(params: dict[str, Any]) -> tuple[str, str] | None:
    """The `invalid_request_error` the Messages API would answer these params with, if any."""
    for key in params:
        if key not in _PARAMS:
            return "invalid_request_error", f"{key}: Extra inputs are not permitted"
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "invalid_request_error", "model: Field required"
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        return "invalid_request_error", "max_tokens: Field required"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid_request_error", "messages: Field required"
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            return (
                "invalid_request_error",
                f"messages.{index}.role: Input should be 'user' or 'assistant'",
            )
        if not isinstance(item.get("content"), str | list):
            return "invalid_request_error", f"messages.{index}.content: Field required"
    if params.get("stream"):
        return "invalid_request_error", "stream: streaming is not supported in Message Batches"
    temperature = params.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        return "invalid_request_error", "temperature: Input should be less than or equal to 1"
    return None


def message(params: dict[str, Any], key: str) -> dict[str, Any]:
    """The deterministic `Message` answering one request's params (as `answer_text` echoes)."""
    text = answer_text(_prompt(params))
    output_format = (params.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        text = json.dumps(schema_instance(output_format.get("schema"), text=text))
    stop_reason, stop_sequence = "end_turn", None
    for sequence in params.get("stop_sequences") or ():
        if isinstance(sequence, str) and sequence and sequence in text:
            text, stop_reason, stop_sequence = (
                text[: text.index(sequence)],
                "stop_sequence",
                sequence,
            )
            break
    visible, truncated = cut_to_tokens(text, params["max_tokens"])
    if truncated:
        stop_reason, stop_sequence = "max_tokens", None
    stop_details = None
    if CONTENT_FILTER_MARKER in _prompt(params):  # the classifiers stop it before any text
        visible, stop_reason, stop_sequence = "", "refusal", None
        stop_details = {"type": "refusal", "category": None, "explanation": None}
    return {
        "id": f"msg_01{digest_hex(key + ':msg', 22)}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": [{"type": "text", "text": visible, "citations": None}],
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": stop_details,
        "container": None,
        "usage": {
            "input_tokens": anthropic_input_tokens(params),
            "output_tokens": count_tokens(visible),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "server_tool_use": None,
            "service_tier": "batch",
        },
    }


def _prompt(params: dict[str, Any]) -> str:
    users = [m for m in params["messages"] if m.get("role") == "user"] or params["messages"]
    return _text(users[-1].get("content"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(
        block["text"]
        for block in content
        if isinstance(block, dict) and isinstance(block.get("text"), str)
    )
