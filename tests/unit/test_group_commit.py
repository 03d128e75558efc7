"""Transitions asked for by many worker threads at once are committed in groups: each keeps its
guarded compare-and-set and its event row, a stale one is refused alone, and none returns before
its transition is committed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from ledger.core.models import Job, JobEvent
from ledger.core.states import IllegalTransition, State
from ledger.core.store import Lease, StaleWrite, claim
from ledger.reconcile.group_commit import GroupCommit


def built_jobs(engine: Engine, workdir: Path, count: int) -> list[Lease]:
    for index in range(1, count + 1):
        add_built_job(engine, workdir, "r", [f"c{index}"], shard_index=index)
    with engine.begin() as connection:
        return claim(connection, "me", states=[State.BUILT], limit=count)


def test_concurrent_advances_are_each_written_with_their_event(
    engine: Engine, tmp_path: Path
) -> None:
    """Twelve threads advance twelve jobs at once: every job is uploaded, with one event each,
    in fewer transactions than jobs; a stale lease among them is refused alone."""
    leases = built_jobs(engine, tmp_path, 13)
    stale = Lease(leases[-1].job_id, leases[-1].fence - 1, "me")
    group = GroupCommit(engine)
    start = threading.Barrier(13)
    outcomes: dict[int, str] = {}

    def step(lease: Lease) -> None:
        start.wait()
        try:
            group.advance(lease, State.BUILT, State.UPLOADED, input_file_id=f"f{lease.job_id}")
            outcomes[lease.job_id] = "advanced"
        except StaleWrite:
            outcomes[lease.job_id] = "stale"

    threads = [threading.Thread(target=step, args=(lease,)) for lease in [*leases[:-1], stale]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(outcomes.values()).count("advanced") == 12
    assert outcomes[stale.job_id] == "stale"
    with engine.connect() as connection:
        jobs = {j.id: j for j in connection.execute(select(Job)).all()}
        events = connection.execute(
            select(JobEvent.job_id).where(JobEvent.to_state == State.UPLOADED.value)
        ).all()
    assert sorted(e.job_id for e in events) == sorted(lease.job_id for lease in leases[:-1])
    for lease in leases[:-1]:
        assert (jobs[lease.job_id].state, jobs[lease.job_id].input_file_id) == (
            State.UPLOADED.value,
            f"f{lease.job_id}",
        )
    assert jobs[stale.job_id].state == State.BUILT.value
    assert group.advances == 12
    assert 1 <= group.commits <= 12


def test_a_forbidden_move_is_refused_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    """The transition table still decides: built cannot jump to completed."""
    [lease] = built_jobs(engine, tmp_path, 1)
    group = GroupCommit(engine)
    with pytest.raises(IllegalTransition):
        group.advance(lease, State.BUILT, State.COMPLETED)
    with engine.connect() as connection:
        assert connection.execute(select(Job.state)).scalar_one() == State.BUILT.value
    assert (group.commits, group.advances) == (1, 0)
