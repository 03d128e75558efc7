"""Anthropic Message Batches result lines normalize into the same result schema as OpenAI's:
text, finish reason, refusal, usage, per-request errors and requests the batch never ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from anthropic.types.messages import MessageBatchIndividualResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.anthropicfiles import errored, message, not_run, succeeded
from support.batchfiles import CHAT, DownloadedJob, downloaded_job, input_line, read_jsonl

from ledger.core.models import Request
from ledger.results.normalize import normalize_job
from ledger.results.schema import RESULT_KEYS

MODEL = "claude-sonnet-4-5"


def normalized(engine: Engine, job: DownloadedJob) -> dict[str, dict[str, Any]]:
    summary = normalize_job(engine, job.lease, job.job_id)
    return {record["custom_id"]: record for record in read_jsonl(summary.results_path)}


def one_result(
    engine: Engine, tmp_path: Path, line: dict[str, Any], run: str = "eval", **body: Any
) -> dict[str, Any]:
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT, **body)],
        output=[line],
        errors=None,
        run=run,
        endpoint=CHAT,
        model=MODEL,
        provider="anthropic",
    )
    return normalized(engine, job)["a"]


def test_the_builders_are_what_the_sdk_parses() -> None:
    """Every result line used here validates as the SDK's own MessageBatchIndividualResponse."""
    lines = [
        succeeded("a", message(["x"], stop_reason="refusal", thinking_tokens=3)),
        errored("b"),
        not_run("c", "canceled"),
        not_run("d", "expired"),
    ]
    parsed = [MessageBatchIndividualResponse.model_validate(line) for line in lines]
    assert [p.result.type for p in parsed] == ["succeeded", "errored", "canceled", "expired"]


def test_a_message_maps_text_usage_model_and_ids(engine: Engine, tmp_path: Path) -> None:
    """Text blocks are joined (thinking skipped), usage counts every prompt token, cached apart."""
    body = message(
        ["The answer ", "is 4."],
        input_tokens=10,
        output_tokens=12,
        cache_read_input_tokens=30,
        cache_creation_input_tokens=5,
        thinking_tokens=7,
        extra_blocks=[{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
    )
    record = one_result(engine, tmp_path, succeeded("a", body))
    assert list(record) == list(RESULT_KEYS)
    assert record["status"] == "succeeded" and record["http_status"] == 200
    assert record["text"] == "The answer is 4." and record["finish_reason"] == "stop"
    assert record["model"] == "claude-sonnet-4-5-20250929"
    assert record["usage"] == {
        "input_tokens": 45,
        "output_tokens": 12,
        "cached_tokens": 30,
        "reasoning_tokens": 7,
    }
    assert record["request_id"] == body["id"]
    assert record["error"] is None and record["refusal"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_stop_reasons_become_finish_reasons(
    engine: Engine, tmp_path: Path, stop_reason: str, finish_reason: str
) -> None:
    """Anthropic's stop_reason maps onto the schema's finish reasons; unknown ones pass through."""
    record = one_result(engine, tmp_path, succeeded("a", message(stop_reason=stop_reason)))
    assert record["finish_reason"] == finish_reason


def test_a_refusal_is_content_filter_with_its_explanation(engine: Engine, tmp_path: Path) -> None:
    """stop_reason refusal: `filtered`, content_filter, the explanation as the refusal (and the
    error's message), partial text kept."""
    body = message(["I started"], stop_reason="refusal", refusal_explanation="Not allowed.")
    record = one_result(engine, tmp_path, succeeded("a", body))
    assert record["status"] == "filtered" and record["finish_reason"] == "content_filter"
    assert record["error"] == {"code": "content_filter", "message": "Not allowed."}
    assert record["refusal"] == "Not allowed." and record["text"] == "I started"


def test_a_refusal_without_explanation_still_says_so(engine: Engine, tmp_path: Path) -> None:
    """A refusal with no explanation and no text still has a refusal and null text."""
    body = message([], stop_reason="refusal")
    record = one_result(engine, tmp_path, succeeded("a", body))
    assert record["refusal"] == "The model refused to answer." and record["text"] is None


@pytest.mark.parametrize(
    ("error_type", "http_status"),
    [("invalid_request_error", 400), ("overloaded_error", 529), ("api_error", 500)],
)
def test_an_errored_request_fails_with_its_type_and_message(
    engine: Engine, tmp_path: Path, error_type: str, http_status: int
) -> None:
    """errored: failed, the error type as code, its message, the status that type stands for."""
    record = one_result(engine, tmp_path, errored("a", error_type, "it broke"))
    assert record["status"] == "failed" and record["http_status"] == http_status
    assert record["error"] == {"code": error_type, "message": "it broke"}
    assert record["usage"] is None and record["text"] is None


def test_json_asked_parses_the_text_or_says_why_not(engine: Engine, tmp_path: Path) -> None:
    """A request that asked for JSON gets its text parsed; invalid JSON gives json_error."""
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    good = one_result(
        engine, tmp_path, succeeded("a", message(['{"answer": 4}'])), response_format=schema
    )
    assert good["json"] == {"answer": 4} and good["json_error"] is None
    bad = one_result(
        engine,
        tmp_path,
        succeeded("a", message(['{"answer": '], stop_reason="max_tokens")),
        run="other",
        response_format={"type": "json_object"},
    )
    assert bad["json"] is None and bad["json_error"] and bad["finish_reason"] == "length"


def test_partial_batch_keeps_every_fate_in_input_order(engine: Engine, tmp_path: Path) -> None:
    """Succeeded, errored, canceled and expired lines, unordered, give results in input order."""
    ids = ["q.1", "q:2", "q_3", "q-4", "q5"]
    output = [
        not_run("q-4", "expired"),
        errored("q:2"),
        not_run("q_3", "canceled"),
        succeeded("q.1"),
    ]
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line(i, CHAT) for i in ids],
        output=output,
        errors=None,
        endpoint=CHAT,
        model=MODEL,
        provider="anthropic",
    )
    records = normalized(engine, job)
    assert [records[i]["status"] for i in ids] == [
        "succeeded",
        "failed",
        "cancelled",
        "expired",
        "missing",
    ]
    assert records["q_3"]["error"]["code"] == "batch_cancelled"
    assert records["q-4"]["error"]["code"] == "batch_expired"
    assert records["q-4"]["http_status"] is None
    with engine.connect() as connection:
        rows = dict(
            connection.execute(
                select(Request.custom_id, Request.status).where(Request.job_id == job.job_id)
            ).all()
        )
    assert rows == {
        "q.1": "succeeded",
        "q:2": "failed",
        "q_3": "cancelled",
        "q-4": "expired",
        "q5": "missing",
    }


def test_an_unknown_result_type_fails_rather_than_vanishes(engine: Engine, tmp_path: Path) -> None:
    """A result type this ledger does not know is a failed result saying which type it was."""
    record = one_result(engine, tmp_path, {"custom_id": "a", "result": {"type": "deferred"}})
    assert record["status"] == "failed" and record["error"]["code"] == "unknown_result"
    assert "deferred" in record["error"]["message"]


def test_tool_use_blocks_are_kept_as_tool_calls(engine: Engine, tmp_path: Path) -> None:
    """A tool_use block is a tool call like OpenAI's: its input object as JSON text."""
    block = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"city": "Oslo"}}
    body = message(["Let me check."], stop_reason="tool_use", extra_blocks=[block])
    record = one_result(engine, tmp_path, succeeded("a", body))
    assert record["finish_reason"] == "tool_calls" and record["text"] == "Let me check."
    assert record["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "name": "lookup", "arguments": '{"city":"Oslo"}'}
    ]
