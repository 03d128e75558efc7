"""The one way a job's row changes: claim it under a lease, then advance it with a guarded update.

Every write here is a compare-and-set: `UPDATE jobs ... WHERE id = :id AND state = :from AND
fence = :fence AND lease still current`, and a row count other than one raises `StaleWrite`. So
overlapping reconcilers stay safe without holding locks (or transactions) across slow network
calls: a reconciler whose lease lapsed and was claimed by another finds its fence stale and stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.engine import Connection

from ledger.core import statements
from ledger.core.db import db_now
from ledger.core.models import Job, JobEvent
from ledger.core.owner import OWNER_FORMAT, owner_is_dead_local_process, process_identity
from ledger.core.states import PROVIDER_FINAL, IllegalTransition, State, check_transition
from ledger.errors import StorageError

#: Default lease length. It must outlive the longest provider call (the SDK's own timeout is
#: 600 s), so a slow upload is never mistaken for a dead reconciler.
DEFAULT_LEASE_SECONDS = 900.0


class StaleWrite(StorageError, RuntimeError):
    """A guarded update matched no row: the job moved on, or our lease was lost or taken over."""


@dataclass(frozen=True)
class Lease:
    """The right to write one job, for as long as its fence is current and its lease unexpired."""

    job_id: int
    fence: int
    owner: str


def create_job(
    connection: Connection,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    state: State = State.BUILT,
    **fields: Any,
) -> int:
    """Insert a job in `state`, with its creation event, and return its id. Jobs start `built`;
    one whose requests were answered without a send (`submit --reuse`) starts `normalized`."""
    now = connection.execute(select(db_now())).scalar_one()
    values = {"state": state.value, "fence": 0, "attempt": 0, "created_at": now}
    values.update(fields, updated_at=now)
    job_id = connection.execute(insert(Job).values(values).returning(Job.id)).scalar_one()
    connection.execute(
        insert(JobEvent).values(
            job_id=job_id,
            from_state=None,
            to_state=state.value,
            at=now,
            actor=actor,
            detail=detail,
        )
    )
    return job_id


def release_held(connection: Connection, run_id: int) -> int:
    """Let reconcilers take the run's held jobs (a dry run's); how many were held."""
    released = connection.execute(
        update(Job)
        .where(Job.run_id == run_id, Job.held_reason.is_not(None))
        .values(held_reason=None, updated_at=db_now())
    )
    return released.rowcount


def claim(
    connection: Connection,
    owner: str,
    *,
    states: Iterable[State],
    limit: int,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    run_id: int | None = None,
    job_ids: Sequence[int] | None = None,
    due_only: bool = True,
    include_held: bool = False,
) -> list[Lease]:
    """Lease up to `limit` unleased jobs in `states` (due ones only unless told otherwise);
    held jobs (a dry run's) only with `include_held` (to cancel them).

    One statement sets owner and expiry and bumps the fence of each job it takes, so two
    reconcilers claiming at once never get the same job: SQLite serializes them with BEGIN
    IMMEDIATE, PostgreSQL skips rows another claim holds (`FOR UPDATE SKIP LOCKED`).
    """
    state_values = tuple(sorted({State(s).value for s in states}))
    statement = statements.claim_update(
        state_values, due_only, include_held, run_id is not None, job_ids is not None
    )
    parameters: dict[str, Any] = {"_owner": owner, "_lease_seconds": lease_seconds}
    parameters["_limit"] = limit
    if run_id is not None:
        parameters["_run_id"] = run_id
    if job_ids is not None:
        parameters["_job_ids"] = list(job_ids)
    rows = connection.execute(statement, parameters).all()
    return sorted((Lease(job_id, fence, owner) for job_id, fence in rows), key=lambda x: x.job_id)


@dataclass(frozen=True)
class Move:
    """One transition asked of a leased job, as `advance` takes it (see there)."""

    lease: Lease
    from_state: State
    to_state: State
    detail: dict[str, Any] | None = None
    release_lease: bool = False
    next_check_in: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def move(
    lease: Lease,
    from_state: State | str,
    to_state: State | str,
    *,
    detail: dict[str, Any] | None = None,
    release_lease: bool = False,
    next_check_in: float | None = None,
    **fields: Any,
) -> Move:
    """The Move that `advance` with these arguments makes."""
    return Move(
        lease, State(from_state), State(to_state), detail, release_lease, next_check_in, fields
    )


def advance(
    connection: Connection,
    lease: Lease,
    from_state: State | str,
    to_state: State | str,
    *,
    detail: dict[str, Any] | None = None,
    release_lease: bool = False,
    next_check_in: float | None = None,
    **fields: Any,
) -> None:
    """Move a leased job from `from_state` to `to_state`, writing `fields` and an event row.

    With `release_lease` the same statement gives the lease back (and `next_check_in` schedules
    the next check), saving a write transaction on the hot path.

    Raises `IllegalTransition` when the table forbids the change, and `StaleWrite` when the job
    is not in `from_state`, the fence moved on, or the lease expired: nothing is written then.
    """
    one = move(
        lease,
        from_state,
        to_state,
        detail=detail,
        release_lease=release_lease,
        next_check_in=next_check_in,
        **fields,
    )
    [refused] = advance_all(connection, [one])
    if refused is not None:
        raise refused


def advance_all(
    connection: Connection, moves: Sequence[Move]
) -> list[StaleWrite | IllegalTransition | None]:
    """Make each move as `advance` does, in the caller's transaction, and write the event rows of
    those made in one executemany. Per move, in order: None when it was made, or the
    `IllegalTransition` or `StaleWrite` that refused it (nothing written for that move, the
    others unaffected)."""
    outcomes: list[StaleWrite | IllegalTransition | None] = []
    events: list[dict[str, Any]] = []
    for each in moves:
        try:
            _guarded_move(connection, each)
        except (StaleWrite, IllegalTransition) as refused:
            outcomes.append(refused)
            continue
        outcomes.append(None)
        events.append(
            {
                "job_id": each.lease.job_id,
                "from_state": each.from_state.value,
                "to_state": each.to_state.value,
                "actor": each.lease.owner,
                "detail": each.detail,
            }
        )
    if events:
        connection.execute(statements.event_insert(), events)
    return outcomes


def _guarded_move(connection: Connection, each: Move) -> None:
    """The compare-and-set of one move; raises what refuses it, having written nothing."""
    from_state, to_state = each.from_state, each.to_state
    check_transition(from_state, to_state)
    finished = to_state in PROVIDER_FINAL and "finished_at" not in each.fields
    statement = statements.guarded_advance(
        tuple(sorted(each.fields)), finished, each.release_lease, each.next_check_in is not None
    )
    parameters = _lease_parameters(each.lease, each.fields, each.next_check_in)
    parameters.update(_from=from_state.value, _to=to_state.value)
    if connection.execute(statement, parameters).rowcount != 1:
        raise StaleWrite(
            f"job {each.lease.job_id}: {from_state} -> {to_state} refused "
            "(state changed, fence stale or lease expired)"
        )


def _lease_parameters(
    lease: Lease, fields: dict[str, Any], next_check_in: float | None
) -> dict[str, Any]:
    parameters = {"_id": lease.job_id, "_fence": lease.fence, **fields}
    if next_check_in is not None:
        parameters["_next_check_in"] = next_check_in
    return parameters


def update_leased(
    connection: Connection,
    lease: Lease,
    *,
    release_lease: bool = False,
    next_check_in: float | None = None,
    **fields: Any,
) -> None:
    """Write fields of a leased job without changing its state (progress, intent, backoff),
    optionally giving the lease back in the same statement."""
    statement = statements.guarded_update(
        tuple(sorted(fields)), release_lease, next_check_in is not None
    )
    result = connection.execute(statement, _lease_parameters(lease, fields, next_check_in))
    if result.rowcount != 1:
        raise StaleWrite(f"job {lease.job_id}: update refused (fence stale or lease expired)")


def release(connection: Connection, lease: Lease, *, next_check_in: float | None = None) -> bool:
    """Give a lease back, optionally scheduling the job's next check; False if already lost."""
    parameters: dict[str, Any] = {"_id": lease.job_id, "_fence": lease.fence}
    if next_check_in is not None:
        parameters["_next_check_in"] = next_check_in
    statement = statements.lease_release(next_check_in is not None)
    return connection.execute(statement, parameters).rowcount == 1


def renew_leases(connection: Connection, leases: Sequence[Lease], lease_seconds: float) -> int:
    """Extend the leases still held (same owner and fence, not yet expired) by `lease_seconds`
    from now; returns how many were renewed. A lease given back, lost or taken over is left
    alone, so a renewal can never resurrect a claim another reconciler now holds."""
    renewed = 0
    now = db_now()
    for start in range(0, len(leases), 500):
        chunk = leases[start : start + 500]
        for owner in {lease.owner for lease in chunk}:
            pairs = [(lease.job_id, lease.fence) for lease in chunk if lease.owner == owner]
            result = connection.execute(
                update(Job)
                .where(
                    tuple_(Job.id, Job.fence).in_(pairs),
                    Job.lease_owner == owner,
                    Job.lease_expires_at > now,
                )
                .values(lease_expires_at=now + lease_seconds)
            )
            renewed += result.rowcount
    return renewed


def expire_dead_local_leases(connection: Connection) -> list[str]:
    """End at once the leases held by processes that are provably dead (see
    `owner_is_dead_local_process`); every other lease must lapse.

    A reconciler killed mid-step leaves its leases behind; without this, a restart would wait
    out the whole lease before resuming. Returns the owners whose leases were ended.
    """
    here = process_identity()
    # Only owners that could be proved dead from here: same format, host, boot and namespace.
    host_prefix = f"{OWNER_FORMAT}:{here.host}:{here.boot_id}:{here.pid_namespace}:"
    owners = connection.execute(
        select(Job.lease_owner)
        .where(Job.lease_owner.like(f"{host_prefix}%"), Job.lease_expires_at > db_now())
        .distinct()
    ).scalars()
    dead = [owner for owner in owners if owner and owner_is_dead_local_process(owner)]
    for owner in dead:
        connection.execute(
            update(Job).where(Job.lease_owner == owner).values(lease_expires_at=db_now())
        )
    return dead
