"""`ledger retry` keeps the run's limits, picks by status, HTTP status or error code, starts while
other jobs of the run still run, is held under --dry-run, and keeps each request's history."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import func, select

from cli import cli
from ledger import Ledger
from ledger.core.models import Job, JobParent, Request, RequestAttempt

FAST = {"jitter": 0.0}


def write_prompts(path: Path, count: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"q{i:03d}", "prompt": f"say {i}"}) + "\n" for i in range(count))
    )
    return path


def ledger_cli(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), *args], catch_exceptions=False
    )


def open_ledger(tmp_path: Path, emulator: Any) -> Ledger:
    return Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    )


def test_a_retry_keeps_the_runs_limits_records_tokens_parents_and_history(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Half of each 4-request job expires; the retry (a dry run, held) cuts the 6 expired
    requests into jobs of at most 4 with their estimated tokens, the first merged from two
    parents and recording both; once sent, the earlier `batch_expired` stays queryable."""
    write_prompts(tmp_path / "qs.jsonl", 12)
    emulator.configure(scenario="expire", partial_fraction=0.5)
    ledger = open_ledger(tmp_path, emulator)
    ledger.submit(tmp_path / "qs.jsonl", run="lim", model="gpt-4o-mini", max_requests=4)
    ledger.reconcile(run="lim", until_done=True, timeout=60, interval=0.01, **FAST)
    assert Counter(r.status for r in ledger.results("lim")) == {"succeeded": 6, "expired": 6}

    outcome = ledger_cli(tmp_path, "retry", "lim", "--dry-run", "--json")
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads(outcome.output)
    assert summary["requests"] == 6 and summary["held"] and not summary["sent"]
    assert [job["requests"] for job in summary["jobs"]] == [4, 2]
    assert len(summary["jobs"][0]["parents"]) == 2
    with ledger.engine.connect() as connection:
        retry_jobs = connection.execute(
            select(Job.id, Job.request_count, Job.est_input_tokens, Job.held_reason)
            .where(Job.parent_job_id.is_not(None))
            .order_by(Job.id)
        ).all()
        for job in retry_jobs:
            carried = connection.execute(
                select(func.sum(Request.est_input_tokens)).where(Request.job_id == job.id)
            ).scalar_one()
            assert carried is not None and job.est_input_tokens == carried > 0
            assert job.held_reason == "dry run"
        parents = connection.execute(
            select(JobParent.job_id, JobParent.parent_job_id).order_by(JobParent.parent_job_id)
        ).all()
    assert [sorted(p for j, p in parents if j == job.id) for job in retry_jobs] == [
        sorted(job["parents"]) for job in summary["jobs"]
    ]

    # Held: a reconcile pass sends nothing; `ledger send` releases them.
    emulator.configure(scenario="normal")
    ledger.reconcile(run="lim", until_done=True, timeout=60, interval=0.01, **FAST)
    with ledger.engine.connect() as connection:
        assert {
            state
            for (state,) in connection.execute(
                select(Job.state).where(Job.parent_job_id.is_not(None))
            )
        } == {"built"}
    sent = ledger_cli(tmp_path, "send", "lim", "--base-url", emulator.base_url, "--poll-min", "0")
    assert sent.exit_code == 0, sent.output
    ledger.reconcile(run="lim", until_done=True, timeout=60, interval=0.01, **FAST)
    assert {r.status for r in ledger.results("lim")} == {"succeeded"}

    # The documented query: every earlier outcome of a request, beside its latest.
    with ledger.engine.connect() as connection:
        history = connection.exec_driver_sql(
            "SELECT r.custom_id, a.job_id, a.status, a.error_code, a.retry_job_id, r.status "
            "FROM request_attempts a JOIN requests r ON r.id = a.request_id "
            "ORDER BY r.line_number"
        ).all()
        assert connection.execute(select(func.count()).select_from(RequestAttempt)).scalar() == 6
    assert len(history) == 6
    assert {(row[2], row[3], row[5]) for row in history} == {
        ("expired", "batch_expired", "succeeded")
    }
    ledger.close()


def test_only_picks_by_http_status_class_and_code_and_a_retry_leaves_running_jobs_alone(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Every request fails (400, 429 or 500); `--only 429,5xx` takes exactly the 429s and 500s
    while another job of the run is still in flight; `--only context_length_exceeded` takes the
    400s by their error code; with nothing left, retry says so and exits 0."""
    write_prompts(tmp_path / "qs.jsonl", 16)
    # The run's second job stays in flight for good: its file name carries its job id.
    emulator.configure(
        scenario="all_fail",
        scenario_rules=[{"file_name_contains": "ledger-job2-", "scenario": "slow_finalizing"}],
        slow_finalizing_stages=100_000,
    )
    ledger = open_ledger(tmp_path, emulator)
    ledger.submit(tmp_path / "qs.jsonl", run="only", model="gpt-4o-mini", max_requests=8)
    states: dict[int, str] = {}
    for _ in range(40):
        ledger.reconcile(run="only", jitter=0.0)
        with ledger.engine.connect() as connection:
            states = dict(connection.execute(select(Job.id, Job.state)).all())
        if states[1] == "normalized":
            break
    assert states[1] == "normalized" and states[2] != "normalized"
    with ledger.engine.connect() as connection:
        failed = connection.execute(
            select(Request.custom_id, Request.http_status, Request.error_code).where(
                Request.job_id == 1
            )
        ).all()
    assert {row.http_status for row in failed} <= {400, 429, 500} and len(failed) == 8
    transient = sorted(row.custom_id for row in failed if row.http_status in (429, 500))
    invalid = sorted(row.custom_id for row in failed if row.http_status == 400)

    emulator.configure(scenario="normal", scenario_rules=[])
    outcome = ledger_cli(tmp_path, "retry", "only", "--only", "429,5xx", "--dry-run", "--json")
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.output)["requests"] == len(transient)
    with ledger.engine.connect() as connection:
        moved = connection.execute(
            select(Request.custom_id).where(Request.job_id > 2).order_by(Request.custom_id)
        ).scalars()
        assert list(moved) == transient

    if invalid:
        by_code = ledger_cli(
            tmp_path, "retry", "only", "--only", "context_length_exceeded", "--dry-run"
        )
        assert by_code.exit_code == 0, by_code.output
        assert f"dry run: {len(invalid)} request(s) recorded for retry, held" in by_code.output

    nothing = ledger_cli(tmp_path, "retry", "only", "--only", "failed")
    assert nothing.exit_code == 0, nothing.output
    assert "nothing to retry" in nothing.output
    assert "not normalized yet are left alone" in nothing.output
    ledger.close()


def test_only_refuses_succeeded_and_an_unknown_run_is_exit_2(tmp_path: Path) -> None:
    """`--only succeeded` is refused in one line (exit 2), as is a run the ledger lacks."""
    refused = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "l.db"), "retry", "x", "--only", "succeeded"]
    )
    assert refused.exit_code == 2 and "--only succeeded" in refused.output
    unknown = CliRunner().invoke(cli, ["--db", str(tmp_path / "l.db"), "retry", "x"])
    assert unknown.exit_code == 2 and "no run named 'x'" in unknown.output
