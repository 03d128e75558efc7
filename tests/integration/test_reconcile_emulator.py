"""The whole lifecycle over real HTTP: the real SDK, the OpenAI adapter and the emulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done as drive_until_done
from support.factories import add_built_job
from support.ledger_reads import job_row
from support.ledger_reads import statuses as request_statuses

from ledger.core.models import Job, JobEvent
from ledger.reconcile.engine import ReconcileOptions, Reconciler


def reconcile_until_done(engine: Engine, emulator: Any, **options: Any) -> None:
    drive_until_done(engine, emulator.base_url, **options)


def batches_per_job(emulator: Any) -> dict[str, int]:
    return emulator.stats()["batches"]["by_metadata"].get("ledger_job", {})


@pytest.mark.parametrize("endpoint", ["/v1/responses", "/v1/chat/completions", "/v1/embeddings"])
def test_each_endpoint_goes_from_built_to_normalized(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path, endpoint: str
) -> None:
    """Upload, create, poll, download and normalize, for each endpoint, with one batch."""
    model = "text-embedding-3-small" if endpoint == "/v1/embeddings" else "gpt-4o-mini"
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b", "c"], endpoint=endpoint, model=model)
    reconcile_until_done(engine, emulator)
    job = job_row(engine, job_id)
    assert job.state == "normalized"
    assert job.base_url == emulator.base_url
    assert request_statuses(engine, job_id) == ["succeeded"] * 3
    assert batches_per_job(emulator) == {str(job_id): 1}
    assert Path(job.output_path).exists() and job.error_path is None


@pytest.mark.parametrize(
    ("scenario", "provider_state", "statuses"),
    [
        ("fail_validation", "failed", {"failed"}),
        ("expire", "expired", {"succeeded", "expired"}),
        ("cancel", "cancelled", {"succeeded", "cancelled"}),
        ("all_fail", "completed", {"failed"}),
        ("zipped_output", "completed", {"succeeded"}),
        ("slow_finalizing", "completed", {"succeeded"}),
    ],
)
def test_each_provider_outcome_ends_normalized_with_every_request_accounted_for(
    engine: Engine,
    emulator: Any,
    api_key: str,
    tmp_path: Path,
    scenario: str,
    provider_state: str,
    statuses: set[str],
) -> None:
    """Failed, expired, cancelled, all-failed and zipped batches all end normalized."""
    emulator.configure(scenario=scenario)
    ids = [f"q{i}" for i in range(8)]
    job_id = add_built_job(engine, tmp_path, "r", ids)
    reconcile_until_done(engine, emulator)
    job = job_row(engine, job_id)
    assert job.state == "normalized"
    with engine.connect() as connection:
        reached = set(
            connection.execute(select(JobEvent.to_state).where(JobEvent.job_id == job_id)).scalars()
        )
    assert provider_state in reached
    found = request_statuses(engine, job_id)
    assert len(found) == len(ids) and set(found) == statuses
    if scenario == "all_fail":
        assert job.output_file_id is None and job.error_file_id is not None
    assert batches_per_job(emulator) == {str(job_id): 1}


def test_token_limit_failure_is_resubmitted_not_failed(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """The first create fails for the enqueued-token limit; the job creates a second batch."""
    emulator.configure(scenario="token_limit_exceeded", token_limit_failures=1)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    reconcile_until_done(engine, emulator)
    job = job_row(engine, job_id)
    assert job.state == "normalized" and job.attempt == 2
    assert request_statuses(engine, job_id) == ["succeeded", "succeeded"]
    assert batches_per_job(emulator) == {str(job_id): 2}


def test_fault_storms_lost_replies_and_cut_downloads_still_end_right(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """500s, 429s, dropped replies, cut-off downloads and late-visible batches: one batch each."""
    emulator.configure(
        scenario="not_found_grace",
        faults=[
            {"kind": "drop_response", "route": "upload_file", "times": 2},
            {"kind": "drop_response", "route": "create_batch", "times": 2},
            {"kind": "truncate_download", "route": "file_content", "times": 2},
            {"kind": "http_500", "every": 4},
            {"kind": "http_429", "every": 7, "seconds": 0.01},
        ],
    )
    job_ids = [
        add_built_job(engine, tmp_path, "r", [f"j{s}-{i}" for i in range(5)], shard_index=s)
        for s in range(1, 5)
    ]
    reconcile_until_done(engine, emulator, concurrency=4)
    stats = emulator.stats()
    assert stats["faults"]["drop_response"] == 4
    assert stats["faults"]["truncate_download"] == 2
    assert stats["faults"]["http_500"] > 0 and stats["faults"]["http_429"] > 0
    assert batches_per_job(emulator) == {str(j): 1 for j in job_ids}
    assert all(n == 1 for n in stats["files"]["by_name"].values())
    for job_id in job_ids:
        assert job_row(engine, job_id).state == "normalized"
        assert request_statuses(engine, job_id) == ["succeeded"] * 5


def test_a_spurious_404_after_the_grace_loses_no_result(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """A batch that answers 404 once after the grace is polled again, not failed: every result
    is downloaded and the job records no failure."""
    emulator.configure(scenario="not_found_grace", not_found_gets=2)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b", "c"])
    reconcile_until_done(engine, emulator, not_found_grace=0.0)
    assert job_row(engine, job_id).state == "normalized"
    assert request_statuses(engine, job_id) == ["succeeded"] * 3
    with engine.connect() as connection:
        moves = connection.execute(select(JobEvent.to_state).where(JobEvent.job_id == job_id))
        assert "failed" not in set(moves.scalars())
    assert batches_per_job(emulator) == {str(job_id): 1}


def test_max_enqueued_tokens_holds_jobs_back(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """With a queue cap of one job's tokens, jobs of one model are in flight one at a time."""
    emulator.configure(stage_seconds=0.0, polls_per_stage=3)
    for shard in (1, 2, 3):
        add_built_job(engine, tmp_path, "r", [f"s{shard}-a", f"s{shard}-b"], shard_index=shard)
    # Each job estimates 20 tokens (factories.add_built_job); a cap of 30 admits one at a time.
    reconciler = Reconciler(
        engine,
        ReconcileOptions(
            poll_min=0, poll_max=0.02, jitter=0, base_url=emulator.base_url, max_enqueued_tokens=30
        ),
    )
    most_in_flight = 0
    deadline = time.monotonic() + 60
    while reconciler.pending_jobs():
        assert time.monotonic() < deadline
        reconciler.run_pass()
        with engine.connect() as connection:
            in_flight = connection.execute(
                select(Job.id).where(Job.state.in_(["submitted", "in_progress"]))
            ).all()
        most_in_flight = max(most_in_flight, len(in_flight))
    assert most_in_flight == 1
    assert emulator.stats()["batches"]["created"] == 3
