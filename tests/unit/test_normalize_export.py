"""`ledger results` merges a run's shards back into input order, the newest job's result winning
for a request a retry job carried again."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.batchfiles import (
    downloaded_job,
    http_error_line,
    input_line,
    not_run_line,
    ok_line,
    response_body,
)

from cli import cli
from ledger.artifacts import LocalFolderStore, resolve
from ledger.core.models import Request
from ledger.core.states import State
from ledger.results.normalize import normalize_job


def invoke(db_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def answer(text: str) -> dict[str, object]:
    return response_body([text])


@pytest.fixture
def retried_run(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """Run `eval`: shard 1 (a, b failed, c), shard 2 (d, e expired, f failed), a retry job that
    reran b successfully, and a shard 3 still downloading."""
    first = downloaded_job(
        engine,
        tmp_path,
        [input_line(c) for c in "abc"],
        shard_index=1,
        first_line=1,
        output=[ok_line("c", answer("c")), ok_line("a", answer("a"))],
        errors=[http_error_line("b", 500, "try again")],
    )
    second = downloaded_job(
        engine,
        tmp_path,
        [input_line(c) for c in "def"],
        shard_index=2,
        first_line=4,
        output=[ok_line("d", answer("d"))],
        errors=[not_run_line("e"), http_error_line("f")],
        final_state=State.EXPIRED,
    )
    normalize_job(engine, first.lease, first.job_id)
    normalize_job(engine, second.lease, second.job_id)
    retry = downloaded_job(
        engine,
        tmp_path,
        [input_line("b")],
        shard_index=101,
        parent_job_id=first.job_id,
        output=[ok_line("b", answer("b on retry"))],
        requests="repoint",
    )
    normalize_job(engine, retry.lease, retry.job_id)
    pending = downloaded_job(
        engine,
        tmp_path,
        [input_line("g")],
        shard_index=3,
        first_line=7,
        output=[],
    )
    return {"first": first.job_id, "retry": retry.job_id, "pending": pending.job_id}


def test_jsonl_is_in_input_order_across_shards_with_the_retry_winning(
    db_url: str, retried_run: dict[str, int]
) -> None:
    """Every request of the normalized jobs once, in input order, b from the retry job."""
    code, out, err = invoke(db_url, "results", "eval")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["custom_id"] for r in records] == list("abcdef")
    assert [r["line_number"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r["status"] for r in records] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "succeeded",
        "expired",
        "failed",
    ]
    assert (records[1]["text"], records[1]["job_id"]) == ("b on retry", retried_run["retry"])
    assert (
        err
        == f"note: jobs not normalized yet, their requests are left out: {retried_run['pending']}\n"
    )


def test_status_filter_applies_to_the_winning_result(
    db_url: str, retried_run: dict[str, int]
) -> None:
    """`--status failed` lists f only: b's failure was replaced by its retry's success."""
    code, out, _ = invoke(db_url, "results", "eval", "--status", "failed")
    assert code == 0
    assert [json.loads(line)["custom_id"] for line in out.splitlines()] == ["f"]
    code, out, _ = invoke(db_url, "results", "eval", "--status", "expired", "--status", "failed")
    assert [json.loads(line)["custom_id"] for line in out.splitlines()] == ["e", "f"]


def test_csv_flattens_the_useful_columns_to_a_file(
    db_url: str, retried_run: dict[str, int], tmp_path: Path
) -> None:
    """CSV to -o FILE: a header, then one flat row per result in input order."""
    target = tmp_path / "out.csv"
    code, out, _ = invoke(db_url, "results", "eval", "--format", "csv", "-o", str(target))
    assert (code, out) == (0, "")
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["custom_id"] for row in rows] == list("abcdef")
    assert rows[1]["text"] == "b on retry" and rows[1]["finish_reason"] == "stop"
    assert rows[0]["input_tokens"] == "30" and rows[0]["output_tokens"] == "7"
    assert (rows[4]["error_code"], rows[4]["http_status"]) == ("batch_expired", "")
    assert (
        rows[5]["error_message"] == "Invalid value for 'model'." and rows[5]["http_status"] == "400"
    )


def test_csv_json_column_holds_the_parsed_json_as_a_string(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """The `json` column is the parsed JSON re-serialized; `text` keeps the raw answer."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        options={"json_schema": {"type": "object"}},
        output=[ok_line("a", answer('{ "x": [1, 2] }'))],
    )
    normalize_job(engine, job.lease, job.job_id)
    code, out, _ = invoke(db_url, "results", "eval", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and json.loads(row["json"]) == {"x": [1, 2]}
    assert row["text"] == '{ "x": [1, 2] }'


def test_csv_tool_calls_and_choices_are_json_text_at_the_end(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Tool calls (and choices when n > 1) are a cell each of JSON text, after the old columns."""
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"q": "x"}',
        "status": "completed",
    }
    body = response_body([], extra_output=[call])
    job = downloaded_job(engine, tmp_path, [input_line("a")], output=[ok_line("a", body)])
    normalize_job(engine, job.lease, job.job_id)
    code, out, _ = invoke(db_url, "results", "eval", "--format", "csv")
    header = next(csv.reader(io.StringIO(out)))
    # After the old columns; model, provider, job_id, batch_id and reused_from came later.
    assert header[-8:-5] == ["error_message", "tool_calls", "choices"]
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and row["finish_reason"] == "tool_calls" and row["choices"] == ""
    assert json.loads(row["tool_calls"]) == [
        {"id": "call_1", "type": "function", "name": "lookup", "arguments": '{"q": "x"}'}
    ]


def test_an_unknown_run_is_a_one_line_error(engine: Engine, db_url: str) -> None:
    """Asking for a run that does not exist exits 2 with one line."""
    assert invoke(db_url, "results", "nope") == (2, "", "error: no run named 'nope'\n")


def test_a_retry_whose_rows_still_name_the_parent_takes_them_over(
    engine: Engine, tmp_path: Path
) -> None:
    """Request rows are found by custom_id, so a retry updates them even if not repointed."""
    parent = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=[ok_line("a", answer("a"))],
        errors=[http_error_line("b", 500)],
    )
    normalize_job(engine, parent.lease, parent.job_id)
    retry = downloaded_job(
        engine,
        tmp_path,
        [input_line("b")],
        shard_index=2,
        parent_job_id=parent.job_id,
        output=[ok_line("b", answer("b"))],
        requests="keep",
    )
    normalize_job(engine, retry.lease, retry.job_id)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Request.custom_id, Request.job_id, Request.status).order_by(Request.line_number)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("a", parent.job_id, "succeeded"),
        ("b", retry.job_id, "succeeded"),
    ]


def test_an_older_job_normalized_late_does_not_overwrite_a_newer_jobs_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """The newest job wins in the ledger too, whatever order jobs are normalized in."""
    parent = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        errors=[http_error_line("a", 500)],
    )
    retry = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        shard_index=2,
        parent_job_id=parent.job_id,
        output=[ok_line("a", answer("a"))],
        requests="repoint",
    )
    normalize_job(engine, retry.lease, retry.job_id)
    normalize_job(engine, parent.lease, parent.job_id)
    with engine.connect() as connection:
        row = connection.execute(select(Request.job_id, Request.status, Request.http_status)).one()
    assert tuple(row) == (retry.job_id, "succeeded", 200)


def test_a_missing_results_file_is_an_error_before_any_output(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """A normalized job whose stored results are gone stops the export before it writes a line,
    naming the job and the artifact; the local copy in the run folder is not used instead."""
    first = downloaded_job(engine, tmp_path, [input_line("a")], output=[ok_line("a", answer("a"))])
    second = downloaded_job(
        engine,
        tmp_path,
        [input_line("b")],
        shard_index=2,
        first_line=2,
        output=[ok_line("b", answer("b"))],
    )
    normalize_job(engine, first.lease, first.job_id)
    summary = normalize_job(engine, second.lease, second.job_id)
    store, ref = resolve(summary.results_ref, engine=engine)
    store.delete(ref)
    assert summary.kept_locally and summary.results_path.is_file()
    target = tmp_path / "out.jsonl"
    code, out, err = invoke(db_url, "results", "eval", "-o", str(target))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: results of job {second.job_id}: {ref.label} is ")
    assert "missing" in err or "not in the database" in err
    assert len(err.splitlines()) == 1
    assert not target.exists()


def test_damaged_stored_results_are_never_exported(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Stored results whose bytes no longer match their recorded sha256 stop the export before
    any line is written."""
    job = downloaded_job(engine, tmp_path, [input_line("a")], output=[ok_line("a", answer("a"))])
    summary = normalize_job(engine, job.lease, job.job_id)
    store, ref = resolve(summary.results_ref, engine=engine)
    if not isinstance(store, LocalFolderStore):
        pytest.skip("damages the file of a folder store (the database store's own tests cover it)")
    store.path_of(ref.sha256).write_bytes(b'{"custom_id": "a", "line_number": 1}\n')
    target = tmp_path / "out.jsonl"
    code, out, err = invoke(db_url, "results", "eval", "-o", str(target))
    assert (code, out) == (1, "")
    assert f"results of job {job.job_id}: {ref.label} is damaged" in err
    assert not target.exists()
