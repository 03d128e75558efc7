"""The one way a job's row changes: claim it under a lease, then advance it with a guarded update.

Every write here is a compare-and-set: `UPDATE jobs ... WHERE id = :id AND state = :from AND
fence = :fence AND lease still current`, and a row count other than one raises `StaleWrite`. So
overlapping reconcilers stay safe without holding locks (or transactions) across slow network
calls: a reconciler whose lease lapsed and was claimed by another finds its fence stale and stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from ledger.core.db import db_now
from ledger.core.models import Job, JobEvent
from ledger.core.owner import OWNER_FORMAT, owner_is_dead_local_process, process_identity
from ledger.core.states import PROVIDER_FINAL, State, check_transition
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
    connection: Connection, *, actor: str, detail: dict[str, Any] | None = None, **fields: Any
) -> int:
    """Insert a job in state `built`, with its creation event, and return its id."""
    now = connection.execute(select(db_now())).scalar_one()
    values = {"state": State.BUILT.value, "fence": 0, "attempt": 0, "created_at": now}
    values.update(fields, updated_at=now)
    job_id = connection.execute(insert(Job).values(values).returning(Job.id)).scalar_one()
    connection.execute(
        insert(JobEvent).values(
            job_id=job_id,
            from_state=None,
            to_state=State.BUILT.value,
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
    now = db_now()
    conditions = [
        Job.state.in_([State(s).value for s in states]),
        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at <= now),
    ]
    if due_only:
        conditions.append(or_(Job.next_check_at.is_(None), Job.next_check_at <= now))
    if not include_held:
        conditions.append(Job.held_reason.is_(None))
    if run_id is not None:
        conditions.append(Job.run_id == run_id)
    if job_ids is not None:
        conditions.append(Job.id.in_(list(job_ids)))
    candidates = (
        select(Job.id)
        .where(and_(*conditions))
        .order_by(Job.next_check_at.is_not(None), Job.next_check_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = connection.execute(
        update(Job)
        .where(Job.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=now + lease_seconds, fence=Job.fence + 1)
        .returning(Job.id, Job.fence)
    ).all()
    return sorted((Lease(job_id, fence, owner) for job_id, fence in rows), key=lambda x: x.job_id)


def _guard(lease: Lease) -> list[Any]:
    return [Job.id == lease.job_id, Job.fence == lease.fence, Job.lease_expires_at > db_now()]


def _release_values(release_lease: bool, next_check_in: float | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if release_lease:
        values.update(lease_owner=None, lease_expires_at=None)
    if next_check_in is not None:
        values["next_check_at"] = db_now() + next_check_in
    return values


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
    from_state, to_state = State(from_state), State(to_state)
    check_transition(from_state, to_state)
    now = db_now()
    values: dict[str, Any] = {"state": to_state.value, "updated_at": now}
    if to_state in PROVIDER_FINAL and "finished_at" not in fields:
        values["finished_at"] = now
    values.update(fields)
    values.update(_release_values(release_lease, next_check_in))
    result = connection.execute(
        update(Job).where(*_guard(lease), Job.state == from_state.value).values(values)
    )
    if result.rowcount != 1:
        raise StaleWrite(
            f"job {lease.job_id}: {from_state} -> {to_state} refused "
            "(state changed, fence stale or lease expired)"
        )
    connection.execute(
        insert(JobEvent).values(
            job_id=lease.job_id,
            from_state=from_state.value,
            to_state=to_state.value,
            at=now,
            actor=lease.owner,
            detail=detail,
        )
    )


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
    values = {"updated_at": db_now(), **fields, **_release_values(release_lease, next_check_in)}
    result = connection.execute(update(Job).where(*_guard(lease)).values(values))
    if result.rowcount != 1:
        raise StaleWrite(f"job {lease.job_id}: update refused (fence stale or lease expired)")


def release(connection: Connection, lease: Lease, *, next_check_in: float | None = None) -> bool:
    """Give a lease back, optionally scheduling the job's next check; False if already lost."""
    values = _release_values(True, next_check_in)
    result = connection.execute(
        update(Job).where(Job.id == lease.job_id, Job.fence == lease.fence).values(values)
    )
    return result.rowcount == 1


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
