"""One normalized result per input request: its schema, and how a provider's output or error line
becomes one, whatever the endpoint (`docs/results.md` describes it for users).

An OpenAI provider line is `{"id", "custom_id", "response": {"status_code", "request_id",
"body"} | null, "error": {"code", "message"} | null}`; the body is a Chat Completions, Responses,
Completions or Embeddings object. Bodies are recognised by their shape (`choices`, `output`,
`data`), so an OpenAI-compatible provider that leaves out `object` still normalizes.

An Anthropic Message Batches line is `{"custom_id", "result": {"type": "succeeded", "message"} |
{"type": "errored", "error"} | {"type": "canceled"} | {"type": "expired"}}`; its message (`type:
"message"`, `content[]`, `stop_reason`) reads into the same result schema.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, NamedTuple

import orjson

from ledger.errors import ProviderError

SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "expired"
CANCELLED = "cancelled"
MISSING = "missing"

#: Every status a result (and a normalized `requests` row) can have.
STATUSES: tuple[str, ...] = (SUCCEEDED, FAILED, EXPIRED, CANCELLED, MISSING)

#: Every result line has exactly these keys, in this order.
RESULT_KEYS: tuple[str, ...] = (
    "custom_id",
    "status",
    "http_status",
    "model",
    "text",
    "json",
    "json_error",
    "refusal",
    "embedding",
    "finish_reason",
    "usage",
    "error",
    "request_id",
    "batch_id",
    "job_id",
    "line_number",
)

#: When two lines answer one request, the higher rank is kept (the first seen on a tie): an
#: answer beats a failure, and a request that ran beats one the batch never reached.
RANK: dict[str, int] = {SUCCEEDED: 3, FAILED: 2, EXPIRED: 1, CANCELLED: 1}

#: Request flag: the request asked for JSON (JSON mode or a schema), so its text is parsed.
JSON_ASKED = 1
#: Request flag: the request's `input` was a list of inputs, so embeddings are a list of lists.
INPUT_IS_LIST = 2

_NOT_RUN = {"batch_expired": EXPIRED, "batch_cancelled": CANCELLED}
#: The error of an Anthropic request its batch never ran, in the words OpenAI lines use.
_ANTHROPIC_NOT_RUN: dict[str, tuple[str, dict[str, str | None]]] = {
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
_ANTHROPIC_ERROR_STATUS = {
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
_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}
_JSON_FORMATS = frozenset({"json_object", "json_schema"})
_CLIENT_TOOL_CALLS = frozenset({"function_call", "custom_tool_call"})


class UnreadableLine(ProviderError, ValueError):
    """A provider line that is not a JSON object with a string `custom_id`."""


class Outcome(NamedTuple):
    """What one provider line says happened to one request."""

    custom_id: str
    status: str
    http_status: int | None
    request_id: str | None
    #: The response body of a 2xx line; None for every failure.
    body: dict[str, Any] | None
    error: dict[str, str | None] | None


class Answer(NamedTuple):
    """What a 2xx body holds, in the result's terms."""

    text: str | None = None
    refusal: str | None = None
    embedding: list[float] | list[list[float]] | None = None
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    #: Set when a 2xx body still reports a failure (a Responses object with `status: failed`).
    error: dict[str, str | None] | None = None


def request_flags(body: Any, *, json_by_default: bool) -> int:
    """The flags of one input request, read from its body (the run's options when it is silent)."""
    if not isinstance(body, dict):
        return JSON_ASKED if json_by_default else 0
    flags = 0
    declared = _declared_format(body)
    if declared in _JSON_FORMATS or (declared is None and json_by_default):
        flags |= JSON_ASKED
    inputs = body.get("input")
    # Strings or token lists are several inputs; a list of ints is one tokenized input, and
    # a Responses `input` (a list of messages) is not an embeddings input at all.
    if isinstance(inputs, list) and (not inputs or isinstance(inputs[0], str | list)):
        flags |= INPUT_IS_LIST
    return flags


def _declared_format(body: dict[str, Any]) -> str | None:
    chat_format = body.get("response_format")
    if isinstance(chat_format, dict):
        return str(chat_format.get("type"))
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        return str(text["format"].get("type"))
    return None


def parse_provider_line(raw: bytes | str) -> Outcome:
    """Read one output or error file line; raises `UnreadableLine` when it names no request."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnreadableLine(f"not JSON: {error}") from None
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        raise UnreadableLine("not an object with a string custom_id")
    custom_id: str = line["custom_id"]
    result = line.get("result")
    if isinstance(result, dict) and "response" not in line:
        return _anthropic_outcome(custom_id, result)
    response, error = line.get("response"), line.get("error")
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
            {"code": _text(code) or "unknown_error", "message": _text(error.get("message"))},
        )
    return Outcome(
        custom_id,
        FAILED,
        None,
        None,
        None,
        {"code": "no_response", "message": "the line has neither a response nor an error"},
    )


def _anthropic_outcome(custom_id: str, result: dict[str, Any]) -> Outcome:
    """One Anthropic `{custom_id, result}` line. Results carry no HTTP status: a success is
    reported as the 200 it was, an error as the status its type stands for."""
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
    if kind in _ANTHROPIC_NOT_RUN:
        status, not_run = _ANTHROPIC_NOT_RUN[kind]
        return Outcome(custom_id, status, None, None, None, dict(not_run))
    if kind == "errored":
        # `error` is an ErrorResponse: {"type": "error", "error": {"type", "message"}}.
        response = result.get("error")
        inner = response.get("error") if isinstance(response, dict) else None
        inner = inner if isinstance(inner, dict) else {}
        error_type = _text(inner.get("type"))
        request_id = response.get("request_id") if isinstance(response, dict) else None
        return Outcome(
            custom_id,
            FAILED,
            _ANTHROPIC_ERROR_STATUS.get(error_type or ""),
            request_id if isinstance(request_id, str) else None,
            None,
            {"code": error_type or "errored", "message": _text(inner.get("message"))},
        )
    return Outcome(
        custom_id,
        FAILED,
        None,
        None,
        None,
        {"code": "unknown_result", "message": f"an Anthropic result of type {_text(kind)!r}"},
    )


def _body_error(body: Any, http_status: int | None) -> dict[str, str | None]:
    # A non-2xx body is `{"error": {"message", "type", "param", "code"}}`; `code` is often null,
    # and then the `type` (`invalid_request_error`) is the most specific word there is.
    error = body.get("error") if isinstance(body, dict) else None
    fallback = f"http_{http_status}" if http_status is not None else "http_error"
    if not isinstance(error, dict):
        return {"code": fallback, "message": _text(body) if body else None}
    return {
        "code": _text(error.get("code")) or _text(error.get("type")) or fallback,
        "message": _text(error.get("message")),
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def read_body(body: dict[str, Any], flags: int = 0) -> Answer:
    """The text, refusal, embedding, finish reason and usage a 2xx body holds."""
    if body.get("type") == "message" and "content" in body:
        return _read_message(body)
    if "choices" in body:
        return _read_choices(body)
    if "output" in body:
        return _read_response(body)
    if "data" in body:
        return _read_embeddings(body, flags)
    return Answer(usage=normalize_usage(body.get("usage")))


def _read_choices(body: dict[str, Any]) -> Answer:
    # Chat Completions (a `message`) and legacy Completions (a `text`); the first choice only.
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    first = first if isinstance(first, dict) else {}
    message = first.get("message")
    if isinstance(message, dict):
        text, refusal = message.get("content"), message.get("refusal")
    else:
        text, refusal = first.get("text"), None
    finish_reason = first.get("finish_reason")
    if finish_reason == "function_call":  # the deprecated name of the same thing
        finish_reason = "tool_calls"
    return Answer(
        text if type(text) is str else None,
        refusal if type(refusal) is str else None,
        None,
        finish_reason if type(finish_reason) is str else None,
        normalize_usage(body.get("usage")),
    )


def _read_response(body: dict[str, Any]) -> Answer:
    texts: list[str] = []
    refusals: list[str] = []
    called_tools = False
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
        elif kind in _CLIENT_TOOL_CALLS:
            called_tools = True
    status = body.get("status")
    error = None
    if status == "completed":
        finish_reason = "tool_calls" if called_tools else "stop"
    elif status == "incomplete":
        details = body.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        finish_reason = reason if isinstance(reason, str) else "incomplete"
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
    )


def _read_message(body: dict[str, Any]) -> Answer:
    # An Anthropic Message: text blocks joined; a refusal is `content_filter`, its explanation
    # (or a plain sentence) the refusal, and any text produced before it stays the text.
    texts = [
        block["text"]
        for block in body.get("content") or ()
        if type(block) is dict and block.get("type") == "text" and type(block.get("text")) is str
    ]
    stop_reason = body.get("stop_reason")
    refusal = None
    if stop_reason == "refusal":
        details = body.get("stop_details")
        explanation = details.get("explanation") if isinstance(details, dict) else None
        refusal = explanation if isinstance(explanation, str) else "The model refused to answer."
    finish_reason = (
        _ANTHROPIC_FINISH.get(stop_reason, stop_reason) if isinstance(stop_reason, str) else None
    )
    return Answer(
        "".join(texts) if texts else None,
        refusal,
        None,
        finish_reason,
        _anthropic_usage(body.get("usage")),
    )


def _anthropic_usage(usage: Any) -> dict[str, int] | None:
    # Anthropic counts cache reads and cache writes apart from `input_tokens`; the schema's
    # `input_tokens` is every prompt token (as OpenAI's), `cached_tokens` the part read from
    # the cache.
    if not isinstance(usage, dict):
        return None
    cached = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    details = details if isinstance(details, dict) else _NO_DETAILS
    return {
        "input_tokens": _count(usage.get("input_tokens")) + cached + written,
        "output_tokens": _count(usage.get("output_tokens")),
        "cached_tokens": cached,
        "reasoning_tokens": _count(details.get("thinking_tokens")),
    }


def _read_embeddings(body: dict[str, Any], flags: int) -> Answer:
    items = [item for item in body.get("data") or () if isinstance(item, dict)]
    items.sort(key=lambda item: item.get("index", 0))
    vectors = [_vector(item.get("embedding")) for item in items]
    embedding: list[float] | list[list[float]] | None = vectors
    if not flags & INPUT_IS_LIST:
        embedding = vectors[0] if vectors else None
    return Answer(embedding=embedding, usage=normalize_usage(body.get("usage")))


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
    in_details = usage.get(names[2]) or _NO_DETAILS
    out_details = usage.get(names[3]) or _NO_DETAILS
    return {
        "input_tokens": _count(usage.get(names[0])),
        "output_tokens": _count(usage.get(names[1])),
        "cached_tokens": _count(in_details.get("cached_tokens")),
        "reasoning_tokens": _count(out_details.get("reasoning_tokens")),
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


def _count(value: Any) -> int:
    return value if type(value) is int else 0


def build_result(
    outcome: Outcome,
    *,
    flags: int,
    model: str,
    batch_id: str | None,
    job_id: int,
    line_number: int,
) -> dict[str, Any]:
    """The result line for a request the provider answered (either way)."""
    body = outcome.body
    answer = read_body(body, flags) if body is not None else Answer()
    status, error = outcome.status, outcome.error
    if answer.error is not None:
        status, error = FAILED, answer.error
    parsed, json_error = None, None
    if flags & JSON_ASKED and answer.text is not None:
        try:
            parsed = orjson.loads(answer.text)
        except orjson.JSONDecodeError as problem:
            json_error = str(problem)
    answered_model = body.get("model") if body is not None else None
    return {
        "custom_id": outcome.custom_id,
        "status": status,
        "http_status": outcome.http_status,
        "model": answered_model if isinstance(answered_model, str) else model,
        "text": answer.text,
        "json": parsed,
        "json_error": json_error,
        "refusal": answer.refusal,
        "embedding": answer.embedding,
        "finish_reason": answer.finish_reason,
        "usage": answer.usage,
        "error": error,
        "request_id": outcome.request_id,
        "batch_id": batch_id,
        "job_id": job_id,
        "line_number": line_number,
    }


def unanswered_result(
    custom_id: str,
    status: str,
    error: dict[str, str | None],
    *,
    model: str,
    batch_id: str | None,
    job_id: int,
    line_number: int,
) -> dict[str, Any]:
    """The result line for a request no provider line answered (missing, or its batch failed)."""
    outcome = Outcome(custom_id, status, None, None, None, error)
    return build_result(
        outcome, flags=0, model=model, batch_id=batch_id, job_id=job_id, line_number=line_number
    )
