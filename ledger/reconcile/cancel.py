"""`ledger cancel`: jobs not yet sent are cancelled at once; live batches are cancelled at the
provider, and the reconciler then downloads what finished before the cancel took hold."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters import get_provider
from adapters.base import BatchProvider, ProviderError
from ledger.core.models import Job
from ledger.core.states import IN_FLIGHT, State
from ledger.core.store import (
    Lease,
    advance,
    claim,
    expire_dead_local_leases,
    process_owner,
    release,
    update_leased,
)


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
