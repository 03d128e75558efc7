"""Each endpoint's body shape maps to the one result schema: text, JSON, refusal, embedding,
finish reason and usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from support.batchfiles import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    RESPONSES,
    DownloadedJob,
    chat_body,
    completion_body,
    downloaded_job,
    embedding_body,
    http_error_line,
    input_line,
    ok_line,
    read_jsonl,
    response_body,
)

from adapters.openai.lines import read_body
from ledger.results.normalize import normalize_job
from ledger.results.schema import RESULT_KEYS


def normalized(engine: Engine, job: DownloadedJob) -> dict[str, dict[str, Any]]:
    summary = normalize_job(engine, job.lease, job.job_id)
    return {record["custom_id"]: record for record in read_jsonl(summary.results_path)}


def test_chat_completion_maps_text_usage_and_ids(engine: Engine, tmp_path: Path) -> None:
    """A chat body gives the message text, `stop`, normalized usage and the request's ids."""
    line = ok_line(
        "a",
        chat_body(
            "Paris.", prompt_tokens=40, completion_tokens=9, cached_tokens=32, reasoning_tokens=4
        ),
    )
    job = downloaded_job(engine, tmp_path, [input_line("a", CHAT)], output=[line], endpoint=CHAT)
    record = normalized(engine, job)["a"]
    assert list(record) == list(RESULT_KEYS)
    assert record["status"] == "succeeded" and record["http_status"] == 200
    assert record["text"] == "Paris." and record["finish_reason"] == "stop"
    assert record["model"] == "gpt-4o-mini-2024-07-18"
    assert record["usage"] == {
        "input_tokens": 40,
        "output_tokens": 9,
        "cached_tokens": 32,
        "reasoning_tokens": 4,
    }
    assert record["error"] is None and record["json"] is None and record["json_error"] is None
    assert record["request_id"] == line["response"]["request_id"]
    assert record["job_id"] == job.job_id and record["line_number"] == 1
    assert record["batch_id"].startswith("batch_")


def test_responses_body_joins_output_text_and_maps_usage(engine: Engine, tmp_path: Path) -> None:
    """A Responses body gives its output_text parts joined, `stop`, and usage under our names."""
    body = response_body(
        ["The answer ", "is 4."], input_tokens=50, output_tokens=12, reasoning_tokens=6
    )
    job = downloaded_job(engine, tmp_path, [input_line("a")], output=[ok_line("a", body)])
    record = normalized(engine, job)["a"]
    assert record["text"] == "The answer is 4." and record["finish_reason"] == "stop"
    assert record["usage"] == {
        "input_tokens": 50,
        "output_tokens": 12,
        "cached_tokens": 0,
        "reasoning_tokens": 6,
    }
    assert record["refusal"] is None and record["embedding"] is None


def test_embeddings_single_input_is_a_vector_and_a_list_input_a_list_of_vectors(
    engine: Engine, tmp_path: Path
) -> None:
    """One input gives a list of floats; a list input gives vectors in input order, base64 too."""
    inputs = [
        input_line("one", EMBEDDINGS, model="text-embedding-3-small", input="hi"),
        input_line("many", EMBEDDINGS, model="text-embedding-3-small", input=["a", "b"]),
        input_line("b64", EMBEDDINGS, model="text-embedding-3-small", input=["c"]),
    ]
    output = [
        ok_line("one", embedding_body([[0.5, -1.0]])),
        ok_line("many", embedding_body([[0.25, 0.5], [1.5, 2.0]])),
        ok_line("b64", embedding_body([[0.125, -0.75]], base64_encoded=True)),
    ]
    job = downloaded_job(engine, tmp_path, inputs, output=output, endpoint=EMBEDDINGS)
    records = normalized(engine, job)
    assert records["one"]["embedding"] == [0.5, -1.0]
    assert records["many"]["embedding"] == [[0.25, 0.5], [1.5, 2.0]]
    assert records["b64"]["embedding"] == [[0.125, -0.75]]
    assert records["one"]["usage"]["input_tokens"] == 8
    assert records["one"]["usage"]["output_tokens"] == 0
    assert records["one"]["text"] is None


def test_legacy_completions_give_the_choice_text(engine: Engine, tmp_path: Path) -> None:
    """A Completions body gives its first choice's text and finish reason."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", COMPLETIONS, model="gpt-3.5-turbo-instruct", prompt="Say")],
        output=[ok_line("a", completion_body(" this", finish_reason="length"))],
        endpoint=COMPLETIONS,
    )
    record = normalized(engine, job)["a"]
    assert (record["text"], record["finish_reason"]) == (" this", "length")


@pytest.mark.parametrize(
    ("body", "endpoint", "finish_reason", "status"),
    [
        (chat_body("Once upon a", finish_reason="length"), CHAT, "length", "truncated"),
        (chat_body(None, finish_reason="content_filter"), CHAT, "content_filter", "filtered"),
        (
            response_body(
                ["Once upon a"], status="incomplete", incomplete_reason="max_output_tokens"
            ),
            RESPONSES,
            "length",  # the schema's word for every endpoint's output limit
            "truncated",
        ),
        (
            response_body([], status="incomplete", incomplete_reason="content_filter"),
            RESPONSES,
            "content_filter",
            "filtered",
        ),
    ],
    ids=["chat-length", "chat-content-filter", "responses-max-output", "responses-filter"],
)
def test_truncated_answers_say_so_in_finish_reason(
    engine: Engine,
    tmp_path: Path,
    body: dict[str, Any],
    endpoint: str,
    finish_reason: str,
    status: str,
) -> None:
    """A cut-off or filtered answer is never `succeeded` (`truncated`, `filtered`) and carries
    why it stopped, never `stop`."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", endpoint)],
        output=[ok_line("a", body)],
        endpoint=endpoint,
    )
    record = normalized(engine, job)["a"]
    assert record["status"] == status
    assert record["finish_reason"] == finish_reason


def test_tool_calls_are_the_finish_reason_for_both_shapes(engine: Engine, tmp_path: Path) -> None:
    """A chat tool call and a Responses function_call item both finish with `tool_calls`."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
    }
    function_call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"city": "Oslo"}',
        "status": "completed",
    }
    inputs = [input_line("chat", CHAT), input_line("resp", RESPONSES)]
    output = [
        ok_line("chat", chat_body(None, finish_reason="tool_calls", tool_calls=[call])),
        ok_line("resp", response_body([], extra_output=[function_call])),
    ]
    job = downloaded_job(engine, tmp_path, inputs, output=output)
    records = normalized(engine, job)
    assert records["chat"]["finish_reason"] == "tool_calls"
    assert records["resp"]["finish_reason"] == "tool_calls"
    assert records["resp"]["text"] is None


def test_tool_calls_are_kept_with_their_arguments(engine: Engine, tmp_path: Path) -> None:
    """Every call, from chat `tool_calls` and Responses `function_call` items, in one shape."""
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}},
    ]
    function_call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_9",
        "name": "lookup",
        "arguments": '{"city": "Oslo"}',
        "status": "completed",
    }
    inputs = [input_line("chat", CHAT), input_line("resp", RESPONSES), input_line("plain", CHAT)]
    output = [
        ok_line("chat", chat_body(None, finish_reason="tool_calls", tool_calls=calls)),
        ok_line("resp", response_body(["Looking it up."], extra_output=[function_call])),
        ok_line("plain", chat_body("No tools.")),
    ]
    records = normalized(engine, downloaded_job(engine, tmp_path, inputs, output=output))
    assert records["chat"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "name": "lookup", "arguments": "{}"},
        {"id": "call_2", "type": "function", "name": "add", "arguments": '{"a":1}'},
    ]
    assert records["resp"]["tool_calls"] == [
        {"id": "call_9", "type": "function", "name": "lookup", "arguments": '{"city": "Oslo"}'}
    ]
    assert records["resp"]["text"] == "Looking it up."
    assert records["plain"]["tool_calls"] is None


def test_every_choice_is_kept_when_n_is_more_than_one(engine: Engine, tmp_path: Path) -> None:
    """With `n > 1` the first choice is the answer and `choices` holds them all, in order."""
    body = chat_body("First.", finish_reason="stop")
    second = {
        "index": 1,
        "message": {"role": "assistant", "content": "Second, cut", "refusal": None},
        "logprobs": None,
        "finish_reason": "length",
    }
    body["choices"] = [second, *body["choices"]]  # the API's order is not promised
    two = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "n": 2}
    inputs = [input_line("two", CHAT, **two), input_line("one", CHAT)]
    output = [ok_line("two", body), ok_line("one", chat_body("Only."))]
    records = normalized(engine, downloaded_job(engine, tmp_path, inputs, output=output))
    assert (records["two"]["text"], records["two"]["finish_reason"]) == ("First.", "stop")
    assert records["two"]["choices"] == [
        {
            "index": 0,
            "text": "First.",
            "refusal": None,
            "finish_reason": "stop",
            "tool_calls": None,
        },
        {
            "index": 1,
            "text": "Second, cut",
            "refusal": None,
            "finish_reason": "length",
            "tool_calls": None,
        },
    ]
    assert records["one"]["choices"] is None  # one choice: the answer says it all


def test_refusals_are_reported_for_chat_and_responses(engine: Engine, tmp_path: Path) -> None:
    """The refusal text lands in `refusal` (and the error's message), with no answer text: the
    answer is `filtered`."""
    inputs = [input_line("chat", CHAT), input_line("resp", RESPONSES)]
    output = [
        ok_line("chat", chat_body(None, refusal="I can't help with that.")),
        ok_line("resp", response_body([], refusal="I can't help with that either.")),
    ]
    job = downloaded_job(engine, tmp_path, inputs, output=output)
    records = normalized(engine, job)
    assert records["chat"]["refusal"] == "I can't help with that."
    assert records["resp"]["refusal"] == "I can't help with that either."
    assert records["chat"]["text"] is None and records["resp"]["text"] is None
    assert records["chat"]["status"] == records["resp"]["status"] == "filtered"
    assert records["chat"]["error"] == {"code": "refusal", "message": "I can't help with that."}


def test_json_mode_parses_valid_text_and_reports_invalid(engine: Engine, tmp_path: Path) -> None:
    """With JSON asked, valid text is parsed into `json`; invalid text gives a `json_error`."""
    chat_json = {"response_format": {"type": "json_object"}, "model": "gpt-4o-mini", "messages": []}
    schema = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}
    responses_json = {"model": "gpt-4o-mini", "input": "x", "text": {"format": schema}}
    inputs = [
        input_line("good", CHAT, **chat_json),
        input_line("bad", CHAT, **chat_json),
        input_line("schema", RESPONSES, **responses_json),
        input_line("plain", CHAT),
    ]
    output = [
        ok_line("good", chat_body('{"answer": 4, "unit": null}')),
        ok_line("bad", chat_body('{"answer": 4', finish_reason="length")),
        ok_line("schema", response_body(['{"answer": "four"}'])),
        ok_line("plain", chat_body('{"looks": "like json"}')),
    ]
    job = downloaded_job(engine, tmp_path, inputs, output=output)
    records = normalized(engine, job)
    assert records["good"]["json"] == {"answer": 4, "unit": None}
    assert records["good"]["json_error"] is None
    assert records["bad"]["json"] is None and records["bad"]["json_error"]
    assert records["bad"]["text"] == '{"answer": 4'
    assert records["schema"]["json"] == {"answer": "four"}
    assert records["plain"]["json"] is None and records["plain"]["json_error"] is None


def test_run_options_ask_for_json_when_the_body_is_silent(engine: Engine, tmp_path: Path) -> None:
    """`json_mode` in the run's options parses every answer whose body declares no format."""
    inputs = [
        input_line("silent", CHAT),
        input_line("text", CHAT, model="m", messages=[], response_format={"type": "text"}),
    ]
    output = [ok_line("silent", chat_body('{"a": 1}')), ok_line("text", chat_body('{"a": 1}'))]
    job = downloaded_job(engine, tmp_path, inputs, output=output, options={"json_mode": True})
    records = normalized(engine, job)
    assert records["silent"]["json"] == {"a": 1}
    assert records["text"]["json"] is None  # the body said plain text, and the body wins


def test_http_error_body_becomes_the_error(engine: Engine, tmp_path: Path) -> None:
    """A non-2xx line fails with its status and the body's error (the type when code is null)."""
    errors = [
        http_error_line("a", 400, "Invalid 'messages'.", code=None),
        http_error_line("b", 429, "Rate limit.", error_type="requests", code="rate_limit_exceeded"),
    ]
    job = downloaded_job(engine, tmp_path, [input_line("a"), input_line("b")], errors=errors)
    records = normalized(engine, job)
    assert (records["a"]["status"], records["a"]["http_status"]) == ("failed", 400)
    assert records["a"]["error"] == {
        "code": "invalid_request_error",
        "message": "Invalid 'messages'.",
    }
    assert records["b"]["error"] == {"code": "rate_limit_exceeded", "message": "Rate limit."}
    assert records["a"]["usage"] is None and records["a"]["text"] is None
    assert records["a"]["model"] == "gpt-4o-mini"  # the job's model: no body names one


def test_a_failed_response_object_fails_the_request(engine: Engine, tmp_path: Path) -> None:
    """A 200 line whose Responses body has `status: failed` is a failure, with its error."""
    body = response_body(
        [], status="failed", error={"code": "server_error", "message": "Something broke."}
    )
    job = downloaded_job(engine, tmp_path, [input_line("a")], output=[ok_line("a", body)])
    record = normalized(engine, job)["a"]
    assert (record["status"], record["http_status"]) == ("failed", 200)
    assert record["error"] == {"code": "server_error", "message": "Something broke."}
    assert record["finish_reason"] is None


def test_the_deprecated_function_call_finish_reason_reads_as_tool_calls() -> None:
    """A chat choice that finished with `function_call` (the old name) reports `tool_calls`."""
    assert read_body(chat_body(None, finish_reason="function_call")).finish_reason == "tool_calls"
