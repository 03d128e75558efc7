"""uploaded -> submitted: the batch is created at the provider, tagged with the job's token, and
only while the enqueued-token cap leaves room for it."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine, Row

from adapters.base import BatchSnapshot
from ledger.build.manifest import record_job_provider_ids
from ledger.core.crashpoints import crash_point
from ledger.core.db import read_db_now
from ledger.core.models import Run
from ledger.core.states import State
from ledger.core.store import Lease, update_leased
from ledger.errors import LedgerError
from ledger.reconcile.adopt import adopt_or_act
from ledger.reconcile.context import StepContext, StepOutcome
from ledger.reconcile.quota import held_back_by_token_cap

log = logging.getLogger("ledger.reconcile")

#: How far back (seconds) to look for a batch created before a crash, beyond the recorded
#: intent time: the provider's clock and the database's may disagree.
CLOCK_SKEW_MARGIN = 900

#: Margin (seconds) below the upload's time by the provider's clock: the provider's own servers
#: may disagree a little with one another, never by half an hour.
PROVIDER_CLOCK_MARGIN = 300


class HeldBack(LedgerError):
    """The enqueued-token cap has no room for this job's batch yet; nothing was recorded.

    The create step catches it and leaves the job waiting, quietly: it is never shown as an
    error unless it escapes (it would then be a bug, exit code 1)."""


def create(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """uploaded -> submitted: create the batch, tagged with the job's token."""
    provider = context.provider(job)

    def record_intent(token: str) -> None:
        with context.engine.begin() as connection:
            # Checking the queue cap and recording the intent in one write transaction
            # keeps two concurrent creates from both squeezing under the cap.
            held_back = held_back_by_token_cap(connection, job, context.options.max_enqueued_tokens)
            if not held_back:
                now = read_db_now(connection)
                update_leased(
                    connection,
                    lease,
                    submit_token=token,
                    attempt=job.attempt + 1,
                    submitted_at=now,
                )
        if held_back:
            raise HeldBack(held_back)

    def find(token: str) -> list[BatchSnapshot]:
        # A create with this token may have reached the provider before a crash or a lost
        # reply: adopt that batch rather than make a second one.
        return provider.find_batches(
            input_file_id=job.input_file_id,
            metadata={"ledger_job": str(job.id), "ledger_token": token},
            created_after=adoption_horizon(job),
        )

    def discard(duplicate: BatchSnapshot) -> None:
        log.warning("job %s: cancelling duplicate batch %s", job.id, duplicate.id)
        provider.cancel_batch(duplicate.id)

    try:
        batch = adopt_or_act(
            job.submit_token,
            record_intent=record_intent,
            find=find,
            discard=discard,
            act=lambda token: provider.create_batch(
                input_file_id=job.input_file_id,
                endpoint=job.endpoint,
                metadata=batch_metadata(context.engine, job, token),
                **output_expiry(context.engine, job),
            ),
            before_act="before_create",
        )
    except HeldBack as held_back:
        context.record_problem(lease, str(held_back), context.options.poll_min, quiet=True)
        return StepOutcome.DONE
    crash_point("after_create")
    snapshot = batch.remote
    interval = context.options.poll_min
    context.advance(
        lease,
        State.UPLOADED,
        State.SUBMITTED,
        detail={"batch_id": snapshot.id, "adopted": batch.adopted, "attempt": job.attempt + 1},
        batch_id=snapshot.id,
        provider_status=snapshot.provider_status,
        poll_interval=interval,
        last_error=None,
        release_lease=True,
        next_check_in=context.jittered(interval),
    )
    crash_point("after_create_recorded")
    record_job_provider_ids(context.engine, job)
    return StepOutcome.DONE


def adoption_horizon(job: Row[Any]) -> int:
    """The `created_after` bound of a search for the job's batch, by the provider's clock.

    The batch was created after its input file was uploaded, and both times come from the
    provider's clock, so the upload's `created_at` (recorded by the upload step) bounds the
    search whatever our clock says: a provider 30 minutes behind us no longer hides the batch and
    makes a duplicate. The bound by our clock is kept when lower (a provider ahead of us), and
    is the only one for a job uploaded before the upload time was recorded."""
    ours = (job.submitted_at or job.created_at) - CLOCK_SKEW_MARGIN
    if job.input_file_created_at:
        return int(min(ours, job.input_file_created_at - PROVIDER_CLOCK_MARGIN))
    return int(ours)


def output_expiry(engine: Engine, job: Row[Any]) -> dict[str, int]:
    """The create's `output_expires_after`: the run's `--output-expires-after` seconds; nothing
    when the run set none (the provider's default), so an adapter that never takes it is not
    handed it."""
    with engine.connect() as connection:
        options = connection.execute(select(Run.options).where(Run.id == job.run_id)).scalar()
    value = (options or {}).get("output_expires_after")
    return {"output_expires_after": value} if isinstance(value, int) else {}


def batch_metadata(engine: Engine, job: Row[Any], token: str) -> dict[str, str]:
    """The metadata a batch carries: the job, its token (what `find` matches), run and shard."""
    with engine.connect() as connection:
        run_name = connection.execute(select(Run.name).where(Run.id == job.run_id)).scalar()
    return {
        "ledger_job": str(job.id),
        "ledger_token": token,
        "ledger_run": str(run_name)[:512],
        "ledger_shard": str(job.shard_index),
    }
