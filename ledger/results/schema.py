"""One normalized result per input request: its schema, whatever the provider and the endpoint
(`docs/results.md` describes it for users).

A provider's line format and body shapes live in its folder (`adapters/openai/lines.py`,
`adapters/anthropic/lines.py`): its `ResultReader` reads each line into an `Outcome` and each
2xx body into an `Answer` (`adapters.results`, re-exported here), and `build_result` makes the
result line from those two alone.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.results import (
    CANCELLED,
    EXPIRED,
    FAILED,
    INPUT_IS_LIST,
    JSON_ASKED,
    MISSING,
    SUCCEEDED,
    UNAVAILABLE,
    Answer,
    Outcome,
    ResultReader,
    UnreadableLine,
)
from ledger.results.validate import FILTERED, INVALID, TRUNCATED, SchemaCheck, verdict

__all__ = [
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "FILTERED",
    "INPUT_IS_LIST",
    "INVALID",
    "JSON_ASKED",
    "MISSING",
    "RANK",
    "RESULT_KEYS",
    "STATUSES",
    "SUCCEEDED",
    "TRUNCATED",
    "UNAVAILABLE",
    "Answer",
    "Outcome",
    "ResultReader",
    "UnreadableLine",
    "build_result",
    "request_flags",
    "unanswered_result",
]

#: Every status a result (and a normalized `requests` row) can have. `invalid`, `truncated` and
#: `filtered` are answers not worth scoring (`ledger.results.validate`).
STATUSES: tuple[str, ...] = (
    SUCCEEDED,
    INVALID,
    TRUNCATED,
    FILTERED,
    FAILED,
    EXPIRED,
    CANCELLED,
    MISSING,
    UNAVAILABLE,
)

#: Every result line has exactly these keys, in this order.
RESULT_KEYS: tuple[str, ...] = (
    "custom_id",
    "status",
    "http_status",
    "model",
    "provider",
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
    "tool_calls",
    "choices",
    "reused_from",
)

#: When two lines answer one request, the higher rank is kept (the first seen on a tie): an
#: answer beats a flawed one, any answer a failure, and a request that ran beats one the batch
#: never reached.
RANK: dict[str, int] = {
    SUCCEEDED: 4,
    INVALID: 3,
    TRUNCATED: 3,
    FILTERED: 3,
    FAILED: 2,
    EXPIRED: 1,
    CANCELLED: 1,
}

_JSON_FORMATS = frozenset({"json_object", "json_schema"})


def request_flags(body: Any, *, json_by_default: bool) -> int:
    """The flags of one input request, read from its body (the run's options when it is silent).

    Input shards are the ledger's own request lines (OpenAI Batch input, whatever the provider:
    an adapter translates them at upload), so this reads no provider's format."""
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


def build_result(
    outcome: Outcome,
    answer: Answer,
    *,
    flags: int,
    model: str,
    provider: str,
    batch_id: str | None,
    job_id: int,
    line_number: int,
    validator: SchemaCheck | None = None,
) -> dict[str, Any]:
    """The result line for a request the provider answered (either way): `answer` is what its
    reader found in the 2xx body (`Answer()` when there is none). An answer cut short, filtered
    or (with `validator`, the request's schema) not matching its schema takes that status."""
    status, error = outcome.status, outcome.error
    if answer.error is not None:
        status, error = FAILED, answer.error
    parsed, json_error = answer.json, None
    if parsed is None and flags & JSON_ASKED and answer.text is not None:
        try:
            parsed = orjson.loads(answer.text)
        except orjson.JSONDecodeError as problem:
            json_error = str(problem)
    if status == SUCCEEDED:
        status, error = verdict(answer, parsed, json_error, validator) or (status, error)
    return {
        "custom_id": outcome.custom_id,
        "status": status,
        "http_status": outcome.http_status,
        "model": answer.model if answer.model is not None else model,
        # The job's provider: a run fanned out to several models says which answered.
        "provider": provider,
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
        "tool_calls": answer.tool_calls,
        "choices": answer.choices,
        # The request whose answer this is, when it was copied instead of sent (`--reuse`).
        "reused_from": None,
    }


def unanswered_result(
    custom_id: str,
    status: str,
    error: dict[str, str | None],
    *,
    model: str,
    provider: str,
    batch_id: str | None,
    job_id: int,
    line_number: int,
) -> dict[str, Any]:
    """The result line for a request no provider line answered (missing, or its batch failed)."""
    outcome = Outcome(custom_id, status, None, None, None, error)
    return build_result(
        outcome,
        Answer(),
        flags=0,
        model=model,
        provider=provider,
        batch_id=batch_id,
        job_id=job_id,
        line_number=line_number,
    )
