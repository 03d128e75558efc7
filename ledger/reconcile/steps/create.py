"""uploaded -> submitted: the batch is created at the provider, tagged with the job's token, and
only while the spend checks (budget caps, token queues, paused providers: ledger.spend) leave
room for it."""

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
from ledger.reconcile.shard_source import LocalInputOnDemand
from ledger.spend import check_and_reserve, pause_provider

log = logging.getLogger("ledger.reconcile")

#: How far back (seconds) to look for a batch created before a crash, beyond the recorded
#: intent time: the provider's clock and the database's may disagree.
CLOCK_SKEW_MARGIN = 900

#: Margin (seconds) below the upload's time by the provider's clock: the provider's own servers
#: may disagree a little with one another, never by half an hour.
PROVIDER_CLOCK_MARGIN = 300


class HeldBack(LedgerError):
    """A budget cap, a token queue or a paused provider has no room for this job's batch yet;
    nothing was sent, and the job waits (`jobs.waiting_for` says why).

    The create step catches it and leaves the job waiting, quietly: it is never shown as an
    error unless it escapes (it would then be a bug, exit code 1)."""


def create(context: StepContext, lease: Lease, job: Row[Any]) -> StepOutcome:
    """uploaded -> submitted: create the batch, tagged with the job's token."""
    provider = context.provider(job)

    def record_intent(token: str) -> None:
        with context.engine.begin() as connection:
            # Checking the caps and queues and recording the intent (with the reservation) in
            # one guarded write transaction keeps concurrent creates from passing them together.
            now = read_db_now(connection)
            verdict = check_and_reserve(
                connection,
                job,
                context.budget(),
                now,
                base_url=context.options.base_url,
                max_enqueued_tokens=context.options.max_enqueued_tokens,
            )
            if not verdict.held:
                update_leased(
                    connection,
                    lease,
                    submit_token=token,
                    attempt=job.attempt + 1,
                    submitted_at=now,
                    **verdict.fields,
                )
        if verdict.held:
            raise HeldBack(verdict.held)

    def find(token: str) -> list[BatchSnapshot]:
        # A create with this token may have reached the provider before a crash or a lost
        # reply: adopt that batch rather than make a second one.
        here.need()
        return provider.find_batches(
            input_file_id=job.input_file_id,
            metadata={"ledger_job": str(job.id), "ledger_token": token},
            created_after=adoption_horizon(job),
        )

    def discard(duplicate: BatchSnapshot) -> None:
        log.warning("job %s: cancelling duplicate batch %s", job.id, duplicate.id)
        provider.cancel_batch(duplicate.id)

    def act(token: str) -> BatchSnapshot:
        here.need()
        return provider.create_batch(
            input_file_id=job.input_file_id,
            endpoint=job.endpoint,
            metadata=batch_metadata(context.engine, job, token),
            **output_expiry(context.engine, job),
        )

    # An input the upload kept on its own machine (Anthropic's request set) is made again here
    # from the job's verified shard when that machine is not this one.
    with LocalInputOnDemand(context.engine, provider, job) as here:
        try:
            batch = adopt_or_act(
                job.submit_token,
                record_intent=record_intent,
                find=find,
                discard=discard,
                act=act,
                before_act="before_create",
            )
        except HeldBack as held_back:
            reason = str(held_back)
            context.record_problem(
                lease, reason, context.options.poll_min, quiet=True, waiting_for=reason
            )
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
        **({"input_ref": here.new_ref} if here.new_ref else {}),
        release_lease=True,
        next_check_in=context.jittered(interval),
    )
    crash_point("after_create_recorded")
    record_job_provider_ids(context.engine, job)
    return StepOutcome.DONE


def pause_for_quota(context: StepContext, lease: Lease, job: Row[Any], reason: str) -> None:
    """The provider refused for the account's quota or billing: pause the provider (no batch of
    it is created until the pause ends) and leave this job waiting, instead of retrying."""
    budget, provider = context.budget(), job.provider
    with context.engine.begin() as connection:
        pause_provider(connection, provider, reason, budget.pause_minutes * 60)
    log.error("provider %s paused for %g minutes: %s", provider, budget.pause_minutes, reason)
    message = f"provider {provider} paused: {reason}"
    # A refused upload or create is definite (nothing was made), so its token goes: the job
    # reserves nothing while it waits, and its next attempt checks the pause afresh.
    sending = job.state in (State.BUILT, State.UPLOADED)
    fields: dict[str, Any] = {"submit_token": None} if sending else {}
    context.record_problem(lease, message, context.options.poll_max, waiting_for=message, **fields)


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
