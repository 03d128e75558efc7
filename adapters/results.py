"""The neutral words every provider's result lines are read into.

A provider's output and error files hold one line per request in that provider's own format
(OpenAI's `{custom_id, response, error}`, Anthropic's `{custom_id, result: {type}}`). Its
`ResultReader`, in the provider's folder, turns each line into an `Outcome` (what happened to the
request) and each 2xx body into an `Answer` (text, refusal, embedding, finish reason, usage).
`ledger.results` builds the normalized result from these two alone, so it never sees a provider's
format; `ledger.results.schema` re-exports what ledger needs.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import orjson

from ledger.errors import ProviderError

#: The request was answered with a 2xx body.
SUCCEEDED = "succeeded"
#: The request was answered with an error (or its batch failed as a whole).
FAILED = "failed"
#: The batch's window ended before the request ran.
EXPIRED = "expired"
#: The batch was cancelled before the request ran.
CANCELLED = "cancelled"
#: No line answered the request (never produced by a reader; the normalizer's verdict).
MISSING = "missing"
#: The batch ran but its result files were gone (expired, archived) when fetched, past the
#: grace: the outcome cannot be known (the normalizer's verdict; `ledger retry` resends it).
UNAVAILABLE = "unavailable"

#: Request flag: the request asked for JSON (JSON mode or a schema), so its text is parsed.
JSON_ASKED = 1
#: Request flag: the request's `input` was a list of inputs, so embeddings are a list of lists.
INPUT_IS_LIST = 2


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
    #: `input_tokens` (every prompt token), `output_tokens`, `cached_tokens`, `reasoning_tokens`.
    usage: dict[str, int] | None = None
    #: Set when a 2xx body still reports a failure (a Responses object with `status: failed`).
    error: dict[str, str | None] | None = None
    #: The model that answered, as the body names it (None: the request's model stands).
    model: str | None = None
    #: The tool calls the answer asked for, each `{"id", "type", "name", "arguments"}` with the
    #: arguments as the JSON text the model wrote (None: it called none).
    tool_calls: list[dict[str, str | None]] | None = None
    #: Every choice, when the body holds more than one (`n > 1`): each `{"index", "text",
    #: "refusal", "finish_reason", "tool_calls"}`; the first is also the answer's own text.
    choices: list[dict[str, Any]] | None = None


class ResultReader(Protocol):
    """How one provider's output and error lines are read."""

    def parse_line(self, raw: bytes | str) -> Outcome:
        """One output or error file line; raises `UnreadableLine` when it names no request."""
        ...

    def read_body(self, body: dict[str, Any], flags: int = 0) -> Answer:
        """What a 2xx body holds; `flags` are the request's (`JSON_ASKED`, `INPUT_IS_LIST`)."""
        ...


def read_json_object(raw: bytes | str) -> tuple[str, dict[str, Any]]:
    """A line's `custom_id` and the object itself; `UnreadableLine` unless it is a JSON object
    with a string `custom_id` (the one thing every provider's line has)."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnreadableLine(f"not JSON: {error}") from None
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        raise UnreadableLine("not an object with a string custom_id")
    return line["custom_id"], line


def as_text(value: Any) -> str | None:
    """A field as text: None and strings as they are, objects and lists as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def tool_call(call_id: Any, kind: str, name: Any, arguments: Any) -> dict[str, str | None]:
    """One tool call in the result's terms; arguments that came as an object become JSON text."""
    return {
        "id": call_id if isinstance(call_id, str) else None,
        "type": kind,
        "name": name if isinstance(name, str) else None,
        "arguments": as_text(arguments),
    }


def model_of(body: dict[str, Any]) -> str | None:
    """The `model` a body names, if it is a string."""
    model = body.get("model")
    return model if isinstance(model, str) else None


def as_count(value: Any) -> int:
    """A token count as an int; anything else (missing, null, a float, a bool) counts 0."""
    return value if type(value) is int else 0
