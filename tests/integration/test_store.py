"""Guarded writes: a stale fence, a wrong from-state or a lapsed lease changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from support.factories import add_jobs, add_run

from ledger.core.db import db_now
from ledger.core.models import Job, JobEvent
from ledger.core.owner import owner_is_dead_local_process, process_owner
from ledger.core.states import State
from ledger.core.store import (
    StaleWrite,
    advance,
    claim,
    expire_dead_local_leases,
    release,
    update_leased,
)


def job_row(engine: Engine, job_id: int) -> tuple[str, int, int]:
    with engine.connect() as connection:
        state, fence = connection.execute(
            select(Job.state, Job.fence).where(Job.id == job_id)
        ).one()
        events = connection.execute(
            select(func.count()).select_from(JobEvent).where(JobEvent.job_id == job_id)
        ).scalar_one()
    return state, fence, events


def test_creation_writes_a_built_event(engine: Engine) -> None:
    """A new job starts in `built` with one event from nothing to built."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    with engine.connect() as connection:
        event = connection.execute(
            select(JobEvent.from_state, JobEvent.to_state, JobEvent.actor).where(
                JobEvent.job_id == job_id
            )
        ).one()
    assert tuple(event) == (None, "built", "test")
    assert job_row(engine, job_id) == ("built", 0, 1)


def test_claim_bumps_the_fence_and_a_second_claim_gets_nothing(engine: Engine) -> None:
    """A leased job is not claimed again while its lease is current."""
    job_ids = add_jobs(engine, add_run(engine), 3)
    with engine.begin() as connection:
        first = claim(connection, "a", states=[State.BUILT], limit=10)
    with engine.begin() as connection:
        second = claim(connection, "b", states=[State.BUILT], limit=10)
    assert [lease.job_id for lease in first] == job_ids
    assert all(lease.fence == 1 for lease in first)
    assert second == []


def test_stale_fence_changes_nothing_and_raises(engine: Engine) -> None:
    """After another reconciler took the job over, the old lease cannot write."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    with engine.begin() as connection:
        [old] = claim(connection, "old", states=[State.BUILT], limit=1)
        # The old lease lapses and a new reconciler claims the job.
        connection.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=db_now()))
    with engine.begin() as connection:
        [new] = claim(connection, "new", states=[State.BUILT], limit=1)
    assert new.fence == old.fence + 1
    with pytest.raises(StaleWrite), engine.begin() as connection:
        advance(connection, old, State.BUILT, State.UPLOADED)
    with pytest.raises(StaleWrite), engine.begin() as connection:
        update_leased(connection, old, input_file_id="file-x")
    assert job_row(engine, job_id) == ("built", 2, 1)
    with engine.begin() as connection:
        advance(connection, new, State.BUILT, State.UPLOADED, input_file_id="file-1")
    assert job_row(engine, job_id) == ("uploaded", 2, 2)


def test_wrong_from_state_changes_nothing_and_raises(engine: Engine) -> None:
    """Advancing from a state the job is not in is refused."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    with engine.begin() as connection:
        [lease] = claim(connection, "a", states=[State.BUILT], limit=1)
    with pytest.raises(StaleWrite, match="uploaded -> submitted"), engine.begin() as connection:
        advance(connection, lease, State.UPLOADED, State.SUBMITTED, batch_id="batch_1")
    with engine.connect() as connection:
        assert connection.execute(select(Job.batch_id).where(Job.id == job_id)).scalar() is None
    assert job_row(engine, job_id) == ("built", 1, 1)


def test_a_lapsed_lease_cannot_write_even_before_a_takeover(engine: Engine) -> None:
    """Once its lease expires, a reconciler's writes are refused."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    with engine.begin() as connection:
        [lease] = claim(connection, "a", states=[State.BUILT], limit=1, lease_seconds=-1)
    with pytest.raises(StaleWrite), engine.begin() as connection:
        advance(connection, lease, State.BUILT, State.UPLOADED)
    assert job_row(engine, job_id)[0] == "built"


def test_release_schedules_the_next_check_and_claim_waits_for_it(engine: Engine) -> None:
    """A released job is claimable again only once its next check is due."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    with engine.begin() as connection:
        [lease] = claim(connection, "a", states=[State.BUILT], limit=1)
        assert release(connection, lease, next_check_in=3600)
    with engine.begin() as connection:
        assert claim(connection, "b", states=[State.BUILT], limit=1) == []
        assert claim(connection, "b", states=[State.BUILT], limit=1, due_only=False) != []
    with engine.connect() as connection:
        assert connection.execute(select(Job.lease_owner).where(Job.id == job_id)).scalar() == "b"


def test_claim_takes_never_checked_jobs_first_then_the_longest_due(engine: Engine) -> None:
    """Jobs never checked come first (by id), then due ones by how long they have been due."""
    job_ids = add_jobs(engine, add_run(engine), 4)
    due_since = {job_ids[0]: 10.0, job_ids[1]: None, job_ids[2]: 100.0, job_ids[3]: None}
    with engine.begin() as connection:
        for job_id, seconds in due_since.items():
            next_check_at = None if seconds is None else db_now() - seconds
            connection.execute(
                update(Job).where(Job.id == job_id).values(next_check_at=next_check_at)
            )
    taken = []
    for _ in job_ids:
        with engine.begin() as connection:
            [lease] = claim(connection, "a", states=[State.BUILT], limit=1)
        taken.append(lease.job_id)
    assert taken == [job_ids[1], job_ids[3], job_ids[2], job_ids[0]]


def test_claim_narrowed_to_a_run_or_to_jobs_takes_only_those(engine: Engine) -> None:
    """`run_id` and `job_ids` each limit what one claim may take."""
    first_run, second_run = add_run(engine, "first"), add_run(engine, "second")
    first_jobs, second_jobs = add_jobs(engine, first_run, 2), add_jobs(engine, second_run, 3)
    with engine.begin() as connection:
        by_run = claim(connection, "a", states=[State.BUILT], limit=10, run_id=second_run)
        by_ids = claim(
            connection, "a", states=[State.BUILT], limit=10, job_ids=[first_jobs[1], 999]
        )
        rest = claim(connection, "a", states=[State.BUILT, State.UPLOADED], limit=10)
    assert [lease.job_id for lease in by_run] == second_jobs
    assert [lease.job_id for lease in by_ids] == [first_jobs[1]]
    assert [lease.job_id for lease in rest] == [first_jobs[0]]


def test_lease_of_a_dead_local_process_is_taken_over_at_once(engine: Engine) -> None:
    """A lease held by a process on this host that has exited is ended without waiting."""
    [job_id] = add_jobs(engine, add_run(engine), 1)
    dead_owner = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ledger.core.owner import process_owner; print(process_owner())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert owner_is_dead_local_process(dead_owner)
    assert not owner_is_dead_local_process(process_owner())
    assert not owner_is_dead_local_process("some-other-host:1:1")
    with engine.begin() as connection:
        claim(connection, dead_owner, states=[State.BUILT], limit=1)
    with engine.begin() as connection:
        assert claim(connection, "me", states=[State.BUILT], limit=1) == []
        assert expire_dead_local_leases(connection) == [dead_owner]
    with engine.begin() as connection:
        [lease] = claim(connection, "me", states=[State.BUILT], limit=1)
    assert lease.job_id == job_id
