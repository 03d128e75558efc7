"""The stored values and indexes behind the queries a user runs at scale (migration 0005): each
request row keeps its own cost, and `ledger status` and `run_progress` count what a full count
of the rows would, while counting only the statuses that are not the run's largest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from support.anthropicfiles import message, succeeded
from support.batchfiles import CHAT, chat_body, downloaded_job, http_error_line, input_line, ok_line

from ledger.core.models import Request, Run
from ledger.query.report import status_report
from ledger.results.normalize import normalize_job


def test_each_request_row_records_its_own_cost(engine: Engine, tmp_path: Path) -> None:
    """claude-haiku-4-5: a cache write and a cache read are priced per request, on its row."""
    first = message(input_tokens=1_000, output_tokens=2_000, cache_creation_input_tokens=60_000)
    second = message(input_tokens=1_000, output_tokens=2_000, cache_read_input_tokens=100_000)
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT), input_line("b", CHAT)],
        output=[succeeded("a", first), succeeded("b", second)],
        errors=None,
        endpoint=CHAT,
        model="claude-haiku-4-5",
        provider="anthropic",
    )
    normalize_job(engine, job.lease, job.job_id)
    with engine.connect() as connection:
        costs = dict(connection.execute(select(Request.custom_id, Request.cost_usd)).all())
    # a: 1K x 0.50 + 60K x 0.625 + 2K x 2.50; b: 1K x 0.50 + 100K x 0.05 + 2K x 2.50 (per 1M)
    assert costs == {"a": pytest.approx(0.043), "b": pytest.approx(0.0105)}


def test_an_unanswered_or_unpriced_request_has_no_cost(engine: Engine, tmp_path: Path) -> None:
    """A failed request and a model without a price leave cost_usd NULL, never $0."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT), input_line("b", CHAT)],
        output=[ok_line("a", chat_body("x"))],
        errors=[http_error_line("b")],
        endpoint=CHAT,
        model="acme-1",
    )
    normalize_job(engine, job.lease, job.job_id)
    with engine.connect() as connection:
        assert connection.execute(select(Request.cost_usd)).scalars().all() == [None, None]


def full_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Request.status, func.count()).group_by(Request.status)
        ).all()
    return {status: count for status, count in sorted(rows)}


def progress(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT requests_succeeded, requests_failed, requests_not_run FROM run_progress")
        ).one()
    return row[0], row[1], row[2]


def test_status_and_run_progress_count_like_a_full_count(engine: Engine, tmp_path: Path) -> None:
    """Pending, then normalized with a failure: the same counts as counting every row."""
    inputs = [input_line(name, CHAT) for name in ("a", "b", "c", "d")]
    job = downloaded_job(
        engine,
        tmp_path,
        inputs,
        output=[ok_line(name, chat_body("x")) for name in ("a", "b", "c")],
        errors=[http_error_line("d")],
        endpoint=CHAT,
    )
    with engine.begin() as connection:
        # As `ledger submit` records it: the run knows how many requests it has.
        connection.execute(update(Run).values(request_count=4))
    [run] = status_report(engine)
    assert run["request_statuses"] == full_counts(engine) == {"pending": 4}
    assert progress(engine) == (0, 0, 0)
    normalize_job(engine, job.lease, job.job_id)
    [run] = status_report(engine)
    assert run["request_statuses"] == full_counts(engine) == {"failed": 1, "succeeded": 3}
    assert progress(engine) == (3, 1, 0)


def test_status_counts_rows_its_run_does_not_know_of(engine: Engine, tmp_path: Path) -> None:
    """A run whose request_count is lower than the rows it counted is counted row by row."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT), input_line("b", CHAT)],
        output=[ok_line("a", chat_body("x"))],
        errors=[http_error_line("b")],
        endpoint=CHAT,
    )
    normalize_job(engine, job.lease, job.job_id)
    with engine.begin() as connection:
        connection.execute(update(Run).values(request_count=0))
    [run] = status_report(engine)
    assert run["request_statuses"] == {"failed": 1, "succeeded": 1}
