"""Deterministic answers to batch (and synchronous) requests, in the real response-body shapes.

`answer` picks the body for the endpoint: `chat_answers` (chat completions, and the legacy
completions), `responses_answers`, `embedding_answers`, `moderation_answers`. The text they carry
and the tokens it counts come from `echo`. `failure` is the non-2xx answer a request may get
instead. Anthropic's `Message` answers are `message_answers`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.emulator.chat_answers import (
    call_function,
    chat_completion_body,
    forced_function,
    text_completion_body,
)
from ledger.emulator.echo import (
    TokenUsage,
    count_tokens,
    cut_to_tokens,
    filtered,
    input_tokens,
    json_format,
    output_budget,
    reply_text,
    request_inputs,
)
from ledger.emulator.embedding_answers import embeddings_body
from ledger.emulator.model_rules import dated_model
from ledger.emulator.moderation_answers import moderations_body
from ledger.emulator.responses_answers import response_body

#: Endpoints the emulator answers.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
)


@dataclass(frozen=True)
class Answer:
    """One request's HTTP answer inside a batch."""

    status_code: int
    body: dict[str, Any]
    usage: TokenUsage


def answer(
    endpoint: str,
    body: dict[str, Any],
    *,
    key: str,
    created: int,
    dims: int,
    stray: bool = False,
) -> Answer:
    """The 200 answer to one request; `key` makes the body's ids, `dims` sizes embeddings. With
    `stray`, a request asking for JSON gets `{"off_schema": true}`, whatever its schema."""
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        usage = TokenUsage(input_tokens=sum(count_tokens(text) for text in request_inputs(body)))
        if endpoint == "/v1/embeddings":
            return Answer(200, embeddings_body(body, dims, usage), usage)
        return Answer(200, moderations_body(body, key), usage)
    model = dated_model(str(body.get("model")))
    text = reply_text(endpoint, body)
    if stray and json_format(endpoint, body) is not None:
        text = json.dumps({"off_schema": True})
    limit, reasoning = output_budget(endpoint, body)
    visible, truncated = cut_to_tokens(text, None if limit is None else max(0, limit - reasoning))
    # Chat's `n`: that many choices, each billed (usage counts the output of all of them).
    choices = body.get("n") if endpoint == "/v1/chat/completions" else None
    n = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1 else 1
    stopped = filtered(endpoint, body)
    if stopped:  # the filter stops the answer before any of it is shown
        visible, truncated = "", False
    usage = TokenUsage(
        input_tokens=input_tokens(endpoint, body),
        output_tokens=(count_tokens(visible) + reasoning) * n,
        reasoning_tokens=reasoning * n,
    )
    if endpoint == "/v1/responses":
        answered = response_body(body, model, visible, truncated, usage, key, created, stopped)
    elif endpoint == "/v1/completions":
        answered = text_completion_body(model, visible, truncated, usage, key, created, stopped)
    else:
        answered = chat_completion_body(
            model, visible, truncated, usage, key, created, n, filtered=stopped
        )
        if (function := forced_function(body)) is not None:
            call_function(answered, function, visible, key)
    return Answer(200, answered, usage)


def failure(endpoint: str, body: dict[str, Any], *, selector: int) -> Answer:
    """A non-2xx answer (400, 429 or 500, picked by `selector`) with the API's error body."""
    kind = selector % 3
    if kind == 0:
        param = "input" if endpoint in ("/v1/responses", "/v1/embeddings") else "messages"
        error = {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            f"messages resulted in {128_000 + input_tokens(endpoint, body)} tokens. "
            "Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": param,
            "code": "context_length_exceeded",
        }
        return Answer(400, {"error": error}, TokenUsage())
    if kind == 1:
        error = {
            "message": "You've exceeded the 1000 request/min rate limit, please slow down and "
            "try again.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        return Answer(429, {"error": error}, TokenUsage())
    error = {
        "message": "The server had an error processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if you "
        "keep seeing this error.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    return Answer(500, {"error": error}, TokenUsage())
