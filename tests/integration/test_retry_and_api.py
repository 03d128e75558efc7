"""The Python API end to end, and `ledger retry`: partial results completed by a retry job, every
input row succeeding exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from ledger import Ledger, Result
from ledger.core.models import Job
from ledger.errors import InputError

FAST = {"jitter": 0.0}


def write_prompts(path: Path, count: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"q{i:03d}", "prompt": f"say {i}"}) + "\n" for i in range(count))
    )
    return path


def test_the_python_api_submits_reconciles_and_reads_typed_results(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Ledger.open, submit, reconcile(until_done=True), results: typed, in input order."""
    write_prompts(tmp_path / "qs.jsonl", 7)
    with Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    ) as ledger:
        plan = ledger.submit(tmp_path / "qs.jsonl", run="api", model="gpt-4o-mini", max_requests=3)
        assert len(plan.jobs) == 3
        ledger.reconcile(run="api", until_done=True, timeout=60, interval=0.01, **FAST)
        results = list(ledger.results("api"))
        [status] = ledger.status("api")
    assert [r.custom_id for r in results] == [f"q{i:03d}" for i in range(7)]
    assert all(isinstance(r, Result) and r.succeeded for r in results)
    assert results[0].text and results[0].usage and results[0].usage.output_tokens > 0
    assert [r.line_number for r in results] == list(range(1, 8))
    assert status["job_states"] == {"normalized": 3}
    assert status["request_statuses"] == {"succeeded": 7}


@pytest.mark.parametrize("scenario", ["expire", "cancel"])
def test_retry_completes_partial_results_with_each_row_succeeding_once(
    tmp_path: Path, emulator: Any, api_key: str, scenario: str
) -> None:
    """Expired or cancelled part way, then `ledger retry`: every row succeeded exactly once."""
    write_prompts(tmp_path / "qs.jsonl", 12)
    emulator.configure(scenario=scenario)
    ledger = Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    )
    ledger.submit(tmp_path / "qs.jsonl", run="partial", model="gpt-4o-mini", max_requests=6)
    ledger.reconcile(run="partial", until_done=True, timeout=60, interval=0.01, **FAST)
    first = Counter(r.status for r in ledger.results("partial"))
    not_run = "expired" if scenario == "expire" else "cancelled"
    assert first["succeeded"] > 0 and first[not_run] > 0
    assert first["succeeded"] + first[not_run] == 12

    emulator.configure(scenario="normal")
    outcome = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "ledger.db"),
            "retry",
            "partial",
            "--base-url",
            emulator.base_url,
            "--poll-min",
            "0",
        ],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"{first[not_run]} request(s)" in outcome.output
    ledger.reconcile(run="partial", until_done=True, timeout=60, interval=0.01, **FAST)

    results = list(ledger.results("partial"))
    assert [r.custom_id for r in results] == [f"q{i:03d}" for i in range(12)]
    assert {r.status for r in results} == {"succeeded"}
    with ledger.engine.connect() as connection:
        retry_jobs = connection.execute(
            select(Job.parent_job_id, Job.request_count).where(Job.parent_job_id.is_not(None))
        ).all()
    assert sum(count for _, count in retry_jobs) == first[not_run]
    # Nothing that had succeeded was sent again: requests sent = 12 + the ones retried.
    sent = sum(
        1
        for p in (tmp_path / "runs" / "partial" / "batch_inputs").glob("shard-*.jsonl")
        for _ in p.open()
    )
    assert sent == 12 + first[not_run]
    [status] = ledger.status("partial")
    assert status["request_statuses"] == {"succeeded": 12}
    ledger.close()


def test_retry_of_a_run_in_flight_or_with_nothing_to_retry_records_nothing(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A retry leaves jobs not normalized alone, and nothing to retry is a plan with no jobs
    and a note, not an error; an unknown run is an InputError."""
    write_prompts(tmp_path / "qs.jsonl", 2)
    ledger = Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    )
    ledger.submit(tmp_path / "qs.jsonl", run="r", model="gpt-4o-mini")
    running = ledger.retry("r")
    assert running.jobs == [] and running.note is not None
    assert "1 job(s) not normalized yet are left alone" in running.note
    ledger.reconcile(run="r", until_done=True, timeout=60, interval=0.01, **FAST)
    done = ledger.retry("r")
    assert done.jobs == [] and done.note is not None and "nothing to retry" in done.note
    with pytest.raises(InputError, match="no run named"):
        ledger.retry("nope")
    ledger.close()
