"""Getting a run's batches to the provider outside the reconcile loop: `ledger submit` and
`ledger retry` send what they built at once (`send_run`), and `chat_batch` can make a job follow a
batch created elsewhere (`adopt_batch`). Both change jobs only through the store's guarded
transitions, exactly as the reconciler does. A dry run's jobs are held until `release_run`
(`ledger send`, or a submit without --dry-run) lets them go."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters import get_provider
from adapters.base import BatchProvider, BatchSnapshot, ProviderError
from ledger import settings
from ledger.core.db import read_db_now
from ledger.core.models import Job, Run
from ledger.core.owner import process_owner
from ledger.core.states import State
from ledger.core.store import (
    advance,
    claim,
    expire_dead_local_leases,
    release,
    release_held,
)
from ledger.errors import InputError
from ledger.reconcile.engine import PassReport, ReconcileOptions, Reconciler
from ledger.spend import BudgetSource


def send_run(
    engine: Engine,
    run_name: str,
    *,
    base_url: str | None = None,
    concurrency: int = settings.default("concurrency"),
    poll_min: float = ReconcileOptions.poll_min,
    provider_for: Callable[[str, str | None], BatchProvider] = get_provider,
    on_transition: Callable[[int, State, State], None] | None = None,
    budget: BudgetSource | None = None,
) -> PassReport:
    """Upload and create the batches of a run's built jobs (what `ledger submit` does after the
    build): one pass over the `built` and `uploaded` steps only, so it returns without waiting.
    Each new batch is first polled `poll_min` seconds later."""
    options = ReconcileOptions(
        run_name=run_name,
        base_url=base_url,
        concurrency=concurrency,
        poll_min=poll_min,
        states=(State.BUILT, State.UPLOADED),
        budget=budget,
    )
    reconciler = Reconciler(engine, options, provider_for=provider_for, on_transition=on_transition)
    return reconciler.run_pass()


def sendable_jobs(engine: Engine, run_name: str) -> list[int]:
    """The run's jobs a send would take now: built or uploaded, not held."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(Job.id)
                .join(Run, Run.id == Job.run_id)
                .where(
                    Run.name == run_name,
                    Job.state.in_((State.BUILT.value, State.UPLOADED.value)),
                    Job.held_reason.is_(None),
                )
                .order_by(Job.id)
            ).scalars()
        )


def all_failed(engine: Engine, job_ids: list[int]) -> str | None:
    """When every one of `job_ids` (the jobs a send took) ended `failed`, why, in one line
    (the command exits 1 with it); None when any reached the provider or is still to send."""
    if not job_ids:
        return None
    with engine.connect() as connection:
        rows = connection.execute(
            select(Job.id, Job.state, Job.last_error).where(Job.id.in_(job_ids)).order_by(Job.id)
        ).all()
    if any(row.state != State.FAILED.value for row in rows):
        return None
    first = rows[0]
    return f"every job sent failed ({len(rows)}); job {first.id}: {first.last_error or 'refused'}"


def release_run(engine: Engine, run_name: str) -> int:
    """Release the held jobs of a run (a dry run's) to be sent; how many were held. InputError
    for an unknown run."""
    with engine.begin() as connection:
        run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
        if run_id is None:
            raise InputError(f"no run named {run_name!r}")
        return release_held(connection, run_id)


def adopt_batch(
    engine: Engine,
    job_id: int,
    batch_id: str,
    *,
    base_url: str | None = None,
    provider_for: Callable[[str, str | None], BatchProvider] = get_provider,
) -> BatchSnapshot:
    """Make a `built` job follow a batch created elsewhere (from the same requests, with the same
    custom_ids) instead of creating one: built -> uploaded -> submitted, recorded as adopted.
    The reconciler then polls, downloads and normalizes it like any other."""
    owner = process_owner()
    with engine.begin() as connection:
        expire_dead_local_leases(connection)  # as the reconciler does: a dead owner holds nothing
        leases = claim(
            connection, owner, states=[State.BUILT], limit=1, job_ids=[job_id], due_only=False
        )
    if not leases:
        raise InputError(f"job {job_id} is not a built job free to adopt a batch")
    [lease] = leases
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == job_id)).one()
    provider = provider_for(job.provider, job.base_url or base_url)
    try:
        snapshot = provider.get_batch(batch_id)
    except ProviderError as error:
        with engine.begin() as connection:
            release(connection, lease)
        raise InputError(f"cannot adopt batch {batch_id}: {error}") from None
    detail = {"adopted_external_batch": batch_id, "input_file_id": snapshot.input_file_id}
    with engine.begin() as connection:
        now = read_db_now(connection)
        advance(
            connection,
            lease,
            State.BUILT,
            State.UPLOADED,
            detail=detail,
            input_file_id=snapshot.input_file_id,
            base_url=provider.base_url,
        )
        advance(
            connection,
            lease,
            State.UPLOADED,
            State.SUBMITTED,
            detail=detail,
            batch_id=snapshot.id,
            provider_status=snapshot.provider_status,
            attempt=1,
            submitted_at=now,
            release_lease=True,
            next_check_in=0,
        )
    return snapshot
