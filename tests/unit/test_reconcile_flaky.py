"""The reconciler on a flaky provider: a spurious 404 loses no result, and a provider clock
that disagrees with ours makes no duplicate batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.base import NotFound, OutcomeUnknown
from adapters.fake import FakeProvider
from ledger.core.models import Job, Request
from ledger.reconcile.engine import ReconcileOptions, Reconciler


def reconciler_for(engine: Engine, provider: FakeProvider, **options: Any) -> Reconciler:
    settings: dict[str, Any] = {"poll_min": 0.0, "poll_max": 0.0, "jitter": 0.0}
    settings["not_found_grace"] = 0.0
    return Reconciler(
        engine, ReconcileOptions(**(settings | options)), provider_for=lambda _n, _u: provider
    )


def job(engine: Engine, job_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(Job.__table__).where(Job.id == job_id)).one()


def statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(Request.status)).scalars())


def settle(reconciler: Reconciler, passes: int = 20) -> None:
    for _ in range(passes):
        reconciler.run_pass()
        if reconciler.pending_jobs() == 0:
            return
    raise AssertionError("jobs did not settle")


def not_found() -> NotFound:
    return NotFound("404 no such batch")


def test_one_spurious_404_after_the_grace_fails_nothing(engine: Engine, tmp_path: Path) -> None:
    """Past the grace, a single 404 is counted, the job keeps polling, and every result of the
    batch is downloaded."""
    provider = FakeProvider()
    reconciler = reconciler_for(engine, provider)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    reconciler.run_pass()  # upload + create
    provider.fail_next("get_batch", not_found)
    reconciler.run_pass()
    row = job(engine, job_id)
    assert row.state == "submitted" and row.not_found_count == 1
    assert "404" in str(row.last_error)
    settle(reconciler)
    row = job(engine, job_id)
    assert row.state == "normalized" and row.not_found_count is None
    assert statuses(engine) == ["succeeded", "succeeded"]
    assert provider.created() == {str(job_id): 1}


def test_a_streak_of_404s_too_short_in_time_fails_nothing(engine: Engine, tmp_path: Path) -> None:
    """Many 404s within seconds are not yet proof: the window must also have passed."""
    provider = FakeProvider()
    reconciler = reconciler_for(engine, provider, not_found_window=600.0)
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reconciler.run_pass()
    provider.batches.clear()  # the batch answers 404 from now on
    for _ in range(5):
        reconciler.run_pass()
    row = job(engine, job_id)
    assert row.state == "submitted" and row.not_found_count == 5
    assert statuses(engine) == ["pending"]
    assert ("find_batches", "") not in provider.calls


def test_a_batch_found_by_its_tag_is_adopted_and_polled(engine: Engine, tmp_path: Path) -> None:
    """After the streak, a lookup by the batch's tag that finds it adopts it: no failure."""
    provider = FakeProvider()
    reconciler = reconciler_for(engine, provider, not_found_window=0.0)
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reconciler.run_pass()
    old_id = job(engine, job_id).batch_id
    batch = provider.batches.pop(old_id)
    batch.id = "batch_moved"  # the provider now lists it only under another id
    provider.batches[batch.id] = batch
    settle(reconciler)
    row = job(engine, job_id)
    assert row.state == "normalized" and row.batch_id == "batch_moved"
    assert statuses(engine) == ["succeeded"]


def test_a_batch_really_gone_is_declared_missing(engine: Engine, tmp_path: Path) -> None:
    """Repeated 404s over the window and a tag lookup that finds nothing: the job fails."""
    provider = FakeProvider()
    reconciler = reconciler_for(engine, provider, not_found_window=0.0)
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    reconciler.run_pass()
    provider.batches.clear()
    reconciler.run_pass()
    reconciler.run_pass()
    assert job(engine, job_id).state == "submitted"
    settle(reconciler)
    row = job(engine, job_id)
    assert row.state == "normalized" and "no batch carries its tag" in str(row.last_error)
    assert statuses(engine) == ["failed"]


def test_a_provider_clock_behind_ours_makes_no_duplicate_batch(
    engine: Engine, tmp_path: Path
) -> None:
    """A create whose reply was lost is adopted even when the provider's clock runs 30 minutes
    behind the database's: the search is bounded by the upload's time on the provider's clock."""
    provider = FakeProvider(clock_offset=-1800)
    reconciler = reconciler_for(engine, provider)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    provider.fail_next("create_batch", lambda: OutcomeUnknown("reply lost"), after_effect=True)
    reconciler.run_pass()
    assert job(engine, job_id).state == "uploaded"
    settle(reconciler)
    assert provider.created() == {str(job_id): 1}
    assert job(engine, job_id).state == "normalized"
    assert statuses(engine) == ["succeeded", "succeeded"]
