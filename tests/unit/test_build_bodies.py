"""Request bodies for each endpoint, in the endpoint's own parameter names, and accepted by the
openai SDK's own request param types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.embedding_create_params import EmbeddingCreateParams
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from support.sdk_params import problems

from ledger.build.bodies import RowBuilder, RowProblem
from ledger.build.body_options import (
    BodyOptions,
    JsonSchemaFormat,
    read_json_schema,
    read_system_option,
)
from ledger.build.endpoints import CHAT, EMBEDDINGS, RESPONSES
from ledger.errors import InputError

SDK_PARAMS = {
    RESPONSES: ResponseCreateParamsNonStreaming,
    CHAT: CompletionCreateParamsNonStreaming,
    EMBEDDINGS: EmbeddingCreateParams,
}
SCHEMA = JsonSchemaFormat(
    name="answer",
    schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
)
MESSAGES = [
    {"role": "system", "content": "Answer in French."},
    {"role": "user", "content": "hello world"},
]
NAMED = [{"role": "user", "content": "hello world", "name": "ada"}]


def body(options: BodyOptions, row: dict[str, Any]) -> dict[str, Any]:
    request = RowBuilder(options).request(row, 7)
    line = json.loads(request.line)
    assert line == {
        "custom_id": line["custom_id"],
        "method": "POST",
        "url": options.endpoint,
        "body": request.parsed_body(),
    }
    return request.parsed_body()


GENERATION_CASES = {
    "plain prompt": ({}, {"prompt": "hi"}),
    "system, limits": (
        {"system": "Be brief.", "max_output_tokens": 50, "temperature": 0.2},
        {"prompt": "hi"},
    ),
    "json mode": ({"json_mode": True, "system": "Reply in JSON."}, {"prompt": "hi"}),
    "json schema": ({"json_schema": SCHEMA}, {"prompt": "hi"}),
    "messages": ({"system": "Be brief."}, {"messages": MESSAGES}),
    "row overrides": (
        {"max_output_tokens": 50},
        {
            "prompt": "hi",
            "model": "gpt-4o",
            "max_output_tokens": 9,
            "temperature": 1,
            "metadata": {"topic": "greeting"},
        },
    ),
}


@pytest.mark.parametrize("endpoint", [RESPONSES, CHAT])
@pytest.mark.parametrize("case", GENERATION_CASES, ids=str)
def test_generation_bodies_fit_the_sdk_params(endpoint: str, case: str) -> None:
    """Every generated responses and chat body is accepted by the SDK's TypedDicts."""
    extra, row = GENERATION_CASES[case]
    options = BodyOptions(endpoint=endpoint, model="gpt-4o-mini", **extra)
    assert problems(body(options, row), SDK_PARAMS[endpoint]) == []


@pytest.mark.parametrize(("endpoint", "part"), [(RESPONSES, "input_text"), (CHAT, "text")])
def test_content_part_lists_pass_through(endpoint: str, part: str) -> None:
    """Messages with content parts (in the endpoint's own part types) are sent as given."""
    messages = [{"role": "user", "content": [{"type": part, "text": "hi"}]}]
    made = body(BodyOptions(endpoint=endpoint, model="m"), {"messages": messages})
    assert made["input" if endpoint == RESPONSES else "messages"] == messages
    assert problems(made, SDK_PARAMS[endpoint]) == []


@pytest.mark.parametrize("row", [{"input": "hello"}, {"input": ["a", "b"]}, {"prompt": "hi"}])
def test_embeddings_bodies_fit_the_sdk_params(row: dict[str, Any]) -> None:
    """Embeddings bodies are model and input, as EmbeddingCreateParams has them."""
    made = body(BodyOptions(endpoint=EMBEDDINGS, model="text-embedding-3-small"), row)
    assert made == {"model": "text-embedding-3-small", "input": next(iter(row.values()))}
    assert problems(made, EmbeddingCreateParams) == []


def test_the_sdk_check_catches_a_wrong_parameter_name() -> None:
    """The checker is not a rubber stamp: chat's max_completion_tokens is no responses field."""
    wrong = {"model": "m", "input": "hi", "max_completion_tokens": 5}
    assert problems(wrong, ResponseCreateParamsNonStreaming) == [
        "body.max_completion_tokens: not a field of ResponseCreateParamsNonStreaming"
    ]
    bad_format = {"model": "m", "messages": [], "response_format": {"type": "json_schema"}}
    assert problems(bad_format, CompletionCreateParamsNonStreaming)


def test_responses_body_uses_instructions_max_output_tokens_and_text_format() -> None:
    """--system is `instructions`; JSON schema is text.format with name, schema and strict."""
    options = BodyOptions(
        endpoint=RESPONSES,
        model="gpt-4o-mini",
        system="Be brief.",
        max_output_tokens=50,
        temperature=0.2,
        json_schema=SCHEMA,
    )
    assert body(options, {"prompt": "hi"}) == {
        "model": "gpt-4o-mini",
        "input": "hi",
        "instructions": "Be brief.",
        "max_output_tokens": 50,
        "temperature": 0.2,
        "text": {
            "format": {
                "type": "json_schema",
                "name": "answer",
                "schema": SCHEMA.schema,
                "strict": True,
            }
        },
    }


def test_chat_body_uses_a_system_message_max_completion_tokens_and_response_format() -> None:
    """--system becomes the first message; JSON mode is response_format json_object."""
    options = BodyOptions(
        endpoint=CHAT, model="gpt-4o-mini", system="Be brief.", max_output_tokens=50, json_mode=True
    )
    assert body(options, {"prompt": "hi"}) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "response_format": {"type": "json_object"},
    }
    schema = body(BodyOptions(endpoint=CHAT, model="m", json_schema=SCHEMA), {"prompt": "hi"})
    assert schema["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA.schema, "strict": True},
    }


def test_responses_json_mode_and_messages() -> None:
    """JSON mode is text.format json_object; a messages row is the responses input list."""
    options = BodyOptions(endpoint=RESPONSES, model="m", json_mode=True)
    made = body(options, {"messages": MESSAGES})
    assert made == {"model": "m", "input": MESSAGES, "text": {"format": {"type": "json_object"}}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"endpoint": EMBEDDINGS, "json_mode": True},
            "--json: the embeddings endpoint has no such parameter",
        ),
        ({"endpoint": EMBEDDINGS, "system": "x"}, "--system: the embeddings endpoint"),
        ({"json_mode": True, "json_schema": SCHEMA}, "--json and --json-schema: choose one"),
        ({"temperature": 3.0}, "--temperature: must be between 0 and 2"),
        ({"max_output_tokens": 0}, "--max-output-tokens: must be at least 1"),
    ],
)
def test_contradictory_options_are_refused(options: dict[str, Any], message: str) -> None:
    """Options the endpoint cannot honour are refused before any row is read."""
    with pytest.raises(InputError, match=message):
        RowBuilder(BodyOptions(model="m", **options))


@pytest.mark.parametrize(
    ("endpoint", "row", "field", "message"),
    [
        (RESPONSES, {"prompt": 5}, "prompt", "must be a string"),
        (RESPONSES, {"prompt": "  "}, "prompt", "empty"),
        (RESPONSES, {"prompt": "a", "input": "b"}, "prompt", "give one of prompt, messages, input"),
        (CHAT, {"input": "x"}, "input", "the chat endpoint takes prompt or messages"),
        (CHAT, {"messages": [{"content": "x"}]}, "messages[0]", "missing role"),
        (CHAT, {"messages": [{"role": "robot", "content": "x"}]}, "messages[0]", "'robot'"),
        (RESPONSES, {"messages": NAMED}, "messages[0].name", "takes role and content"),
        (CHAT, {"messages": []}, "messages", "non-empty list"),
        (EMBEDDINGS, {"messages": MESSAGES}, "messages", "takes input"),
        (EMBEDDINGS, {"input": "x", "temperature": 1}, "temperature", "no such parameter"),
        (RESPONSES, {"prompt": "a", "max_output_tokens": "9"}, "max_output_tokens", "whole number"),
        (RESPONSES, {"prompt": "a", "temperature": 2.5}, "temperature", "between 0 and 2"),
        (RESPONSES, {"prompt": "a", "metadata": {"k": 1}}, "metadata", "must be a string"),
        (RESPONSES, {"prompt": "a", "id": True}, "id", "must be a string"),
    ],
)
def test_bad_row_fields_name_the_field(
    endpoint: str, row: dict[str, Any], field: str, message: str
) -> None:
    """Each row problem names its field and says what is wrong."""
    with pytest.raises(RowProblem) as caught:
        RowBuilder(BodyOptions(endpoint=endpoint, model="m")).request(row, 3)
    assert caught.value.field == field and message in caught.value.message


def test_numeric_ids_become_strings_and_custom_id_wins_over_id() -> None:
    """{"id": 17} is custom_id "17"; with both columns, custom_id is used."""
    builder = RowBuilder(BodyOptions(model="m"))
    assert builder.request({"id": 17, "prompt": "x"}, 1).custom_id == "17"
    assert builder.request({"id": "a", "custom_id": "b", "prompt": "x"}, 1).custom_id == "b"
    assert builder.request({"id": "", "prompt": "x"}, 42).custom_id == "row-000042"


def test_system_option_reads_a_file(tmp_path: Path) -> None:
    """--system @file reads the file's text (a BOM dropped); plain text is taken as is."""
    (tmp_path / "sys.txt").write_text("\ufeffYou grade essays.\n", encoding="utf-8")
    assert read_system_option("@sys.txt") == "You grade essays.\n"
    assert read_system_option("Be brief.") == "Be brief."
    with pytest.raises(InputError, match=r"--system: missing\.txt: no such file"):
        read_system_option("@missing.txt")


def test_json_schema_file_bare_or_wrapped(tmp_path: Path) -> None:
    """A bare schema is named after its file; {name, schema, strict} is taken as given."""
    (tmp_path / "Answer Shape.json").write_text(json.dumps(SCHEMA.schema))
    assert read_json_schema(tmp_path / "Answer Shape.json") == JsonSchemaFormat(
        name="Answer_Shape", schema=SCHEMA.schema
    )
    wrapped = {"name": "answer", "schema": SCHEMA.schema, "strict": False}
    (tmp_path / "w.json").write_text(json.dumps(wrapped))
    assert read_json_schema(tmp_path / "w.json") == JsonSchemaFormat("answer", SCHEMA.schema, False)
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        read_json_schema(tmp_path / "bad.json")
