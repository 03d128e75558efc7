"""`ledger cancel`: jobs not yet sent are cancelled at once; live batches are cancelled at the
provider, and the reconciler then downloads what finished before the cancel took hold. A job
whose create may have gone through (`uploaded` with a submit token: a crash or a lost reply) is
first looked up at the provider by its tag, like the create step does, so a live batch is never
left running, and billed, behind a job marked cancelled."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters import get_provider
from adapters.base import BatchProvider, BatchSnapshot, ProviderError
from ledger.build.manifest import record_job_provider_ids
from ledger.core.models import Job
from ledger.core.owner import process_owner
from ledger.core.states import IN_FLIGHT, PROVIDER_FINAL, State
from ledger.core.store import (
    Lease,
    advance,
    claim,
    expire_dead_local_leases,
    release,
    update_leased,
)
from ledger.errors import BatchesUndecided
from ledger.reconcile.shard_source import local_input
from ledger.reconcile.steps.create import adoption_horizon

log = logging.getLogger("ledger.reconcile")

#: Why a job is held after a cancel that could not yet tell whether its create went through.
CANCEL_HELD = "cancel pending"
#: How often, and how far apart (seconds), a cancel looks again for a batch that may be the
#: job's once the candidates it cancelled have ended.
UNDECIDED_CHECKS = 20
UNDECIDED_PAUSE = 0.5


def cancel_jobs(
    engine: Engine,
    job_ids: Sequence[int],
    *,
    provider_for: Callable[[str, str | None], BatchProvider] = get_provider,
    base_url: str | None = None,
    attempts: int = 20,
) -> dict[int, str]:
    """Cancel jobs: unsent ones at once, live batches at the provider. Returns job -> outcome.

    A job another reconciler holds right now is waited for briefly; its cancellation is then
    finished by the next reconcile pass, which sees the provider's `cancelled`. A lease whose
    owner is provably dead is taken over at once, as the reconciler does.
    """
    owner = process_owner()
    outcomes: dict[int, str] = {}
    pending = list(job_ids)
    for _ in range(attempts):
        if not pending:
            break
        with engine.begin() as connection:
            # A killed reconciler's leases would otherwise answer "busy" until they lapse.
            expire_dead_local_leases(connection)
            leases = claim(
                connection,
                owner,
                states=list(State),
                limit=len(pending),
                job_ids=pending,
                due_only=False,
                include_held=True,
            )
        for lease in leases:
            pending.remove(lease.job_id)
            outcomes[lease.job_id] = _cancel_one(engine, lease, provider_for, base_url)
        if pending:
            time.sleep(0.25)
    for job_id in pending:
        outcomes[job_id] = "busy: held by another reconciler, try again"
    return outcomes


def _cancel_one(
    engine: Engine,
    lease: Lease,
    provider_for: Callable[[str, str | None], BatchProvider],
    base_url: str | None,
) -> str:
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == lease.job_id)).one()
    state = State(job.state)
    try:
        if state is State.UPLOADED and job.submit_token is not None:
            # A create was attempted (intent recorded): it may have reached the provider with
            # its reply lost. Look the batch up by its tag first, as the create step does.
            provider = provider_for(job.provider, job.base_url or base_url)
            try:
                found, cancelled = _find_created(engine, provider, job)
            except ProviderError as error:
                return _hold(engine, lease, f"could not look for a batch it may have made: {error}")
            if found:
                return _cancel_adopted(engine, lease, provider, found, cancelled)
        if state in (State.BUILT, State.UPLOADED):
            with engine.begin() as connection:
                # A cancelled dry run is released, so that reconcile marks its requests.
                advance(
                    connection,
                    lease,
                    state,
                    State.CANCELLED,
                    detail={"by": "ledger cancel"},
                    held_reason=None,
                )
            return "cancelled (never submitted)"
        if state in IN_FLIGHT:
            provider = provider_for(job.provider, job.base_url or base_url)
            try:
                snapshot = provider.cancel_batch(job.batch_id)
            except ProviderError as error:
                return f"not cancelled: {error}"
            with engine.begin() as connection:
                update_leased(connection, lease, provider_status=snapshot.provider_status)
            return f"cancel requested ({snapshot.provider_status})"
        return f"nothing to cancel ({state})"
    finally:
        with engine.begin() as connection:
            release(connection, lease, next_check_in=0)


def _find_created(
    engine: Engine, provider: BatchProvider, job: Any
) -> tuple[list[BatchSnapshot], list[str]]:
    """The batches carrying the job's tag. Batches that may be the job's but cannot be told
    apart yet (Anthropic's, until they end) are cancelled first, but for those another job of
    the ledger follows, and looked for again once they have ended; the second list names the
    batches so cancelled."""
    lookup = {
        "input_file_id": job.input_file_id,
        "metadata": {"ledger_job": str(job.id), "ledger_token": job.submit_token},
        "created_after": adoption_horizon(job),
    }
    try:
        with local_input(engine, provider, job):  # Anthropic's request set, made again here
            return provider.find_batches(**lookup), []
    except BatchesUndecided as undecided:
        with engine.connect() as connection:
            followed = set(
                connection.execute(
                    select(Job.batch_id).where(Job.batch_id.in_(undecided.batch_ids))
                ).scalars()
            )
        candidates = [b for b in undecided.batch_ids if b not in followed]
        if not candidates:
            return [], []  # every one is another job's: this job's create made none
        for batch_id in candidates:
            log.warning("job %s: cancelling batch %s, which may be its own", job.id, batch_id)
            provider.cancel_batch(batch_id)
    # Once they have ended, their results name their create's tag.
    for _ in range(UNDECIDED_CHECKS):
        if all(provider.get_batch(b).state in PROVIDER_FINAL for b in candidates):
            break
        time.sleep(UNDECIDED_PAUSE)
    with local_input(engine, provider, job):
        return provider.find_batches(**lookup), candidates


def _job_row(engine: Engine, job_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(Job.__table__).where(Job.id == job_id)).one()


def _hold(engine: Engine, lease: Lease, reason: str) -> str:
    """Keep the job from being created anew (held) while it cannot be told whether its create
    went through: `ledger cancel` again finishes the cancel."""
    with engine.begin() as connection:
        update_leased(connection, lease, held_reason=CANCEL_HELD, last_error=reason)
    return f"not cancelled yet, held: {reason}; run `ledger cancel` again"


def _cancel_adopted(
    engine: Engine,
    lease: Lease,
    provider: BatchProvider,
    found: Sequence[BatchSnapshot],
    cancelled: Sequence[str] = (),
) -> str:
    """The job's create went through after all: adopt the batch (uploaded -> submitted, as the
    create step would), then cancel it, and any duplicate, at the provider. The reconciler then
    follows it to `cancelled` and downloads what finished first."""
    batch, *duplicates = found
    with engine.begin() as connection:
        advance(
            connection,
            lease,
            State.UPLOADED,
            State.SUBMITTED,
            detail={"batch_id": batch.id, "adopted": True, "by": "ledger cancel"},
            batch_id=batch.id,
            provider_status=batch.provider_status,
            held_reason=None,
        )
    record_job_provider_ids(engine, _job_row(engine, lease.job_id))
    if batch.state in PROVIDER_FINAL:
        done = "cancel requested" if batch.id in cancelled else "already"
        return f"found batch {batch.id} its create made; {done} ({batch.provider_status})"
    try:
        for duplicate in duplicates:
            provider.cancel_batch(duplicate.id)
        snapshot = provider.cancel_batch(batch.id)
    except ProviderError as error:
        return f"found batch {batch.id}, not cancelled: {error}"
    with engine.begin() as connection:
        update_leased(connection, lease, provider_status=snapshot.provider_status)
    return f"found batch {batch.id} its create made; cancel requested ({snapshot.provider_status})"
