"""Gemini's words in the ledger's: chat bodies as GenerateContentRequests, result lines as
outcomes and answers, every key on exactly one line, and JOB_STATE_* as ledger states."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.genai import types

from adapters.gemini.lines import check_keys, parse_line, read_body
from adapters.gemini.requests import request_problem, translate_body, write_request_file
from adapters.gemini.statuses import snapshot
from ledger.core.states import State
from ledger.errors import Rejected


def test_a_chat_body_becomes_contents_system_instruction_and_generation_config() -> None:
    """Roles map (assistant -> model), system text moves out, sampling goes to the config."""
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "stop": "END",
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    assert translate_body(body) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "maxOutputTokens": 50,
            "temperature": 0.2,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
        },
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "tools": []}, "'tools' is not"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role 'tool'"),
        ({"messages": [{"role": "system", "content": "x"}]}, "no user or assistant"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "'image_url' is not translated",
        ),
    ],
)
def test_what_gemini_cannot_take_is_named_before_anything_is_sent(
    body: dict[str, object], problem: str
) -> None:
    """The build's check names the reason; a translatable body has none."""
    found = request_problem("r1", body)
    assert found is not None and problem in found
    assert request_problem("r1", {"messages": [{"role": "user", "content": "x"}]}) is None


def test_a_shard_with_two_models_or_a_repeated_id_is_refused(tmp_path: Path) -> None:
    """One Gemini batch names one model; a custom_id is a key and must be unique."""
    shard = tmp_path / "shard.jsonl"

    def line(custom_id: str, model: str) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
        return json.dumps({"custom_id": custom_id, "url": "/v1/chat/completions", "body": body})

    shard.write_text(line("a", "gemini-2.5-flash") + "\n" + line("b", "gemini-2.5-pro") + "\n")
    with pytest.raises(Rejected, match="one model"):
        write_request_file(shard, tmp_path / "out.jsonl")
    shard.write_text(line("a", "gemini-2.5-flash") + "\n" + line("a", "gemini-2.5-flash") + "\n")
    with pytest.raises(Rejected, match="appears twice"):
        write_request_file(shard, tmp_path / "out.jsonl")
    shard.write_text(line("a", "gemini-2.5-flash") + "\n")
    info = write_request_file(shard, tmp_path / "out.jsonl")
    assert (info.requests, info.model) == (1, "gemini-2.5-flash")
    assert json.loads((tmp_path / "out.jsonl").read_text())["key"] == "a"
    assert not list(tmp_path.glob(".out.jsonl.*")), "no temporary file left behind"


def test_a_response_line_reads_into_text_usage_and_a_priced_usage() -> None:
    """Thought parts are not text; thoughts count as output and reasoning; pricing sees usage."""
    response = {
        "candidates": [
            {
                "content": {"parts": [{"text": "plan", "thought": True}, {"text": "Hi"}]},
                "finishReason": "MAX_TOKENS",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 3,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }
    outcome = parse_line(json.dumps({"custom_id": "k", "response": response}))
    assert (outcome.custom_id, outcome.status, outcome.http_status) == ("k", "succeeded", 200)
    assert outcome.request_id == "abc" and outcome.body is not None
    assert outcome.body["usage"] == {
        "input_tokens": 10,
        "output_tokens": 8,
        "input_tokens_details": {"cached_tokens": 4},
    }
    answer = read_body(outcome.body)
    assert (answer.text, answer.finish_reason, answer.model) == ("Hi", "length", "gemini-2.5-flash")
    assert answer.usage == {
        "input_tokens": 10,
        "output_tokens": 8,
        "cached_tokens": 4,
        "reasoning_tokens": 5,
    }


def test_an_error_line_and_a_blocked_prompt() -> None:
    """An error line fails with Google's status word and HTTP code; a prompt blocked before any
    candidate is a content_filter refusal."""
    error = {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}
    outcome = parse_line(json.dumps({"key": "k", "error": error}))
    assert (outcome.status, outcome.http_status) == ("failed", 429)
    assert outcome.error == {"code": "RESOURCE_EXHAUSTED", "message": "quota"}
    blocked = read_body({"promptFeedback": {"blockReason": "SAFETY"}})
    assert blocked.finish_reason == "content_filter" and "SAFETY" in (blocked.refusal or "")


def test_every_key_comes_back_on_exactly_one_line(tmp_path: Path) -> None:
    """A key on two lines becomes one duplicate_key error; others keep their line as custom_id;
    an unreadable line is kept for the quarantine."""
    raw = tmp_path / "raw.jsonl"
    answer = {"candidates": []}
    raw.write_text(
        "\n".join(
            [
                json.dumps({"key": "a", "response": answer}),
                json.dumps({"key": "b", "response": answer}),
                json.dumps({"key": "a", "error": {"code": 500, "message": "x"}}),
                "not json",
            ]
        )
        + "\n"
    )
    written, duplicated = check_keys(raw, tmp_path / "checked.jsonl")
    lines = (tmp_path / "checked.jsonl").read_text().splitlines()
    assert (written, duplicated) == (3, 1)
    first = json.loads(lines[0])
    assert first["custom_id"] == "a" and first["error"]["code"] == "duplicate_key"
    assert "2 result lines" in first["error"]["message"]
    assert json.loads(lines[1]) == {"custom_id": "b", "response": answer}
    assert lines[2] == "not json"


@pytest.mark.filterwarnings("ignore:.*is not a valid JobState")
@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("BATCH_STATE_PENDING", State.SUBMITTED),
        ("JOB_STATE_RUNNING", State.IN_PROGRESS),
        ("JOB_STATE_SUCCEEDED", State.COMPLETED),
        ("JOB_STATE_FAILED", State.FAILED),
        ("JOB_STATE_CANCELLED", State.CANCELLED),
        ("JOB_STATE_EXPIRED", State.EXPIRED),
        ("JOB_STATE_SOMETHING_NEW", State.IN_PROGRESS),
    ],
)
def test_job_states_map_to_ledger_states(word: str, state: State) -> None:
    """Each JOB_STATE_* (or the wire's BATCH_STATE_*) is one ledger state; a new word runs on.
    The result file is offered only once the batch is final."""
    batch = types.BatchJob(
        name="batches/x",
        state=word,  # type: ignore[arg-type]  # the SDK keeps a word it does not know
        create_time=datetime(2026, 11, 29, tzinfo=UTC),
        dest=types.BatchJobDestination(file_name="files/out"),
        display_name="ledger-job1-t",
    )
    seen = snapshot(batch)
    assert seen.state is state and seen.id == "batches/x"
    assert seen.metadata == {"display_name": "ledger-job1-t"}
    final = state in (State.COMPLETED, State.FAILED, State.CANCELLED, State.EXPIRED)
    assert seen.output_file_id == ("files/out" if final else None)


def test_gemini_token_counts_offline_are_marked_approximate() -> None:
    """No Gemini tokenizer offline: o200k_base counts, with a warning saying approximate."""
    from ledger.usage.tokens import TokenCounters

    counters = TokenCounters()
    assert counters.for_model("gemini-2.5-flash").text("hello world") == 2
    assert counters.warnings == [
        "model 'gemini-2.5-flash': token counts are approximate (o200k_base) offline "
        "(exact counts: --count-gemini-tokens asks Google)"
    ]


def test_an_embeddings_body_becomes_one_embed_content_request() -> None:
    """One text per request (a list of one is accepted); `dimensions` is the output size; more
    than one input is refused by name. The answer is the vector, listed for a list input."""
    from adapters.gemini.requests import translate_embeddings_body
    from adapters.results import INPUT_IS_LIST

    body = {"model": "gemini-embedding-001", "input": ["hi"], "dimensions": 3}
    assert translate_embeddings_body(body) == {
        "content": {"parts": [{"text": "hi"}]},
        "outputDimensionality": 3,
    }
    problem = request_problem("e", {"model": "m", "input": ["a", "b"]})
    assert problem is not None and "one text per request" in problem
    vector = {"embedding": {"values": [0.5, -0.25]}}
    assert read_body(vector).embedding == [0.5, -0.25]
    assert read_body(vector, INPUT_IS_LIST).embedding == [[0.5, -0.25]]
