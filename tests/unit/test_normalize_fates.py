"""Every input request gets exactly one result, in input order, and its fate in the ledger:
partial batches, missing and unknown lines, conflicts, failed batches, crashes and lost leases."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from support.batchfiles import (
    CHAT,
    chat_body,
    downloaded_job,
    http_error_line,
    input_line,
    not_run_line,
    ok_line,
    read_jsonl,
    response_body,
)

from ledger.core.db import db_now
from ledger.core.models import Job, JobEvent, Request
from ledger.core.states import State
from ledger.core.store import StaleWrite, claim
from ledger.errors import LedgerError
from ledger.reconcile.downloads import finish_download
from ledger.results.normalize import normalize_job
from ledger.usage.pricing import Price, PriceTable

PRICES = PriceTable({"gpt-4o-mini": Price(0.075, 0.30, cached_input_per_million=0.0375)})


def request_rows(engine: Engine, run_id: int) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Request.custom_id,
                Request.status,
                Request.http_status,
                Request.error_code,
                Request.input_tokens,
                Request.output_tokens,
            )
            .where(Request.run_id == run_id)
            .order_by(Request.line_number)
        ).all()
    return [tuple(row) for row in rows]


def last_event(engine: Engine, job_id: int) -> tuple[str | None, str, dict[str, Any] | None]:
    with engine.connect() as connection:
        row = connection.execute(
            select(JobEvent.from_state, JobEvent.to_state, JobEvent.detail)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id.desc())
            .limit(1)
        ).one()
    return row.from_state, row.to_state, row.detail


def test_expired_batch_keeps_partial_results_in_input_order(engine: Engine, tmp_path: Path) -> None:
    """Shuffled lines come out in input order, one per request, each with its own status."""
    ids = [f"req-{n:03d}" for n in range(40)]
    output = [ok_line(cid, response_body([f"answer {cid}"])) for cid in ids[:30]]
    random.Random(7).shuffle(output)
    errors = [http_error_line(ids[30], 400), *(not_run_line(cid) for cid in ids[31:39])]
    random.Random(8).shuffle(errors)
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line(cid) for cid in ids],
        output=output,
        errors=errors,
        final_state=State.EXPIRED,
        first_line=101,
    )
    summary = normalize_job(engine, job.lease, job.job_id, prices=PRICES)
    records = read_jsonl(summary.results_path)
    assert summary.results_path == job.results_dir / "shard-0001.jsonl"
    assert [r["custom_id"] for r in records] == ids
    assert [r["line_number"] for r in records] == list(range(101, 141))
    assert [r["text"] for r in records[:30]] == [f"answer {cid}" for cid in ids[:30]]
    assert [r["status"] for r in records[30:]] == ["failed"] + ["expired"] * 8 + ["missing"]
    assert records[31]["error"]["code"] == "batch_expired"
    assert records[39]["error"]["code"] == "missing_result"
    assert summary.counts == {
        "succeeded": 30,
        "invalid": 0,
        "truncated": 0,
        "filtered": 0,
        "failed": 1,
        "expired": 8,
        "cancelled": 0,
        "missing": 1,
        "unavailable": 0,
    }
    assert (summary.quarantined, summary.conflicts) == (0, 0)


def test_cancelled_batch_marks_unrun_requests_cancelled(engine: Engine, tmp_path: Path) -> None:
    """Requests a cancelled batch never ran are `cancelled`; those it finished keep their answer."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b"), input_line("c")],
        output=[ok_line("b", response_body(["done"]))],
        errors=[not_run_line("a", "batch_cancelled"), not_run_line("c", "batch_cancelled")],
        final_state=State.CANCELLED,
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    statuses = [(r["custom_id"], r["status"]) for r in read_jsonl(summary.results_path)]
    assert statuses == [("a", "cancelled"), ("b", "succeeded"), ("c", "cancelled")]
    assert request_rows(engine, job.run_id)[0][:4] == ("a", "cancelled", None, "batch_cancelled")


def test_requests_table_job_usage_cost_and_event_are_recorded(
    engine: Engine, tmp_path: Path
) -> None:
    """Each request row gets its fate; the job its totals, cost and results path; one event."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT), input_line("b", CHAT), input_line("c", CHAT)],
        output=[
            ok_line("a", chat_body("x", prompt_tokens=1000, completion_tokens=200)),
            ok_line(
                "c", chat_body("y", prompt_tokens=3000, completion_tokens=800, cached_tokens=2000)
            ),
        ],
        errors=[http_error_line("b", 500, "Server error.", error_type="server_error")],
        endpoint=CHAT,
    )
    summary = normalize_job(engine, job.lease, job.job_id, prices=PRICES)
    assert request_rows(engine, job.run_id) == [
        ("a", "succeeded", 200, None, 1000, 200),
        ("b", "failed", 500, "server_error", None, None),
        ("c", "succeeded", 200, None, 3000, 800),
    ]
    expected_cost = (2000 * 0.075 + 2000 * 0.0375 + 1000 * 0.30) / 1_000_000
    assert summary.cost_usd == pytest.approx(expected_cost)
    with engine.connect() as connection:
        row = connection.execute(select(Job).where(Job.id == job.job_id)).one()
    assert row.state == "normalized"
    assert (row.input_tokens, row.output_tokens) == (4000, 1000)
    assert row.cost_usd == pytest.approx(expected_cost)
    assert row.results_path == str(summary.results_path)
    from_state, to_state, detail = last_event(engine, job.job_id)
    assert (from_state, to_state) == ("downloaded", "normalized")
    assert detail is not None
    assert detail["counts"]["succeeded"] == 2 and detail["counts"]["failed"] == 1
    assert (detail["quarantined"], detail["conflicts"]) == (0, 0)


def test_unknown_model_has_no_cost_rather_than_zero(engine: Engine, tmp_path: Path) -> None:
    """A model missing from the price table leaves the cost unknown (NULL)."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        output=[ok_line("a", response_body())],
        model="some-model",
    )
    assert normalize_job(engine, job.lease, job.job_id, prices=PRICES).cost_usd is None
    with engine.connect() as connection:
        cost = connection.execute(select(Job.cost_usd).where(Job.id == job.job_id)).scalar()
    assert cost is None


def test_all_failed_with_no_output_file(engine: Engine, tmp_path: Path) -> None:
    """With only an error file, every request fails with its own error."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=None,
        errors=[http_error_line("b", 400, "bad b"), http_error_line("a", 400, "bad a")],
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    records = read_jsonl(summary.results_path)
    assert [(r["custom_id"], r["error"]["message"]) for r in records] == [
        ("a", "bad a"),
        ("b", "bad b"),
    ]
    assert summary.counts["failed"] == 2 and summary.input_tokens == 0


def test_validation_failed_batch_fails_every_request_with_its_errors(
    engine: Engine, tmp_path: Path
) -> None:
    """A batch rejected as a whole fails each request with the batch's errors, none missing."""
    errors = {
        "object": "list",
        "data": [
            {
                "code": "invalid_url",
                "message": "URL must be /v1/responses.",
                "param": "url",
                "line": 2,
            }
        ],
    }
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=None,
        errors=None,
        final_state=State.FAILED,
        final_detail={"errors": errors},
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    records = read_jsonl(summary.results_path)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert records[0]["error"] == {
        "code": "invalid_url",
        "message": "line 2: URL must be /v1/responses.",
    }
    assert summary.counts["missing"] == 0
    assert request_rows(engine, job.run_id)[1][:4] == ("b", "failed", None, "invalid_url")


def test_validation_failure_without_detail_uses_the_jobs_last_error(
    engine: Engine, tmp_path: Path
) -> None:
    """With no errors in the event, the job's last_error is the message."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        output=None,
        errors=None,
        final_state=State.FAILED,
        last_error="input file has an invalid line",
    )
    record = read_jsonl(normalize_job(engine, job.lease, job.job_id).results_path)[0]
    assert record["status"] == "failed"
    assert record["error"] == {"code": "batch_failed", "message": "input file has an invalid line"}


def test_unknown_and_unreadable_lines_are_quarantined_not_dropped(
    engine: Engine, tmp_path: Path
) -> None:
    """A line for no input request, or not JSON at all, goes to the quarantine file."""
    stray = ok_line("not-in-input", response_body())
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        output=[ok_line("a", response_body()), stray, '{"truncated": '],
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    assert [r["custom_id"] for r in read_jsonl(summary.results_path)] == ["a"]
    assert summary.quarantined == 2
    assert summary.quarantine_path == job.results_dir / "shard-0001.quarantine.jsonl"
    assert summary.quarantine_path is not None
    quarantined = read_jsonl(summary.quarantine_path)
    assert [q["custom_id"] for q in quarantined] == ["not-in-input", None]
    assert quarantined[0]["reason"] == "custom_id not in input"
    assert quarantined[0]["source_line"] == 2 and quarantined[1]["line"] == '{"truncated": '
    assert last_event(engine, job.job_id)[2]["quarantined"] == 2  # type: ignore[index]


def test_conflicting_lines_keep_the_success_and_are_counted(engine: Engine, tmp_path: Path) -> None:
    """Two lines for one request: the success is kept over the failure, and it is flagged."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b"), input_line("c")],
        output=[ok_line("b", response_body(["b wins"])), ok_line("c", response_body(["c first"]))],
        errors=[
            http_error_line("a", 500, "first try failed"),
            http_error_line("b", 500, "b lost"),
            not_run_line("a"),
            ok_line("a", response_body(["a late success"])),
            ok_line("c", response_body(["c second"])),
        ],
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    records = {r["custom_id"]: r for r in read_jsonl(summary.results_path)}
    assert records["a"]["text"] == "a late success" and records["a"]["status"] == "succeeded"
    assert records["b"]["text"] == "b wins"
    assert records["c"]["text"] == "c first"  # a tie keeps the first line read
    assert (summary.conflicts, summary.conflict_custom_ids) == (3, ("a", "b", "c"))
    detail = last_event(engine, job.job_id)[2]
    assert detail is not None
    assert (detail["conflicts"], detail["conflict_custom_ids"]) == (3, ["a", "b", "c"])


def test_a_zip_delivered_output_is_flattened_at_download_then_read_like_jsonl(
    engine: Engine, tmp_path: Path
) -> None:
    """An output file that is a ZIP archive of JSONL is flattened, member by member, when it is
    downloaded (`finish_download`, the one ZIP reader), and then normalizes like JSONL."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=[ok_line("a", response_body(["from zip a"])), ok_line("b", response_body(["b"]))],
    )
    with engine.connect() as connection:
        stored = connection.execute(select(Job.output_path).where(Job.id == job.job_id)).scalar()
    output = Path(str(stored))
    lines = output.read_text().splitlines(keepends=True)
    delivered = output.with_suffix(".zip")
    with zipfile.ZipFile(delivered, "w") as archive:
        archive.writestr("part-0.jsonl", lines[0])
        archive.writestr("part-1.jsonl", lines[1])
    assert finish_download(delivered, output) == 2
    records = read_jsonl(normalize_job(engine, job.lease, job.job_id).results_path)
    assert [r["text"] for r in records] == ["from zip a", "b"]


def test_lost_lease_writes_no_request_row_and_a_rerun_rewrites_the_same_file(
    engine: Engine, tmp_path: Path
) -> None:
    """A crash before the transaction (here: a lapsed lease) changes no row; rerunning is safe."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=[ok_line("b", response_body(["b"]))],
        errors=[http_error_line("a")],
    )
    with engine.begin() as connection:
        connection.execute(
            update(Job).where(Job.id == job.job_id).values(lease_expires_at=db_now() - 1)
        )
    with pytest.raises(StaleWrite):
        normalize_job(engine, job.lease, job.job_id)
    first = (job.results_dir / "shard-0001.jsonl").read_bytes()
    assert [row[1] for row in request_rows(engine, job.run_id)] == ["pending", "pending"]
    # A killed attempt also leaves its scratch directory behind; the next attempt sweeps it.
    (job.results_dir / ".normalize-shard-0001-killed").mkdir()
    with engine.begin() as connection:
        [lease] = claim(connection, "next", states=[State.DOWNLOADED], limit=1, due_only=False)
    summary = normalize_job(engine, lease, job.job_id)
    assert summary.results_path.read_bytes() == first
    assert [row[1] for row in request_rows(engine, job.run_id)] == ["failed", "succeeded"]
    assert sorted(p.name for p in job.results_dir.iterdir()) == ["shard-0001.jsonl"]


def test_a_job_not_downloaded_is_refused(engine: Engine, tmp_path: Path) -> None:
    """Normalizing twice is refused: the job already moved on."""
    job = downloaded_job(
        engine, tmp_path, [input_line("a")], output=[ok_line("a", response_body())]
    )
    normalize_job(engine, job.lease, job.job_id)
    with pytest.raises(StaleWrite, match="normalized, not downloaded"):
        normalize_job(engine, job.lease, job.job_id)


def test_an_input_request_without_a_ledger_row_is_an_error(engine: Engine, tmp_path: Path) -> None:
    """The ledger must know every input request; a missing row stops before anything is written."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a")],
        output=[ok_line("a", response_body())],
        requests="keep",
    )
    with pytest.raises(LedgerError, match="1 input requests have no row"):
        normalize_job(engine, job.lease, job.job_id)
    assert not (job.results_dir / "shard-0001.jsonl").exists()
