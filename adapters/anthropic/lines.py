"""Anthropic Message Batches result lines, and the Message they carry, read into the neutral
`Outcome` and `Answer` (`adapters.results`).

A line is `{"custom_id", "result": {"type": "succeeded", "message"} | {"type": "errored",
"error"} | {"type": "canceled"} | {"type": "expired"}}`; its message (`type: "message"`,
`content[]`, `stop_reason`, `usage`) reads into the same terms as an OpenAI body. Results carry no
HTTP status: a success is reported as the 200 it was, an error as the status its type stands for.
"""

from __future__ import annotations

from typing import Any

from adapters.results import (
    CANCELLED,
    EXPIRED,
    FAILED,
    SUCCEEDED,
    Answer,
    Outcome,
    as_count,
    as_text,
    model_of,
    read_json_object,
    tool_call,
)

#: The error of a request its batch never ran, in the words OpenAI lines use.
NOT_RUN: dict[str, tuple[str, dict[str, str | None]]] = {
    "expired": (
        EXPIRED,
        {"code": "batch_expired", "message": "The batch ended (24 h) before this request ran."},
    ),
    "canceled": (
        CANCELLED,
        {"code": "batch_cancelled", "message": "The batch was canceled before this request ran."},
    ),
}
#: Anthropic error types -> the HTTP status the Messages API answers with each.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
#: Anthropic `stop_reason` -> the finish reason the result schema uses.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}


def parse_line(raw: bytes | str) -> Outcome:
    """Read one results line; raises `UnreadableLine` when it names no request."""
    custom_id, line = read_json_object(raw)
    result = line.get("result")
    if not isinstance(result, dict):
        return Outcome(
            custom_id,
            FAILED,
            None,
            None,
            None,
            {"code": "no_result", "message": "the line has no result"},
        )
    kind = result.get("type")
    if kind == "succeeded":
        message = result.get("message")
        body = message if isinstance(message, dict) else {}
        message_id = body.get("id")
        return Outcome(
            custom_id,
            SUCCEEDED,
            200,
            message_id if isinstance(message_id, str) else None,
            body,
            None,
        )
    if isinstance(kind, str) and kind in NOT_RUN:
        status, not_run = NOT_RUN[kind]
        return Outcome(custom_id, status, None, None, None, dict(not_run))
    if kind == "errored":
        # `error` is an ErrorResponse: {"type": "error", "error": {"type", "message"}}.
        response = result.get("error")
        inner = response.get("error") if isinstance(response, dict) else None
        inner = inner if isinstance(inner, dict) else {}
        error_type = as_text(inner.get("type"))
        request_id = response.get("request_id") if isinstance(response, dict) else None
        return Outcome(
            custom_id,
            FAILED,
            ERROR_STATUS.get(error_type or ""),
            request_id if isinstance(request_id, str) else None,
            None,
            {"code": error_type or "errored", "message": as_text(inner.get("message"))},
        )
    return Outcome(
        custom_id,
        FAILED,
        None,
        None,
        None,
        {"code": "unknown_result", "message": f"an Anthropic result of type {as_text(kind)!r}"},
    )


def read_body(body: dict[str, Any], flags: int = 0) -> Answer:
    """A Message: text blocks joined; a refusal is `content_filter`, its explanation (or a plain
    sentence) the refusal, and any text produced before it stays the text. `flags` change
    nothing here (Anthropic batches run chat requests only)."""
    texts = [
        block["text"]
        for block in body.get("content") or ()
        if type(block) is dict and block.get("type") == "text" and type(block.get("text")) is str
    ]
    calls = [
        tool_call(block.get("id"), "function", block.get("name"), block.get("input"))
        for block in body.get("content") or ()
        if type(block) is dict and block.get("type") == "tool_use"
    ]
    stop_reason = body.get("stop_reason")
    refusal = None
    if stop_reason == "refusal":
        details = body.get("stop_details")
        explanation = details.get("explanation") if isinstance(details, dict) else None
        refusal = explanation if isinstance(explanation, str) else "The model refused to answer."
    finish_reason = (
        FINISH_REASONS.get(stop_reason, stop_reason) if isinstance(stop_reason, str) else None
    )
    return Answer(
        "".join(texts) if texts else None,
        refusal,
        None,
        finish_reason,
        read_usage(body.get("usage")),
        model=model_of(body),
        tool_calls=calls or None,
    )


def read_usage(usage: Any) -> dict[str, int] | None:
    """A Message's usage in the schema's terms. Anthropic counts cache reads and cache writes
    apart from `input_tokens`; the schema's `input_tokens` is every prompt token (as OpenAI's),
    `cached_tokens` the part read from the cache."""
    if not isinstance(usage, dict):
        return None
    cached = as_count(usage.get("cache_read_input_tokens"))
    written = as_count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    details = details if isinstance(details, dict) else {}
    return {
        "input_tokens": as_count(usage.get("input_tokens")) + cached + written,
        "output_tokens": as_count(usage.get("output_tokens")),
        "cached_tokens": cached,
        "reasoning_tokens": as_count(details.get("thinking_tokens")),
    }


class AnthropicLines:
    """`adapters.results.ResultReader` for Anthropic Message Batches results."""

    # The module's functions themselves, not methods calling them: a call less per line.
    parse_line = staticmethod(parse_line)
    read_body = staticmethod(read_body)


#: The reader the registry hands out for `anthropic`.
READER = AnthropicLines()
