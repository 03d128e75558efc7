"""submitted|in_progress -> whatever the provider reports now; a batch refused for the
organisation's full token queue goes back to `uploaded` to be created again later.

A 404 is weak evidence: listings lag, load balancers misroute, a provider has a bad minute. Within
`not_found_grace` of the create it is simply retried. After it, each 404 is counted on the job
(`not_found_count`, `first_not_found_at`), and the batch is declared missing only when the streak
reaches `not_found_answers` answers spanning `not_found_window` seconds AND a lookup by the
batch's metadata tag finds nothing; a batch the lookup finds is adopted. Until then the job keeps
polling and none of its requests is marked failed. Any answer other than a 404 ends the streak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from adapters.base import BatchSnapshot, NotFound, TransientError
from ledger.build.manifest import record_job_provider_ids
from ledger.core.crashpoints import crash_point
from ledger.core.db import read_db_now
from ledger.core.states import IN_FLIGHT, State
from ledger.core.store import Lease, advance, update_leased
from ledger.reconcile.context import StepContext, StepOutcome
from ledger.reconcile.shard_source import local_input
from ledger.reconcile.steps.create import adoption_horizon


def poll(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """submitted|in_progress -> the provider's current state."""
    provider = context.provider(job)
    options = context.options
    state = State(job.state)
    try:
        snapshot = provider.get_batch(job.batch_id)
    except NotFound:
        with context.engine.connect() as connection:
            age = read_db_now(connection) - (job.submitted_at or job.created_at)
        if age < options.not_found_grace:
            # Batches can take a moment to become visible after create: never re-create.
            raise TransientError(f"batch {job.batch_id} not visible yet") from None
        return not_found_after_grace(context, lease, job)
    crash_point("after_poll")
    progress = {
        "provider_status": snapshot.provider_status,
        "requests_total": snapshot.requests_total,
        "requests_completed": snapshot.requests_completed,
        "requests_failed": snapshot.requests_failed,
        "output_file_id": snapshot.output_file_id,
        "error_file_id": snapshot.error_file_id,
        "last_error": snapshot.error_summary(),
    }
    if snapshot.input_tokens is not None:
        progress.update(input_tokens=snapshot.input_tokens)
    if snapshot.output_tokens is not None:
        progress.update(output_tokens=snapshot.output_tokens)
    if job.not_found_count is not None:
        progress.update(not_found_count=None, first_not_found_at=None)  # the streak is over
    target = snapshot.state
    if target is state or (target is State.SUBMITTED and state is State.IN_PROGRESS):
        interval = context.next_interval(job)
        # Nothing changed: this write may wait and share one commit with the others.
        context.deferred.add(
            lease, poll_interval=interval, next_check_in=context.jittered(interval), **progress
        )
        return StepOutcome.DONE
    detail: dict[str, Any] = {
        "provider_status": snapshot.provider_status,
        "batch_id": snapshot.id,
    }
    if snapshot.failed_for_token_limit:
        requeue_for_token_limit(context, lease, state, snapshot, progress, detail)
        return StepOutcome.DONE
    if snapshot.errors:
        detail["errors"] = [e.__dict__ for e in snapshot.errors]
    in_flight = target in IN_FLIGHT
    context.advance(
        lease,
        state,
        target,
        detail=detail,
        poll_interval=options.poll_min,
        release_lease=in_flight,
        next_check_in=context.jittered(options.poll_min) if in_flight else None,
        **progress,
    )
    if (snapshot.output_file_id, snapshot.error_file_id) != (
        job.output_file_id,
        job.error_file_id,
    ):
        record_job_provider_ids(context.engine, job)  # the result files are known now
    return StepOutcome.DONE if in_flight else StepOutcome.CONTINUE


def not_found_after_grace(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """One more 404 past the grace: count it; declare the batch missing only on a long streak
    that a lookup by its tag confirms (see the module docstring)."""
    options = context.options
    state = State(job.state)
    with context.engine.begin() as connection:
        now = read_db_now(connection)
        count = (job.not_found_count or 0) + 1
        first = job.first_not_found_at or now
        # Written before the lookup, so a lookup that fails still leaves the streak counted.
        update_leased(connection, lease, not_found_count=count, first_not_found_at=first)
    message = f"batch {job.batch_id} answered 404 ({count} in a row over {now - first:.0f} s)"
    if count < options.not_found_answers or now - first < options.not_found_window:
        retry = context.next_interval(job)
        context.record_problem(lease, message, context.jittered(retry), poll_interval=retry)
        return StepOutcome.DONE
    provider = context.provider(job)
    # The lookup may need the uploaded input (Anthropic counts its request set's lines): made
    # again here from the verified shard when the upload kept it on another machine.
    with local_input(context.engine, provider, job):
        found = provider.find_batches(
            input_file_id=job.input_file_id,
            metadata=_tag(job),
            created_after=adoption_horizon(job),
        )
    if not found:
        context.fail(lease, state, f"{message}, and no batch carries its tag: missing")
        return StepOutcome.CONTINUE
    batch = found[0]
    context.record_problem(
        lease,
        f"{message}; found by its tag as batch {batch.id}, polling that",
        0.0,
        batch_id=batch.id,
        not_found_count=None,
        first_not_found_at=None,
        poll_interval=options.poll_min,
    )
    return StepOutcome.DONE


def _tag(job: Row[Any]) -> dict[str, str]:
    # The metadata every batch of this job carries (create.batch_metadata); the token is the
    # current attempt's, so a batch of an earlier attempt is never taken for this one.
    tag = {"ledger_job": str(job.id)}
    if job.submit_token:
        tag["ledger_token"] = job.submit_token
    return tag


def requeue_for_token_limit(
    context: StepContext,
    lease: Lease,
    state: State,
    snapshot: BatchSnapshot,
    progress: dict[str, Any],
    detail: dict[str, Any],
) -> None:
    """Record the batch's failure, then send the job back to `uploaded` for a new batch."""
    # The organisation's enqueued-token queue was full: not the batch's fault. Record the
    # failure, then go back to `uploaded` to create a new batch (a new token) later.
    detail["errors"] = [e.__dict__ for e in snapshot.errors]
    with context.engine.begin() as connection:
        advance(connection, lease, state, State.FAILED, detail=detail, **progress)
        advance(
            connection,
            lease,
            State.FAILED,
            State.UPLOADED,
            detail={"retry": "token_limit_exceeded", "failed_batch_id": snapshot.id},
            batch_id=None,
            submit_token=None,
            output_file_id=None,
            error_file_id=None,
            finished_at=None,
        )
    context.count(lease.job_id, state, State.FAILED)
    context.count(lease.job_id, State.FAILED, State.UPLOADED)
    context.release(lease, context.jittered(context.options.poll_max))
