"""OpenAI Batch output and error lines, and the bodies they carry, read into the neutral
`Outcome` and `Answer` (`adapters.results`).

A line is `{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null,
"error": {"code", "message"} | null}`; a 2xx body is a Chat Completions, Responses, Completions or
Embeddings object. Bodies are recognised by their shape (`choices`, `output`, `data`), so an
OpenAI-compatible server that leaves out `object` still reads. The synchronous chat client reads
its answers with the same `read_body`, so both report text, finish reason and usage alike.
"""

from __future__ import annotations

import base64
import json
import sys
from array import array
from typing import Any

from adapters.results import (
    CANCELLED,
    EXPIRED,
    FAILED,
    INPUT_IS_LIST,
    SUCCEEDED,
    Answer,
    Outcome,
    as_text,
    model_of,
    read_json_object,
    tool_call,
)

#: Error codes of requests the batch never ran, and the status each stands for.
_NOT_RUN = {"batch_expired": EXPIRED, "batch_cancelled": CANCELLED}
#: Responses `incomplete_details.reason` -> the finish reason chat and Anthropic results use for
#: the same stop (the provider's own word stays in the raw body).
INCOMPLETE_REASONS = {"max_output_tokens": "length"}


def parse_line(raw: bytes | str) -> Outcome:
    """Read one output or error file line; raises `UnreadableLine` when it names no request."""
    custom_id, line = read_json_object(raw)
    response = line.get("response")
    if type(response) is dict:
        # The common line, a 2xx answer, read with the fewest calls: 50,000 a batch.
        code = response.get("status_code")
        if type(code) is int and 200 <= code < 300:
            request_id, body = response.get("request_id"), response.get("body")
            return Outcome(
                custom_id,
                SUCCEEDED,
                code,
                request_id if type(request_id) is str else None,
                body if type(body) is dict else {},
                None,
            )
    error = line.get("error")
    if isinstance(response, dict):
        code = response.get("status_code")
        http_status = code if isinstance(code, int) else None
        request_id = response.get("request_id")
        request_id = request_id if isinstance(request_id, str) else None
        body = response.get("body")
        if http_status is not None and 200 <= http_status < 300:
            return Outcome(
                custom_id,
                SUCCEEDED,
                http_status,
                request_id,
                body if isinstance(body, dict) else {},
                None,
            )
        return Outcome(
            custom_id, FAILED, http_status, request_id, None, _body_error(body, http_status)
        )
    if isinstance(error, dict):
        code = error.get("code")
        status = _NOT_RUN.get(code, FAILED) if isinstance(code, str) else FAILED
        return Outcome(
            custom_id,
            status,
            None,
            None,
            None,
            {"code": as_text(code) or "unknown_error", "message": as_text(error.get("message"))},
        )
    return Outcome(
        custom_id,
        FAILED,
        None,
        None,
        None,
        {"code": "no_response", "message": "the line has neither a response nor an error"},
    )


def _body_error(body: Any, http_status: int | None) -> dict[str, str | None]:
    # A non-2xx body is `{"error": {"message", "type", "param", "code"}}`; `code` is often null,
    # and then the `type` (`invalid_request_error`) is the most specific word there is.
    error = body.get("error") if isinstance(body, dict) else None
    fallback = f"http_{http_status}" if http_status is not None else "http_error"
    if not isinstance(error, dict):
        return {"code": fallback, "message": as_text(body) if body else None}
    return {
        "code": as_text(error.get("code")) or as_text(error.get("type")) or fallback,
        "message": as_text(error.get("message")),
    }


def read_body(body: dict[str, Any], flags: int = 0) -> Answer:
    """The text, refusal, embedding, finish reason and usage a 2xx body holds."""
    if "choices" in body:
        return _read_choices(body)
    if "output" in body:
        return _read_response(body)
    if "data" in body:
        return _read_embeddings(body, flags)
    if isinstance(body.get("results"), list):
        return _read_moderations(body, flags)
    return Answer(usage=normalize_usage(body.get("usage")), model=model_of(body))


def _read_choices(body: dict[str, Any]) -> Answer:
    # Chat Completions (a `message`) and legacy Completions (a `text`): the first choice is the
    # answer; with `n > 1` every choice is also kept, in index order.
    choices = body.get("choices")
    read = (
        [_read_choice(c) for c in choices if isinstance(c, dict)]
        if isinstance(choices, list)
        else []
    )
    read.sort(key=lambda choice: choice["index"])
    first = read[0] if read else _read_choice({})
    return Answer(
        first["text"],
        first["refusal"],
        None,
        first["finish_reason"],
        normalize_usage(body.get("usage")),
        model=model_of(body),
        tool_calls=first["tool_calls"],
        choices=read if len(read) > 1 else None,
    )


def _read_choice(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice.get("message")
    calls = None
    if isinstance(message, dict):
        text, refusal = message.get("content"), message.get("refusal")
        calls = _chat_tool_calls(message)
    else:
        text, refusal = choice.get("text"), None
    finish_reason = choice.get("finish_reason")
    if finish_reason == "function_call":  # the deprecated name of the same thing
        finish_reason = "tool_calls"
    index = choice.get("index")
    return {
        "index": index if type(index) is int else 0,
        "text": text if type(text) is str else None,
        "refusal": refusal if type(refusal) is str else None,
        "finish_reason": finish_reason if type(finish_reason) is str else None,
        "tool_calls": calls,
    }


def _chat_tool_calls(message: dict[str, Any]) -> list[dict[str, str | None]] | None:
    calls = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        kind = call.get("type")
        if kind == "custom" and isinstance(custom := call.get("custom"), dict):
            calls.append(
                tool_call(call.get("id"), "custom", custom.get("name"), custom.get("input"))
            )
        elif isinstance(function := call.get("function"), dict):
            calls.append(
                tool_call(
                    call.get("id"), "function", function.get("name"), function.get("arguments")
                )
            )
    # The deprecated single `function_call` (no id) is the same thing, one call.
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, dict):
        calls.append(tool_call(None, "function", legacy.get("name"), legacy.get("arguments")))
    return calls or None


def _read_response(body: dict[str, Any]) -> Answer:
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[dict[str, str | None]] = []
    for item in body.get("output") or ():
        kind = item.get("type") if type(item) is dict else None
        if kind == "message":
            for part in item.get("content") or ():
                if type(part) is not dict:
                    continue
                part_kind = part.get("type")
                if part_kind == "output_text" and type(text := part.get("text")) is str:
                    texts.append(text)
                elif part_kind == "refusal" and type(refusal := part.get("refusal")) is str:
                    refusals.append(refusal)
        elif kind == "function_call":
            calls.append(
                tool_call(item.get("call_id"), "function", item.get("name"), item.get("arguments"))
            )
        elif kind == "custom_tool_call":
            calls.append(
                tool_call(item.get("call_id"), "custom", item.get("name"), item.get("input"))
            )
    status = body.get("status")
    error = None
    if status == "completed":
        finish_reason = "tool_calls" if calls else "stop"
    elif status == "incomplete":
        details = body.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        finish_reason = (
            INCOMPLETE_REASONS.get(reason, reason) if isinstance(reason, str) else "incomplete"
        )
    elif status == "failed":
        finish_reason = None
        error = _body_error({"error": body.get("error")}, None)
    else:
        finish_reason = status if isinstance(status, str) else None
    return Answer(
        "".join(texts) if texts else None,  # joined like the SDK's `Response.output_text`
        "".join(refusals) if refusals else None,
        None,
        finish_reason,
        normalize_usage(body.get("usage")),
        error,
        model_of(body),
        calls or None,
    )


def _read_moderations(body: dict[str, Any], flags: int) -> Answer:
    # A moderation has no text: each input's verdict is the result's `json`, its JSON the text.
    results = [r for r in body["results"] if isinstance(r, dict)]
    verdict: Any = results if flags & INPUT_IS_LIST else (results[0] if results else None)
    return Answer(
        text=json.dumps(verdict) if verdict is not None else None,
        usage=normalize_usage(body.get("usage")),
        model=model_of(body),
        json=verdict,
    )


def _read_embeddings(body: dict[str, Any], flags: int) -> Answer:
    items = [item for item in body.get("data") or () if isinstance(item, dict)]
    items.sort(key=lambda item: item.get("index", 0))
    vectors = [_vector(item.get("embedding")) for item in items]
    embedding: list[float] | list[list[float]] | None = vectors
    if not flags & INPUT_IS_LIST:
        embedding = vectors[0] if vectors else None
    return Answer(
        embedding=embedding, usage=normalize_usage(body.get("usage")), model=model_of(body)
    )


def _vector(value: Any) -> list[float]:
    # `encoding_format: "base64"` sends little-endian float32s; the result is always floats.
    if isinstance(value, str):
        floats = array("f")
        floats.frombytes(base64.b64decode(value))
        if sys.byteorder == "big":
            floats.byteswap()
        return floats.tolist()
    return value if isinstance(value, list) else []


def normalize_usage(usage: Any) -> dict[str, int] | None:
    """`input_tokens`, `output_tokens`, `cached_tokens`, `reasoning_tokens` from either naming."""
    if not isinstance(usage, dict):
        return None
    # Responses names, else those of Chat Completions, Completions and Embeddings.
    names = _RESPONSES_USAGE if "input_tokens" in usage else _CHAT_USAGE
    get = usage.get
    in_details = get(names[2]) or _NO_DETAILS
    out_details = get(names[3]) or _NO_DETAILS
    # `as_count` written out: this runs for every answer of a batch.
    input_tokens, output_tokens = get(names[0]), get(names[1])
    cached, reasoning = in_details.get("cached_tokens"), out_details.get("reasoning_tokens")
    return {
        "input_tokens": input_tokens if type(input_tokens) is int else 0,
        "output_tokens": output_tokens if type(output_tokens) is int else 0,
        "cached_tokens": cached if type(cached) is int else 0,
        "reasoning_tokens": reasoning if type(reasoning) is int else 0,
    }


_RESPONSES_USAGE = (
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
)
_CHAT_USAGE = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
_NO_DETAILS: dict[str, Any] = {}


class OpenAILines:
    """`adapters.results.ResultReader` for OpenAI Batch lines (and any compatible server's)."""

    # The module's functions themselves, not methods calling them: a call less per line.
    parse_line = staticmethod(parse_line)
    read_body = staticmethod(read_body)


#: The reader the registry hands out for `openai` (and for providers that name none).
READER = OpenAILines()
