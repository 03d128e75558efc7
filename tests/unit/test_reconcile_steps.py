"""The reconciler's steps against the in-memory fake provider: intent before side effects,
adoption after lost replies, backoff on transient errors, retry of the token limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.base import FatalError, NotFound, OutcomeUnknown, TransientError
from adapters.fake import FakeProvider
from ledger.core.models import Job, JobEvent, Request
from ledger.core.states import TERMINAL, State
from ledger.reconcile.engine import ACTIVE_STATES, STEPS, PauseLoop, ReconcileOptions, Reconciler


def fast_options() -> ReconcileOptions:
    return ReconcileOptions(poll_min=0.0, poll_max=0.0, jitter=0.0)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def reconciler(engine: Engine, provider: FakeProvider) -> Iterator[Reconciler]:
    yield Reconciler(engine, fast_options(), provider_for=lambda _n, _u: provider)


def job(engine: Engine, job_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(
            connection.execute(select(Job.__table__).where(Job.id == job_id)).mappings().one()
        )


def moves(engine: Engine, job_id: int) -> list[tuple[str | None, str]]:
    with engine.connect() as connection:
        return [
            (row.from_state, row.to_state)
            for row in connection.execute(
                select(JobEvent.from_state, JobEvent.to_state)
                .where(JobEvent.job_id == job_id)
                .order_by(JobEvent.id)
            )
        ]


def events(engine: Engine, job_id: int) -> list[tuple[str | None, str, Any]]:
    with engine.connect() as connection:
        return [
            (row.from_state, row.to_state, row.detail)
            for row in connection.execute(
                select(JobEvent.from_state, JobEvent.to_state, JobEvent.detail)
                .where(JobEvent.job_id == job_id)
                .order_by(JobEvent.id)
            )
        ]


def run_until_settled(reconciler: Reconciler, passes: int = 20) -> None:
    for _ in range(passes):
        reconciler.run_pass()
        if reconciler.pending_jobs() == 0:
            return
    raise AssertionError("jobs did not settle")


def test_every_active_state_has_a_step_and_no_other_state_does() -> None:
    """The STEPS table and ACTIVE_STATES name the same states, each once, and only the terminal
    states are left without a step."""
    assert len(set(ACTIVE_STATES)) == len(ACTIVE_STATES)
    assert set(STEPS) == set(ACTIVE_STATES)
    assert set(State) - set(STEPS) == TERMINAL


def test_a_job_goes_from_built_to_normalized(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """One job walks the whole lifecycle, one event per step, one upload and one batch."""
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b", "c"])
    run_until_settled(reconciler)
    assert moves(engine, job_id) == [
        (None, "built"),
        ("built", "uploaded"),
        ("uploaded", "submitted"),
        ("submitted", "in_progress"),
        ("in_progress", "completed"),
        ("completed", "downloaded"),
        ("downloaded", "normalized"),
    ]
    assert provider.created() == {str(job_id): 1}
    assert sum(1 for name, _ in provider.files.values() if name.startswith("ledger-job")) == 1
    row = job(engine, job_id)
    assert row["lease_owner"] is None and row["attempt"] == 1
    assert row["base_url"] == "fake://provider"
    with engine.connect() as connection:
        statuses = connection.execute(select(Request.status)).scalars().all()
    assert statuses == ["succeeded"] * 3


def test_a_lost_upload_reply_is_adopted_not_repeated(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """The file exists but the reply was lost: the next pass finds it by its token."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    provider.fail_next("upload_input", lambda: OutcomeUnknown("timed out"), after_effect=True)
    reconciler.run_pass()
    row = job(engine, job_id)
    assert row["state"] == "built" and row["submit_token"] is not None
    assert "timed out" in str(row["last_error"])
    run_until_settled(reconciler)
    assert len(provider.files) >= 1
    uploads = [name for name, _ in provider.files.values() if name.startswith("ledger-job")]
    assert uploads == [f"ledger-job{job_id}-{row['input_sha256'][:16]}-{row['submit_token']}.jsonl"]
    assert provider.created() == {str(job_id): 1}


def test_a_lost_create_reply_is_adopted_not_repeated(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """The batch exists but the reply was lost: the next pass adopts it by its metadata."""
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    provider.fail_next(
        "create_batch", lambda: OutcomeUnknown("connection reset"), after_effect=True
    )
    reconciler.run_pass()
    assert job(engine, job_id)["state"] == "uploaded"
    run_until_settled(reconciler)
    assert provider.created() == {str(job_id): 1}
    adopted = [e for e in moves(engine, job_id) if e == ("uploaded", "submitted")]
    assert len(adopted) == 1
    assert job(engine, job_id)["state"] == "normalized"


def test_transient_errors_change_no_state_and_back_off(
    engine: Engine, provider: FakeProvider, tmp_path: Path
) -> None:
    """429 and 5xx before any effect leave the state alone and schedule a later check."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reconciler = Reconciler(
        engine,
        ReconcileOptions(poll_min=30, poll_max=60, jitter=0),
        provider_for=lambda _n, _u: provider,
    )
    provider.fail_next("upload_input", lambda: TransientError("429 slow down", retry_after=7))
    reconciler.run_pass()
    row = job(engine, job_id)
    assert row["state"] == "built" and row["lease_owner"] is None
    assert row["next_check_at"] is not None and "429" in str(row["last_error"])
    assert moves(engine, job_id) == [(None, "built")]
    assert reconciler.run_pass().claimed == 0  # not due again for 7 s


def test_token_limit_failure_goes_back_to_uploaded_and_resubmits(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """A batch failed for the enqueued-token limit is created again, with a new token."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    provider.plan("token_limit", polls=1)
    run_until_settled(reconciler)
    history = moves(engine, job_id)
    assert ("submitted", "failed") in history and ("failed", "uploaded") in history
    assert history[-1] == ("downloaded", "normalized")
    assert provider.created() == {str(job_id): 2}
    tokens = {b.metadata["ledger_token"] for b in provider.batches.values()}
    assert len(tokens) == 2
    assert job(engine, job_id)["attempt"] == 2


def test_a_batch_not_visible_yet_is_polled_again_not_recreated(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """A 404 right after create is retried within the grace window."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reconciler.run_pass()  # upload + create
    provider.fail_next("get_batch", lambda: NotFound("no such batch"))
    reconciler.run_pass()
    row = job(engine, job_id)
    assert row["state"] == "submitted" and "not visible yet" in str(row["last_error"])
    run_until_settled(reconciler)
    assert provider.created() == {str(job_id): 1}


def test_refused_credentials_pause_the_loop(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """A 401 stops the loop with one message and changes no state."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    provider.fail_next("upload_input", lambda: FatalError("the provider refused the credentials"))
    with pytest.raises(PauseLoop, match="refused the credentials"):
        reconciler.run_loop(interval=0.01, until_done=True)
    assert job(engine, job_id)["state"] == "built"


@pytest.mark.parametrize("outcome", ["expired", "cancelled", "all_failed", "failed"])
def test_partial_and_failed_batches_are_downloaded_and_normalized(
    engine: Engine,
    reconciler: Reconciler,
    provider: FakeProvider,
    tmp_path: Path,
    outcome: str,
) -> None:
    """Expired and cancelled keep their partial results; failed ones still end normalized."""
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b", "c", "d"])
    provider.plan(outcome)
    run_until_settled(reconciler)
    final_provider_state = {"all_failed": "completed"}.get(outcome, outcome)
    assert ("in_progress", final_provider_state) in moves(engine, job_id)
    assert job(engine, job_id)["state"] == "normalized"
    with engine.connect() as connection:
        statuses = sorted(connection.execute(select(Request.status)).scalars())
    expected = {
        "expired": ["expired", "expired", "succeeded", "succeeded"],
        "cancelled": ["cancelled", "cancelled", "succeeded", "succeeded"],
        "all_failed": ["failed"] * 4,
        "failed": ["failed"] * 4,
    }[outcome]
    assert statuses == expected


def test_a_changed_shard_is_refused_before_upload(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """A shard edited after it was built is never sent; when it cannot be rebuilt (here the
    run's input is gone) the job waits in `built` with both reasons in last_error."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    Path(str(job(engine, job_id)["input_path"])).write_text('{"tampered": true}\n')
    reconciler.run_pass()
    waiting = job(engine, job_id)
    assert waiting["state"] == "built"
    assert "changed since it was built" in str(waiting["last_error"])
    assert "cannot be rebuilt" in str(waiting["last_error"])
    assert not any(name.startswith("ledger-job") for name, _ in provider.files.values())
    assert provider.batches == {}


def test_an_unsafe_result_archive_is_refused_and_the_job_still_ends(
    engine: Engine, reconciler: Reconciler, provider: FakeProvider, tmp_path: Path
) -> None:
    """A zip-slip archive is never extracted; its requests end missing, the reason on record."""
    import zipfile

    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    download = provider.download_file

    def evil_download(file_id: str, destination: Path) -> int:
        if file_id == provider.batches[next(iter(provider.batches))].output_file_id:
            with zipfile.ZipFile(destination, "w") as archive:
                archive.writestr("../../escape.jsonl", '{"custom_id": "a"}\n')
            return destination.stat().st_size
        return download(file_id, destination)

    provider.download_file = evil_download  # type: ignore[method-assign]
    run_until_settled(reconciler)
    row = job(engine, job_id)
    assert row["state"] == "normalized" and "zip slip" in str(row["last_error"])
    assert not (tmp_path.parent / "escape.jsonl").exists()
    with engine.connect() as connection:
        statuses = connection.execute(select(Request.status)).scalars().all()
    assert statuses == ["missing", "missing"]
