"""Answers worth scoring, over HTTP against the emulator: an answer that breaks its request's JSON
Schema is `invalid` (with the path and message), one cut at its token limit `truncated`, one the
content filter stopped `filtered`; `ledger retry --only invalid,truncated --max-output-tokens N`
re-asks just those, and `ledger results` then shows the newest answer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner
from sqlalchemy import select, text

from cli import cli
from ledger import Ledger
from ledger.core.models import Job, Request, RequestAttempt

FAST = {"jitter": 0.0}

#: The echo answer is `{"answer": "Echo: <prompt>"}`: a short prompt fits in 24 characters.
SHORT_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 24}},
    "required": ["answer"],
    "additionalProperties": False,
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def invoke(*args: str) -> str:
    outcome = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def submit(tmp_path: Path, emulator: Any, rows: list[dict[str, Any]], schema: Any) -> Ledger:
    (tmp_path / "schema.json").write_text(json.dumps({"name": "reply", "schema": schema}))
    write_rows(tmp_path / "rows.jsonl", rows)
    db = str(tmp_path / "ledger.db")
    invoke(
        *("--db", db, "submit", str(tmp_path / "rows.jsonl"), "--run", "scored"),
        *("--model", "gpt-4o-mini", "--json-schema", str(tmp_path / "schema.json")),
        *("--base-url", emulator.base_url, "--poll-min", "0"),
    )
    ledger = Ledger.open(db, base_url=emulator.base_url, poll_min=0, poll_max=0.05)
    ledger.reconcile(run="scored", until_done=True, timeout=60, interval=0.01, **FAST)
    return ledger


def test_a_schema_half_the_answers_break_marks_exactly_those_invalid(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """With `--json-schema`, the answers that break it are `invalid` with the JSON path and the
    validator's message (the parsed JSON kept), the rest `succeeded`; the ledger's request rows,
    `status` and the run_progress view count them apart."""
    rows = [{"id": f"s{i}", "prompt": f"hi {i}"} for i in range(4)]
    rows += [{"id": f"l{i}", "prompt": f"tell me a long story number {i}"} for i in range(4)]
    ledger = submit(tmp_path, emulator, rows, SHORT_ANSWER_SCHEMA)
    results = {r.custom_id: r for r in ledger.results("scored")}
    assert {cid: r.status for cid, r in results.items()} == {
        **{f"s{i}": "succeeded" for i in range(4)},
        **{f"l{i}": "invalid" for i in range(4)},
    }
    broken = results["l0"]
    assert broken.json == {"answer": "Echo: tell me a long story number 0"}
    assert broken.error is not None and broken.error.code == "schema_violation"
    assert broken.error.message == "$.answer: 'Echo: tell me a long story number 0' is too long"
    assert results["s0"].error is None and results["s0"].json == {"answer": "Echo: hi 0"}
    [status] = ledger.status("scored")
    assert status["request_statuses"] == {"invalid": 4, "succeeded": 4}
    with ledger.engine.connect() as connection:
        rows_now = connection.execute(
            select(Request.custom_id, Request.status, Request.error_code).order_by(
                Request.line_number
            )
        ).all()
        progress = connection.execute(
            text("SELECT requests_succeeded, requests_unusable FROM run_progress")
        ).one()
    assert [r.status for r in rows_now] == ["succeeded"] * 4 + ["invalid"] * 4
    assert {r.error_code for r in rows_now if r.status == "invalid"} == {"schema_violation"}
    assert tuple(progress) == (4, 4)
    only_invalid = invoke(
        "--db", str(tmp_path / "ledger.db"), "results", "scored", "--status", "invalid"
    )
    assert [orjson.loads(line)["custom_id"] for line in only_invalid.splitlines()] == [
        f"l{i}" for i in range(4)
    ]
    ledger.close()


def test_retry_re_asks_just_the_invalid_and_truncated_with_a_larger_budget(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Truncated (a 3-token budget), filtered (the emulator's content filter) and off-schema
    answers get statuses of their own; `retry --only invalid,truncated --max-output-tokens 500`
    sends those alone, each body asking for 500 tokens, and once it is normalized `ledger
    results` shows each request's newest answer, now valid; the earlier outcomes stay in
    request_attempts."""
    rows = [{"id": "cut", "prompt": "hi cut", "max_output_tokens": 3}]
    rows += [{"id": "blocked", "prompt": "hi [content-filter] there"}]
    rows += [{"id": f"q{i}", "prompt": f"hi {i}"} for i in range(10)]
    emulator.configure(scenario="off_schema")
    ledger = submit(tmp_path, emulator, rows, ANSWER_SCHEMA)
    first = {r.custom_id: r for r in ledger.results("scored")}
    assert first["cut"].status == "truncated" and first["cut"].finish_reason == "length"
    assert first["cut"].error is not None and first["cut"].error.code == "length"
    assert first["blocked"].status == "filtered"
    assert first["blocked"].finish_reason == "content_filter"
    strayed = sorted(cid for cid, r in first.items() if r.status == "invalid")
    assert 0 < len(strayed) < 10, "off_schema strays on about half the answers"
    stray = first[strayed[0]]
    assert stray.json == {"off_schema": True}
    assert stray.error is not None
    assert stray.error.message == "$: 'answer' is a required property"
    assert Counter(r.status for r in first.values())["succeeded"] == 10 - len(strayed)

    emulator.configure(scenario="normal")
    db = str(tmp_path / "ledger.db")
    output = invoke(
        *("--db", db, "retry", "scored", "--only", "invalid,truncated"),
        *("--max-output-tokens", "500", "--base-url", emulator.base_url, "--poll-min", "0"),
    )
    assert f"sent {len(strayed) + 1} request(s)" in output
    ledger.reconcile(run="scored", until_done=True, timeout=60, interval=0.01, **FAST)

    with ledger.engine.connect() as connection:
        [retry_job] = connection.execute(
            select(Job.id, Job.input_path).where(Job.parent_job_id.is_not(None))
        ).all()
        attempts = connection.execute(
            select(Request.custom_id, RequestAttempt.status).join(
                Request, Request.id == RequestAttempt.request_id
            )
        ).all()
    sent = [orjson.loads(line) for line in Path(retry_job.input_path).read_bytes().splitlines()]
    assert sorted(line["custom_id"] for line in sent) == sorted([*strayed, "cut"])
    assert {line["body"]["max_output_tokens"] for line in sent} == {500}
    assert sorted(attempts) == sorted([("cut", "truncated"), *((c, "invalid") for c in strayed)])

    results = {r.custom_id: r for r in ledger.results("scored")}
    assert list(results) == ["cut", "blocked", *(f"q{i}" for i in range(10))]
    assert results["cut"].status == "succeeded" and results["cut"].job_id == retry_job.id
    assert results["cut"].json == {"answer": "Echo: hi cut"}
    assert all(results[cid].json == {"answer": f"Echo: hi {cid[1:]}"} for cid in strayed)
    assert results["blocked"].status == "filtered", "a filtered answer was not re-asked"
    [status] = ledger.status("scored")
    assert status["request_statuses"] == {"filtered": 1, "succeeded": 11}
    ledger.close()
