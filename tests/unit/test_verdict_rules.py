"""Which answers are worth scoring: every provider's cut-short and filtered stops get a status of
their own, a schema's violations are `invalid` with a bounded path and message, and a retry's
`--max-output-tokens` lands in each endpoint's own parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.anthropic import lines as anthropic_lines
from adapters.gemini import lines as gemini_lines
from adapters.openai import lines as openai_lines
from ledger.build.body_options import read_json_schema
from ledger.errors import InputError
from ledger.results.reask import with_output_budget
from ledger.results.schema import JSON_ASKED, Outcome, build_result
from ledger.results.validate import ERROR_CHARS, SchemaBook, declared_schema

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "maximum": 5}},
    "required": ["answer", "score"],
}


def result(read: Any, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
    """The result line normalize builds for one 2xx `body` read by `read`."""
    book = SchemaBook()
    book.add(
        {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
        if schema is not None
        else {}
    )
    outcome = Outcome("r1", "succeeded", 200, None, body, None)
    return build_result(
        outcome,
        read(body, JSON_ASKED if schema is not None else 0),
        flags=JSON_ASKED if schema is not None else 0,
        model="m",
        provider="p",
        batch_id=None,
        job_id=1,
        line_number=1,
        validator=book.validator(0),
    )


def chat(content: str | None, finish: str = "stop", refusal: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def responses(text: str, status: str = "completed", reason: str | None = None) -> dict[str, Any]:
    part = {"type": "output_text", "text": text}
    return {
        "status": status,
        "incomplete_details": {"reason": reason} if reason else None,
        "output": [{"type": "message", "content": [part]}],
    }


def message(text: str, stop: str, details: Any = None) -> dict[str, Any]:
    return {
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_details": details,
    }


@pytest.mark.parametrize(
    ("read", "body", "status", "code"),
    [
        (openai_lines.read_body, chat("Echo: h", "length"), "truncated", "length"),
        (openai_lines.read_body, chat(None, "content_filter"), "filtered", "content_filter"),
        (openai_lines.read_body, chat(None, refusal="I can't help."), "filtered", "refusal"),
        (
            openai_lines.read_body,
            responses("Echo", "incomplete", "max_output_tokens"),
            "truncated",
            "length",
        ),
        (
            openai_lines.read_body,
            responses("", "incomplete", "content_filter"),
            "filtered",
            "content_filter",
        ),
        (anthropic_lines.read_body, message("Echo: h", "max_tokens"), "truncated", "length"),
        (
            anthropic_lines.read_body,
            message("", "refusal", {"type": "refusal", "explanation": "Declined."}),
            "filtered",
            "content_filter",
        ),
        (anthropic_lines.read_body, message("Echo: hi", "end_turn"), "succeeded", None),
        (
            gemini_lines.read_body,
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]},
            "truncated",
            "length",
        ),
    ],
)
def test_cut_short_and_filtered_answers_get_statuses_of_their_own(
    read: Any, body: dict[str, Any], status: str, code: str | None
) -> None:
    """Chat `length`/`content_filter`/refusal, Responses `incomplete`, Anthropic `max_tokens` and
    `refusal` stops, Gemini `MAX_TOKENS`: never `succeeded`, with an error code saying why."""
    line = result(read, body)
    assert line["status"] == status
    assert (line["error"] or {}).get("code") == code


def test_a_truncated_json_answer_is_truncated_not_invalid() -> None:
    """Cut JSON breaks its schema too, but more tokens fix it: the cut is what it is reported as."""
    line = result(openai_lines.read_body, chat('{"answer": "Ec', "length"), SCHEMA)
    assert line["status"] == "truncated" and line["json_error"] is not None


@pytest.mark.parametrize(
    ("text", "status", "code", "message"),
    [
        ('{"answer": "a", "score": 3}', "succeeded", None, None),
        ('{"answer": "a", "score": 9}', "invalid", "schema_violation", "$.score: 9 is greater"),
        ('{"answer": "a"}', "invalid", "schema_violation", "$: 'score' is a required property"),
        ('{"answer": ', "invalid", "invalid_json", "not JSON: "),
    ],
)
def test_an_answer_is_validated_against_its_requests_schema(
    text: str, status: str, code: str | None, message: str | None
) -> None:
    """A conforming answer succeeds; a violation is `invalid` with its JSON path and message, the
    parsed JSON kept; text that is not JSON is `invalid` as `invalid_json`."""
    line = result(openai_lines.read_body, chat(text), SCHEMA)
    assert line["status"] == status
    if code is None:
        assert line["error"] is None
    else:
        assert line["error"]["code"] == code and line["error"]["message"].startswith(message)


def test_a_long_validation_message_is_bounded() -> None:
    """The message of a huge offending value is cut to ERROR_CHARS characters."""
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    line = result(openai_lines.read_body, chat('{"answer": "' + "x" * 5000 + '"}'), schema)
    assert line["status"] == "invalid" and len(line["error"]["message"]) == ERROR_CHARS


def test_a_broken_schema_makes_its_answers_invalid_not_a_crash() -> None:
    """A schema that is not a valid JSON Schema is reported on each answer (`schema_invalid`)."""
    line = result(openai_lines.read_body, chat('{"answer": "a"}'), {"type": "no-such-type"})
    assert line["status"] == "invalid" and line["error"]["code"] == "schema_invalid"


def test_each_distinct_schema_is_compiled_once_and_found_by_position() -> None:
    """Requests sharing a schema share its validator; one without a schema has none."""
    book = SchemaBook()
    chat_format = {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}}
    same_reordered = {"text": {"format": {"type": "json_schema", "schema": dict(SCHEMA)}}}
    book.add(chat_format)
    book.add({"input": "no schema"})
    book.add(same_reordered)
    book.add({"text": {"format": {"type": "json_schema", "schema": {"type": "array"}}}})
    assert book.validator(0) is book.validator(2) is not None
    assert book.validator(1) is None
    assert book.validator(3) not in (None, book.validator(0))
    assert declared_schema({"response_format": {"type": "json_object"}}) is None


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        ("/v1/responses", {"max_output_tokens": 3}, {"max_output_tokens": 500}),
        ("/v1/responses", {}, {"max_output_tokens": 500}),
        ("/v1/chat/completions", {"max_completion_tokens": 3}, {"max_completion_tokens": 500}),
        ("/v1/chat/completions", {"max_tokens": 3}, {"max_tokens": 500}),
        ("/v1/chat/completions", {}, {"max_completion_tokens": 500}),
        ("/v1/completions", {"max_tokens": 3}, {"max_tokens": 500}),
        ("/v1/embeddings", {"input": "x"}, {"input": "x"}),
    ],
)
def test_a_larger_budget_goes_in_each_endpoints_own_parameter(
    endpoint: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    """`retry --max-output-tokens 500` sets the parameter the endpoint reads, and leaves bodies
    with no output alone."""
    assert with_output_budget(body, endpoint, 500) == expected


def test_submit_refuses_a_schema_that_is_not_a_json_schema(tmp_path: Path) -> None:
    """`--json-schema` with an invalid JSON Schema is an InputError naming where, before anything
    is built (every answer would otherwise be `invalid`)."""
    path = tmp_path / "reply.json"
    path.write_text('{"type": "object", "properties": {"answer": {"type": "text"}}}')
    with pytest.raises(InputError, match=r"not a valid JSON Schema \(\$\.properties\.answer"):
        read_json_schema(path)
    path.write_text('{"type": "object", "properties": {"answer": {"type": "string"}}}')
    assert read_json_schema(path).schema["properties"] == {"answer": {"type": "string"}}
